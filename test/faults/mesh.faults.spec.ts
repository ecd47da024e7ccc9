import { MeshFaultBackend } from './support/fault-backends.js';
import { defineFaultScenarios } from './support/fault-scenarios.js';

// The fault scenarios against the project's xDS control plane and real instance processes.
defineFaultScenarios(new MeshFaultBackend());
