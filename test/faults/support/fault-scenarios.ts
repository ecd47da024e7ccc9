import { afterAll, afterEach, describe, it } from 'vitest';
import type { FaultBackend } from './fault-backends.js';
import { FaultContext } from './fault-context.js';
import { INSTANCE_FAULTS } from './instance-fault-scenarios.js';
import { REGISTRY_FAULTS } from './registry-fault-scenarios.js';
import { reliabilityTest, ResultsFile, type ResultSpec } from './reliability-results.js';

export { RETRIES_ON } from './fault-context.js';

/** What a scenario's text and applicability depend on. */
export interface BackendTraits {
  name: FaultBackend['name'];
  /** Instances register themselves (local, etcd, consul); DNS records and xDS resources are published by the test. */
  registers: boolean;
}

/**
 * One fault scenario: a row of RELIABILITY.md, the sentence it asserts on a
 * given backend (exactly what that backend's run checks), and the test.
 */
export interface FaultScenario {
  scenario: string;
  title: string;
  asserted(backend: BackendTraits): string;
  /** Why the fault does not exist for this backend (recorded as n/a with the reason); undefined when it runs. */
  notApplicable?(backend: BackendTraits): string | undefined;
  run(ctx: FaultContext, details: Record<string, unknown>): Promise<void>;
}

const ORDER = [
  'down-at-start',
  'restart-under-load',
  'stall-beyond-ttl',
  'rolling-restart',
  'sigkill-instance',
  'restart-same-address',
  'flapping-instance',
  'all-unhealthy',
  'empty-vs-unreachable',
];

/** The scenarios, in the table's order. */
export const FAULT_SCENARIOS: readonly FaultScenario[] = [...REGISTRY_FAULTS, ...INSTANCE_FAULTS].sort(
  (a, b) => ORDER.indexOf(a.scenario) - ORDER.indexOf(b.scenario),
);

const REGISTERING: ReadonlySet<string> = new Set(['local', 'etcd', 'consul']);

/**
 * Registers the fault scenarios for one backend: real registry
 * server, real instance processes, real calls. Each result lands in
 * test-artifacts/reliability/faults-<backend>.jsonl: a pass, a failure with
 * its reason, or n/a with the reason the fault does not exist there. The
 * results file is reset before anything that can throw, and the backend is
 * created and started inside the tests: a set-up that throws, or a peer that
 * cannot start, gives a failed row with the reason, never a stale one.
 *
 * @example
 * defineFaultScenarios('etcd', () => new EtcdFaultBackend());
 */
export function defineFaultScenarios(name: FaultBackend['name'], create: () => FaultBackend): void {
  const results = new ResultsFile(`faults-${name}`);
  let backend: FaultBackend | undefined;
  let setupProblem: string | undefined;
  let unavailable: string | undefined;
  try {
    backend = create();
    unavailable = backend.unavailableReason();
  } catch (error) {
    setupProblem = `fault backend set-up failed: ${(error as Error)?.message ?? String(error)}`;
  }
  const traits: BackendTraits = { name, registers: backend?.registers ?? REGISTERING.has(name) };
  const spec = (s: FaultScenario): ResultSpec => ({
    suite: 'faults',
    scenario: s.scenario,
    title: s.title,
    backend: name,
    asserted: s.asserted(traits),
  });
  const notApplicable = (s: FaultScenario) => (setupProblem ? undefined : s.notApplicable?.(traits));

  if (unavailable !== undefined) {
    // Outside CI a missing peer skips the suite (CI=true makes unavailableReason() throw instead); the table shows ❌.
    describe(`fault scenarios: ${name} (peer unavailable: ${unavailable.split('\n')[0]})`, () => {
      for (const s of FAULT_SCENARIOS) {
        const reason = notApplicable(s);
        if (reason) results.notApplicable(spec(s), reason);
        else results.couldNotRun(spec(s), `the ${name} peer could not start: ${unavailable}`);
        it.skip(`${s.title} [${name}]`, () => undefined);
      }
    });
    return;
  }

  describe(`fault scenarios: ${name}`, () => {
    const ctx = backend ? new FaultContext(backend) : undefined;
    let started: Promise<void> | undefined;
    const ready = (): Promise<void> => {
      if (setupProblem || !backend) throw new Error(setupProblem);
      started ??= backend.start();
      return started;
    };
    afterEach(() => ctx?.cleanup(), 60_000);
    afterAll(async () => {
      if (started) await backend?.close();
    }, 60_000);

    for (const s of FAULT_SCENARIOS) {
      const reason = notApplicable(s);
      if (reason) {
        results.notApplicable(spec(s), reason);
        continue;
      }
      reliabilityTest(
        results,
        spec(s),
        async (details) => {
          await ready();
          await s.run(ctx!, details);
        },
        { timeout: 90_000 },
      );
    }
  });
}
