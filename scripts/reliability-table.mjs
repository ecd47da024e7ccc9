#!/usr/bin/env node
// Renders RELIABILITY.md from what the reliability suites wrote into
// test-artifacts/reliability/*.jsonl (one JSON line per check: fault
// scenarios, fuzzing, security checks, soak). Nothing in the table is typed
// by hand, and it shows one run only: the run id and commit come from the
// lines themselves. A check that failed, could not run, or has no line in
// the run is a ❌ row with the reason, and the exit code is then 1.
//
// Usage: node scripts/reliability-table.mjs [--out RELIABILITY.md] [--run ID] [--results DIR] [--root DIR]
//   `npm run reliability` runs every suite on a clean tree and calls this.
// Exit: 0 all rows pass (or n/a, known bug, not yet); 1 a row failed (the
// file is written); 2 the results cannot be one table (nothing is written).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { measured } from './reliability/measured.mjs';
import { BACKENDS, readRun, SCENARIO_ORDER, UnrenderableResults } from './reliability/results.mjs';

const option = (name) => (process.argv.includes(name) ? process.argv[process.argv.indexOf(name) + 1] : undefined);
/** The checkout whose test tree says which results a run must have (`--root`: the renderer's own tests). */
const ROOT = option('--root') ?? join(import.meta.dirname, '..');
const OUT = option('--out') ?? join(ROOT, 'RELIABILITY.md');
const RESULTS_DIR = option('--results') ?? join(ROOT, 'test-artifacts/reliability');
const MARK = {
  pass: '✅ pass',
  fail: '❌ FAIL',
  'known-bug': '🐞 known bug',
  'n/a': '➖ n/a',
  'not-yet': '⏳ not yet',
};
const SELF_CHECK = '/self-check';

const escape = (text) =>
  String(text ?? '')
    .replace(/\|/g, '\\|')
    .replace(/\n/g, ' ');

function render({ stamp, results }) {
  const faults = results.filter((r) => r.suite === 'faults');
  const selfChecks = results.filter((r) => r.suite === 'fuzz' && r.scenario.endsWith(SELF_CHECK));
  const fuzz = results.filter((r) => r.suite === 'fuzz' && !r.scenario.endsWith(SELF_CHECK));
  const security = results.filter((r) => r.suite === 'security');
  const soak = results.filter((r) => r.suite === 'soak');
  const overload = results.filter((r) => r.suite === 'overload');
  const when = results
    .map((r) => r.at)
    .filter(Boolean)
    .sort();
  const out = [];
  const notes = [];
  const noteFor = (text) => {
    let index = notes.indexOf(text);
    if (index < 0) index = notes.push(text) - 1;
    return `[^${index + 1}]`;
  };
  const cell = (r) => {
    const mark = MARK[r.status] ?? r.status;
    return r.note && r.status !== 'pass' ? `${mark} ${noteFor(r.note)}` : mark;
  };

  out.push('# Reliability', '');
  out.push(
    'What switchyard has been shown to survive, as observed by its own test suite: every cell below comes from one',
    'run of the reliability tests (`test/faults`, `test/fuzz`, `test/security`, `test/soak`), which write their results',
    'to `test-artifacts/reliability/` stamped with the run and the commit; `npm run reliability` makes that run on a',
    'clean tree and renders this file (`node scripts/reliability-table.mjs`), refusing results of more than one run.',
    "Registries and services are real: etcd 3.4, a Consul 1.8 dev agent, dnsmasq, the project's xDS control plane,",
    'and gRPC Greeter servers in their own processes (started, SIGTERMed, SIGKILLed and SIGSTOPped by the harness).',
    '',
  );
  const tree = stamp.dirty
    ? '**with uncommitted changes in the working tree: these results may not be those of this commit**'
    : 'clean tree';
  const loads = results.map((r) => r.load1m).filter((l) => typeof l === 'number');
  const cores = results.find((r) => r.cores)?.cores;
  const load = loads.length
    ? `1-minute load average ${Math.min(...loads)}–${Math.max(...loads)} while results were recorded${cores ? `, on ${cores} cores` : ''}`
    : 'load average not recorded';
  out.push(
    `Run \`${stamp.run}\`: ${when[0] ?? 'no results'} – ${when.at(-1) ?? 'no results'}, commit \`${stamp.commit.slice(0, 7)}\` (${tree}), Node ${process.version}, ${process.platform}/${process.arch}; ${load}.`,
    '',
  );
  out.push(
    'Legend: ✅ pass · ❌ FAIL (the check failed, or could not run: a peer that did not start, a set-up that threw, no result',
    'in this run; the footnote says which) · 🐞 known bug (a test pins a library bug that is not fixed yet; it turns red once',
    'the bug is fixed) · ➖ n/a (the fault does not exist for that backend; the footnote says why) · ⏳ not yet (needs a part',
    'that has not landed; the footnote names it).',
    '',
  );
  out.push(
    'Calls use `ServiceClient.call()` with retries on (`maxAttempts: 3`, backoff 25–250 ms, budget `{ maxTokens: 100,',
    'tokenRatio: 1 }`) unless a row says otherwise; registrations use a 2 s TTL and a 0.5 s heartbeat. The load generator',
    'starts calls on a fixed schedule; calls that fell due while its own process stalled start late (up to 250 ms worth),',
    'older ones are never made: they are counted, and a scenario fails when more than 1 % of the calls due in its fault',
    'window were never made.',
    '',
  );

  out.push('## Fault scenarios × backends', '');
  const rank = (id) => (SCENARIO_ORDER.includes(id) ? SCENARIO_ORDER.indexOf(id) : SCENARIO_ORDER.length);
  const scenarios = [...new Set(faults.map((r) => r.scenario))].sort((a, b) => rank(a) - rank(b));
  const row = (scenario, backend) => faults.find((r) => r.scenario === scenario && r.backend === backend);
  const title = (scenario) => faults.find((r) => r.scenario === scenario && !r.missing)?.title ?? scenario;
  out.push(`| scenario | ${BACKENDS.join(' | ')} |`, `|---|${BACKENDS.map(() => '---').join('|')}|`);
  for (const s of scenarios)
    out.push(`| ${escape(title(s))} | ${BACKENDS.map((b) => (row(s, b) ? cell(row(s, b)) : '')).join(' | ')} |`);
  out.push('', '### What each backend asserted, and what the run measured', '');
  for (const s of scenarios) {
    out.push(`- **${escape(title(s))}**`);
    const texts = new Map();
    for (const b of BACKENDS) {
      const r = row(s, b);
      if (r?.asserted && r.status !== 'n/a') texts.set(r.asserted, [...(texts.get(r.asserted) ?? []), b]);
    }
    for (const [text, backends] of texts) out.push(`  - asserted on ${backends.join(', ')}: ${escape(text)}.`);
    for (const b of BACKENDS) {
      const numbers = row(s, b) ? measured(row(s, b).details) : '';
      if (numbers) out.push(`  - ${b}: ${escape(numbers)}`);
    }
  }

  out.push('', '## Fuzzing and property tests (fast-check, fixed seeds)', '');
  out.push(
    'The self-check runs the same property on a deliberately broken copy of the decoder; ✅ there means the property',
    'failed on it, as it must (a property that cannot fail proves nothing).',
    '',
  );
  out.push('| input | backend | property | measured | result | self-check |', '|---|---|---|---|---|---|');
  for (const r of fuzz) {
    const check = selfChecks.find((c) => c.scenario === `${r.scenario}${SELF_CHECK}` && c.backend === r.backend);
    const checkCell = check
      ? `${cell(check)} ${escape(check.asserted.replace(/^the property fails when the decoder /, 'decoder '))}`
      : '—';
    out.push(
      `| ${escape(r.title)} | ${r.backend} | ${escape(r.asserted)} | ${escape(measured(r.details))} | ${cell(r)} | ${checkCell} |`,
    );
  }
  for (const c of selfChecks.filter((c) => !fuzz.some((r) => `${r.scenario}${SELF_CHECK}` === c.scenario)))
    out.push(`| ${escape(c.title)} | ${c.backend} | ${escape(c.asserted)} |  | ${cell(c)} | |`);

  out.push('', '## Security checks', '');
  out.push('| check | backend | asserted | result |', '|---|---|---|---|');
  for (const r of security) out.push(`| ${escape(r.title)} | ${r.backend} | ${escape(r.asserted)} | ${cell(r)} |`);

  out.push('', '## Overload protection (Greeter servers in their own processes, steered while they run)', '');
  out.push('| scenario | asserted | measured | result |', '|---|---|---|---|');
  for (const r of overload)
    out.push(`| ${escape(r.title)} | ${escape(r.asserted)} | ${escape(measured(r.details))} | ${cell(r)} |`);

  out.push('', '## Soak (`npm run test:soak`)', '');
  for (const r of soak) {
    const d = r.details ?? {};
    out.push(`**${escape(r.title)}** on ${r.backend}: ${cell(r)}. Asserted: ${escape(r.asserted)}.`, '');
    if (d.calls !== undefined) {
      out.push('| measured | value |', '|---|---|');
      out.push(`| sustainable rate (64 callers) | ${d.capacityPerSecond} calls/s |`);
      out.push(`| steady load | ${d.ratePerSecond} calls/s |`);
      out.push(`| calls / failed / never made | ${d.calls} / ${d.failed} / ${d.skipped ?? 'not counted'} |`);
      out.push(`| instance restarts | ${d.restarts} |`);
      out.push(`| heap after GC, start → end | ${d.heapStartMb} MB → ${d.heapEndMb} MB |`);
      const h = (x) =>
        Object.entries(x ?? {})
          .map(([k, v]) => `${k} ${v}`)
          .join(', ');
      out.push(`| open handles, start → end | ${escape(h(d.handlesStart))} → ${escape(h(d.handlesEnd))} |`);
    }
    out.push('');
  }

  if (notes.length) {
    if (out.at(-1) !== '') out.push('');
    out.push('## Notes', '');
    notes.forEach((text, i) => out.push(`[^${i + 1}]: ${escape(text)}`));
  }
  out.push('');
  return out.join('\n');
}

try {
  const run = readRun({ root: ROOT, resultsDir: RESULTS_DIR, runId: option('--run') });
  writeFileSync(OUT, render(run));
  const failed = run.results.filter((r) => r.status === 'fail');
  console.log(
    `${OUT}: run ${run.stamp.run} at ${run.stamp.commit.slice(0, 7)}${run.stamp.dirty ? ' (dirty tree)' : ''}, ${run.results.length} results, ${failed.length} failed`,
  );
  for (const r of failed) console.log(`  ❌ ${r.suite} ${r.scenario} [${r.backend}]: ${r.note ?? ''}`.slice(0, 300));
  process.exitCode = failed.length ? 1 : 0;
} catch (error) {
  if (!(error instanceof UnrenderableResults)) throw error;
  console.error(`reliability-table: not rendered: ${error.message}`);
  process.exitCode = 2;
}
