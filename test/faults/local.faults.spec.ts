import { LocalFaultBackend } from './support/fault-backends.js';
import { defineFaultScenarios } from './support/fault-scenarios.js';

// The fault scenarios against a real registry folder and real instance processes.
defineFaultScenarios(new LocalFaultBackend());
