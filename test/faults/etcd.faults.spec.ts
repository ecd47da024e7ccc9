import { EtcdFaultBackend } from './support/fault-backends.js';
import { defineFaultScenarios } from './support/fault-scenarios.js';

// The fault scenarios against a real etcd and real instance processes.
// The backend is created inside defineFaultScenarios, after the results file is reset: a set-up that throws is a failed row.
defineFaultScenarios('etcd', () => new EtcdFaultBackend());
