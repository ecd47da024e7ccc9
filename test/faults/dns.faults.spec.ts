import { DnsFaultBackend } from './support/fault-backends.js';
import { defineFaultScenarios } from './support/fault-scenarios.js';

// The fault scenarios against a real dnsmasq and real instance processes.
defineFaultScenarios(new DnsFaultBackend());
