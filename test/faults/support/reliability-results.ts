import { execFileSync } from 'node:child_process';
import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { it, type TestContext } from 'vitest';

/**
 * Where every reliability test (faults, fuzz, security, soak) writes one
 * JSON line per result; scripts/reliability-table.mjs renders RELIABILITY.md
 * from these files, so the table only ever shows what a run observed.
 * (`SWITCHYARD_RELIABILITY_RESULTS_DIR` moves them: the suite's own checks
 * of this mechanism write elsewhere.)
 */
export const RESULTS_DIR =
  process.env.SWITCHYARD_RELIABILITY_RESULTS_DIR ?? join(import.meta.dirname, '../../../test-artifacts/reliability');
const ROOT = join(import.meta.dirname, '../../..');

/**
 * `known-bug`: the test documents a lib bug with `it.fails`; `n/a`: the fault
 * does not exist for that backend; `not-yet`: the part it needs has not landed.
 * A peer that could not start, or a set-up that threw, is a `fail` with the reason.
 */
export type ResultStatus = 'pass' | 'fail' | 'known-bug' | 'n/a' | 'not-yet';

/** What a reliability test checks, in the words the table prints. */
export interface ResultSpec {
  suite: 'faults' | 'fuzz' | 'security' | 'soak' | 'overload';
  /** Stable id of the scenario or check (a table row). */
  scenario: string;
  /** Row label. */
  title: string;
  /** Table column: a backend, or `any` for checks that do not depend on one. */
  backend: string;
  /** What was asserted, one sentence: exactly what this backend's test checks. */
  asserted: string;
}

/** Which run a result belongs to, and the code it measured. */
export interface RunStamp {
  /** One id for every file of a run (`npm run reliability` sets it; otherwise the vitest run). */
  run: string;
  /** `git rev-parse HEAD` when the run started. */
  commit: string;
  /** The working tree had uncommitted changes: the results may not be those of `commit`. */
  dirty: boolean;
}

function git(args: string[]): string | undefined {
  try {
    return execFileSync('git', args, { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return undefined;
  }
}

/**
 * The stamp of this run: from the environment when `npm run reliability`
 * started the run (it checked the tree once, before any test), otherwise
 * read from git now, by this test file.
 */
export function runStamp(env: NodeJS.ProcessEnv = process.env): RunStamp {
  const run = env.SWITCHYARD_RELIABILITY_RUN ?? `vitest-${env.SWITCHYARD_TEST_RUN_PID ?? process.pid}`;
  if (env.SWITCHYARD_RELIABILITY_COMMIT)
    return { run, commit: env.SWITCHYARD_RELIABILITY_COMMIT, dirty: env.SWITCHYARD_RELIABILITY_DIRTY !== '0' };
  const status = git(['status', '--porcelain']);
  return { run, commit: git(['rev-parse', 'HEAD']) ?? 'unknown', dirty: status === undefined || status !== '' };
}

export interface ResultLine extends ResultSpec, RunStamp {
  status: ResultStatus;
  /** The machine's 1-minute load average when the result was recorded, and its cores: a busy machine shows. */
  load1m?: number;
  cores?: number;
  /** Numbers the run measured (calls, failed calls, skipped calls, emissions, ...). */
  details?: Record<string, unknown>;
  note?: string;
  at: string;
}

/**
 * One results file per test file. Creating it truncates what an earlier
 * run of the same file wrote, so re-running one file replaces only its rows
 * (and the renderer refuses to put rows of different runs in one table).
 * Create it before anything that can throw, so a set-up failure still
 * replaces the old rows with failed ones.
 *
 * @example
 * const results = new ResultsFile('faults-etcd'); results.record({ ...spec, status: 'pass' });
 */
export class ResultsFile {
  readonly path: string;
  private readonly stamp = runStamp();

  constructor(name: string) {
    mkdirSync(RESULTS_DIR, { recursive: true });
    this.path = join(RESULTS_DIR, `${name}.jsonl`);
    writeFileSync(this.path, '');
  }

  record(line: Omit<ResultLine, 'at' | 'load1m' | 'cores' | keyof RunStamp>): void {
    const machine = { load1m: Math.round(loadavg()[0] * 100) / 100, cores: cpus().length };
    appendFileSync(
      this.path,
      `${JSON.stringify({ ...line, ...this.stamp, ...machine, at: new Date().toISOString() })}\n`,
    );
  }

  /** Records a cell that is not tested on purpose: the fault does not exist for this backend (the reason is printed). */
  notApplicable(spec: ResultSpec, note: string): void {
    this.record({ ...spec, status: 'n/a', note });
  }

  /** Records a cell whose test needs a part that has not landed yet (the part is named in the note). */
  notYet(spec: ResultSpec, part: string): void {
    this.record({ ...spec, status: 'not-yet', note: `needs ${part}, which has not landed` });
  }

  /** Records a cell that could not run: a peer that did not start, a set-up that threw. It renders as ❌ with the reason. */
  couldNotRun(spec: ResultSpec, reason: string): void {
    this.record({ ...spec, status: 'fail', note: reason });
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
            ...(failed ? { note: (error ?? 'failed without an error message').split('\n')[0].slice(0, 300) } : {}),
          });
        }
      });
      await body(details, context);
    },
    options.timeout,
  );
}
