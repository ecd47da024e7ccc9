// Reads the reliability results (test-artifacts/reliability/*.jsonl, one JSON
// line per check) and checks they can be shown as one run: every line names
// its run, commit and whether the tree was dirty; all lines are of one run;
// every results file and fault scenario the test tree defines has a row.
// What is missing becomes a failed row with the reason, never "not run".
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';

export const BACKENDS = ['local', 'etcd', 'consul', 'dns', 'mesh'];
/** The issue's fault scenarios, in the table's order (test/faults/support/fault-scenarios.ts). */
export const SCENARIO_ORDER = [
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

/** Why these results cannot be rendered as one table (mixed runs, lines without a stamp). */
export class UnrenderableResults extends Error {}

function specFiles(dir) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory()
      ? specFiles(join(dir, entry.name))
      : entry.name.endsWith('.spec.ts')
        ? [join(dir, entry.name)]
        : [],
  );
}

/**
 * The results files the test tree writes, read from its spec files: every
 * top-level `const x = new ResultsFile('name')` and
 * `defineFaultScenarios('backend', ...)` (a line that starts with one, not
 * text inside a string). A file missing after a full run means a test file
 * that did not run or could not even load.
 */
export function expectedResultFiles(root) {
  const expected = new Map();
  for (const file of ['faults', 'fuzz', 'security', 'soak'].flatMap((d) => specFiles(join(root, 'test', d)))) {
    const text = readFileSync(file, 'utf8');
    const where = relative(root, file);
    for (const [, name] of text.matchAll(/^const \w+ = new ResultsFile\('([^']+)'\)/gm)) expected.set(name, where);
    for (const [, backend] of text.matchAll(/^defineFaultScenarios\('([a-z]+)'/gm))
      expected.set(`faults-${backend}`, where);
  }
  return expected;
}

function parseLines(path) {
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((text, i) => {
      try {
        return JSON.parse(text);
      } catch {
        throw new UnrenderableResults(`${path}:${i + 1} is not JSON: ${text.slice(0, 80)}`);
      }
    });
}

/** A row for a check that has no result: rendered ❌ with the reason. */
function missing(spec, reason, stamp) {
  return { ...spec, ...stamp, status: 'fail', note: reason, missing: true, at: undefined };
}

/**
 * Every line of one run, plus failed rows for what that run should have
 * written and did not. Throws {@link UnrenderableResults} for lines of more
 * than one run (or of a run other than `runId`), or lines without a stamp.
 */
export function readRun({ root, resultsDir, runId }) {
  const files = existsSync(resultsDir)
    ? readdirSync(resultsDir)
        .filter((f) => f.endsWith('.jsonl'))
        .sort()
    : [];
  const lines = [];
  for (const file of files)
    for (const line of parseLines(join(resultsDir, file))) {
      if (!line.run || !line.commit || typeof line.dirty !== 'boolean')
        throw new UnrenderableResults(
          `${file}: a line without run, commit and dirty flag (written before results were stamped): run the suites again`,
        );
      lines.push({ ...line, file: file.replace(/\.jsonl$/, '') });
    }
  const runs = new Map();
  for (const line of lines) {
    const key = `${line.run} at ${line.commit.slice(0, 10)}${line.dirty ? ' (dirty tree)' : ''}`;
    runs.set(key, [...new Set([...(runs.get(key) ?? []), line.file])]);
  }
  if (runs.size > 1)
    throw new UnrenderableResults(
      `the results come from ${runs.size} runs, and one table shows one run:\n${[...runs]
        .map(([run, names]) => `  ${run}: ${names.join(', ')}`)
        .join('\n')}\nRun \`npm run reliability\` (one full run of a clean tree), or run the missing suites again.`,
    );
  if (runId && lines.length && lines[0].run !== runId)
    throw new UnrenderableResults(`the results are of run ${lines[0].run}, not of run ${runId}`);
  const stamp = lines.length
    ? { run: lines[0].run, commit: lines[0].commit, dirty: lines[0].dirty }
    : { run: runId ?? 'none', commit: 'unknown', dirty: true };

  // A later line of the same check replaces an earlier one.
  const byKey = new Map();
  for (const line of lines) byKey.set(`${line.suite}|${line.scenario}|${line.backend}`, line);
  const results = [...byKey.values()];

  for (const [name, source] of expectedResultFiles(root)) {
    if (files.includes(`${name}.jsonl`)) continue;
    const suite = name.split('-')[0];
    const backend = name.startsWith('faults-') ? name.slice('faults-'.length) : 'any';
    if (suite === 'faults') continue; // every scenario of it gets its own row below
    results.push(
      missing(
        { suite, scenario: `${name}-missing`, title: `${source}`, backend, asserted: 'its checks' },
        `${name}.jsonl is missing: ${source} did not run in this run, or could not load`,
        stamp,
      ),
    );
  }
  const titles = new Map(results.filter((r) => r.suite === 'faults').map((r) => [r.scenario, r.title]));
  const faultBackends = [...expectedResultFiles(root).keys()]
    .filter((name) => name.startsWith('faults-'))
    .map((name) => name.slice('faults-'.length));
  for (const backend of faultBackends)
    for (const scenario of SCENARIO_ORDER)
      if (!results.some((r) => r.suite === 'faults' && r.scenario === scenario && r.backend === backend))
        results.push(
          missing(
            { suite: 'faults', scenario, title: titles.get(scenario) ?? scenario, backend, asserted: '' },
            `no result in this run: faults-${backend} did not run, could not load, or has no such scenario`,
            stamp,
          ),
        );
  return { stamp, results };
}
