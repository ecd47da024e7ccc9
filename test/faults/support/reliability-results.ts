import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { it, type TestContext } from 'vitest';

/**
 * Where every reliability test (faults, fuzz, security, soak) writes one
 * JSON line per result; scripts/reliability-table.mjs renders RELIABILITY.md
 * from these files, so the table only ever shows what a run observed.
 */
export const RESULTS_DIR = join(import.meta.dirname, '../../../test-artifacts/reliability');

/** `known-bug`: the test documents a lib bug with `it.fails`; `n/a` / `not-yet`: recorded on purpose, with a note. */
export type ResultStatus = 'pass' | 'fail' | 'known-bug' | 'n/a' | 'not-yet';

/** What a reliability test checks, in the words the table prints. */
export interface ResultSpec {
  suite: 'faults' | 'fuzz' | 'security' | 'soak';
  /** Stable id of the scenario or check (a table row). */
  scenario: string;
  /** Row label. */
  title: string;
  /** Table column: a backend, or `any` for checks that do not depend on one. */
  backend: string;
  /** What was asserted, one sentence. */
  asserted: string;
}

/**
 * The vitest run a line belongs to (the global setup exports its pid), so
 * the table keeps only the latest run's lines when two runs wrote into the
 * same file.
 */
const RUN_ID = process.env.SWITCHYARD_TEST_RUN_PID ?? String(process.pid);

export interface ResultLine extends ResultSpec {
  status: ResultStatus;
  /** Numbers the run measured (calls, failed calls, emissions, ...). */
  details?: Record<string, unknown>;
  note?: string;
  at: string;
  run: string;
}

/**
 * One results file per test file. Creating it truncates what an earlier
 * run of the same file wrote, so re-running one file replaces only its rows.
 *
 * @example
 * const results = new ResultsFile('faults-etcd'); results.record({ ...spec, status: 'pass' });
 */
export class ResultsFile {
  readonly path: string;

  constructor(name: string) {
    mkdirSync(RESULTS_DIR, { recursive: true });
    this.path = join(RESULTS_DIR, `${name}.jsonl`);
    writeFileSync(this.path, '');
  }

  record(line: Omit<ResultLine, 'at' | 'run'>): void {
    appendFileSync(this.path, `${JSON.stringify({ ...line, at: new Date().toISOString(), run: RUN_ID })}\n`);
  }

  /** Records a cell that is not tested on purpose (the reason is printed in the table). */
  notApplicable(spec: ResultSpec, note: string, status: 'n/a' | 'not-yet' = 'n/a'): void {
    this.record({ ...spec, status, note });
  }
}

/** Extra options of {@link reliabilityTest}. */
export interface ReliabilityTestOptions {
  timeout?: number;
  /**
   * The test shows a lib bug that is not fixed yet: it runs as `it.fails`
   * (the suite stays green, and turns red once the bug is fixed so the
   * marker gets removed) and the table shows "known bug" with this note.
   */
  knownBug?: string;
}

/**
 * An `it` whose outcome (and the numbers it measured) lands in the results
 * file, pass or fail, timeouts included.
 *
 * @example
 * reliabilityTest(results, spec, async (details) => { details.calls = 10; expect(failed).toBe(0); });
 */
export function reliabilityTest(
  results: ResultsFile,
  spec: ResultSpec,
  body: (details: Record<string, unknown>, context: TestContext) => Promise<void> | void,
  options: ReliabilityTestOptions = {},
): void {
  const run = options.knownBug ? it.fails : it;
  const name = spec.backend === 'any' ? spec.title : `${spec.title} [${spec.backend}]`;
  run(
    name,
    async (context) => {
      const details: Record<string, unknown> = {};
      context.onTestFinished(({ task }) => {
        const failed = task.result?.state === 'fail';
        const error = task.result?.errors?.[0]?.message;
        if (options.knownBug) {
          // it.fails: a failing body is the expected outcome (vitest flips the state after these hooks).
          results.record({
            ...spec,
            status: failed ? 'known-bug' : 'fail',
            details,
            note: failed
              ? `${options.knownBug} (${(error ?? '').split('\n')[0].slice(0, 200)})`
              : 'the bug seems fixed: remove the knownBug marker',
          });
        } else {
          results.record({
            ...spec,
            status: failed ? 'fail' : 'pass',
            details,
            ...(failed && error ? { note: error.split('\n')[0].slice(0, 300) } : {}),
          });
        }
      });
      await body(details, context);
    },
    options.timeout,
  );
}
