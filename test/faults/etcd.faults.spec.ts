import { EtcdFaultBackend } from './support/fault-backends.js';
import { defineFaultScenarios } from './support/fault-scenarios.js';

// The fault scenarios against a real etcd and real instance processes.
defineFaultScenarios(new EtcdFaultBackend());
