import { EtcdFaultBackend } from './support/fault-backends.js';
import { defineFaultScenarios } from './support/fault-scenarios.js';

// The fault scenarios against a real etcd and real instance processes.
// The backend is created inside defineFaultScenarios, after the results file is reset: a set-up that throws is a failed row.
// `.serial`: fault suites run one at a time after the rest of `npm test` (vitest.config.ts), so the load of other
// suites does not keep this process from making the calls its scenarios claim (their skipped share is bounded).
defineFaultScenarios('etcd', () => new EtcdFaultBackend());
