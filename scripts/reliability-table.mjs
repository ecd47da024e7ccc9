#!/usr/bin/env node
// Renders RELIABILITY.md from what the reliability suites wrote into
// test-artifacts/reliability/*.jsonl (one JSON line per check: fault
// scenarios, fuzzing, security checks, soak). Nothing in the table is
// typed by hand: a row shows what the last run observed, or that it did not run.
//
// Usage: node scripts/reliability-table.mjs [--out RELIABILITY.md]
//   after `npm test` (faults, fuzz, security) and `npm run test:soak`.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const ROOT = join(import.meta.dirname, '..');
const RESULTS_DIR = join(ROOT, 'test-artifacts/reliability');
const outIndex = process.argv.indexOf('--out');
const OUT = outIndex > 0 ? process.argv[outIndex + 1] : join(ROOT, 'RELIABILITY.md');
const BACKENDS = ['local', 'etcd', 'consul', 'dns', 'mesh'];
/** The order of fault scenarios; others follow in the order they appear. */
const SCENARIO_ORDER = [
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
const MARK = {
  pass: '✅ pass',
  fail: '❌ FAIL',
  'known-bug': '🐞 known bug',
  'n/a': '➖ n/a',
  'not-yet': '⏳ not yet',
};

/** Lines of every results file, keeping only the latest run that wrote into each file. */
function readResults() {
  if (!existsSync(RESULTS_DIR)) return [];
  const lines = [];
  for (const file of readdirSync(RESULTS_DIR)
    .filter((f) => f.endsWith('.jsonl'))
    .sort()) {
    const entries = readFileSync(join(RESULTS_DIR, file), 'utf8')
      .split('\n')
      .filter(Boolean)
      .flatMap((text) => {
        try {
          return [JSON.parse(text)];
        } catch {
          return [];
        }
      });
    if (!entries.length) continue;
    const latest = entries.reduce((a, b) => (a.at > b.at ? a : b));
    // A later line of the same scenario and backend in the same run replaces an earlier one.
    const byKey = new Map();
    for (const entry of entries.filter((e) => e.run === latest.run))
      byKey.set(`${entry.suite}|${entry.scenario}|${entry.backend}`, entry);
    lines.push(...byKey.values());
  }
  return lines;
}

const escape = (text) =>
  String(text ?? '')
    .replace(/\|/g, '\\|')
    .replace(/\n/g, ' ');

/** A few measured numbers, readable in a table cell. */
function numbers(details = {}) {
  const parts = [];
  if (details.calls !== undefined) parts.push(`${details.calls} calls, ${details.failed} failed`);
  if (details.withoutRetries)
    parts.push(`without retries: ${details.withoutRetries.failed} of ${details.withoutRetries.calls} failed`);
  if (details.leftRegistryAfterMs !== undefined)
    parts.push(`left the registry ${details.leftRegistryAfterMs} ms after SIGKILL`);
  if (details.leftClientSetAfterMs !== undefined)
    parts.push(`ejected by the client after ${details.leftClientSetAfterMs} ms`);
  if (details.convergedAfterMs !== undefined)
    parts.push(`converged ${details.convergedAfterMs} ms after the registry came up`);
  if (details.staleAfterMs !== undefined) parts.push(`stale after ${details.staleAfterMs} ms`);
  if (details.recoveredAfterMs !== undefined) parts.push(`recovered ${details.recoveredAfterMs} ms after SIGCONT`);
  if (details.reconnectAttempts !== undefined)
    parts.push(
      `${details.reconnectAttempts} reconnect attempts while down, at most ${details.maxReconnectGapMs} ms apart`,
    );
  if (details.clientSetChanges !== undefined)
    parts.push(
      `client set changed ${details.clientSetChanges} times, the registry's ${details.registrySetChanges} times`,
    );
  if (details.panicEvents !== undefined) parts.push(`${details.panicEvents} panic events (entered and left)`);
  if (details.healthReport)
    parts.push(
      `health report: empty "${details.healthReport.empty}", unreachable "${String(details.healthReport.unreachable ?? '').slice(0, 60)}"`,
    );
  if (details.staleSets !== undefined)
    parts.push(`${details.staleSets} stale / ${details.emptySets} empty sets during the restart`);
  if (details.unreachableReason)
    parts.push(
      `unreachable reason: "${details.unreachableReason.slice(0, 90)}${details.unreachableReason.length > 90 ? '…' : ''}"`,
    );
  if (details.runs !== undefined) parts.push(`${details.runs} runs`);
  if (details.decoded !== undefined) parts.push(`${details.decoded} decoded`);
  if (details.counts)
    parts.push(
      Object.entries(details.counts)
        .map(([k, v]) => `${v} ${k}`)
        .join(', '),
    );
  if (details.kinds)
    parts.push(
      Object.entries(details.kinds)
        .map(([k, v]) => `${v} ${k}`)
        .join(', '),
    );
  if (details.picks !== undefined) parts.push(`${details.picks} picks`);
  return parts.join('; ');
}

function gitCommit() {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
}

function render(results) {
  const faults = results.filter((r) => r.suite === 'faults');
  const fuzz = results.filter((r) => r.suite === 'fuzz');
  const security = results.filter((r) => r.suite === 'security');
  const soak = results.filter((r) => r.suite === 'soak');
  const when = results.map((r) => r.at).sort();
  const out = [];
  const notes = [];
  const noteFor = (text) => {
    let index = notes.indexOf(text);
    if (index < 0) index = notes.push(text) - 1;
    return `[^${index + 1}]`;
  };
  const cell = (r) => {
    if (!r) return 'not run';
    const mark = MARK[r.status] ?? r.status;
    return r.note && r.status !== 'pass' ? `${mark} ${noteFor(r.note)}` : mark;
  };

  out.push('# Reliability', '');
  out.push(
    'What switchyard has been shown to survive, as observed by its own test suite: every cell below comes from the',
    'last run of the reliability tests (`test/faults`, `test/fuzz`, `test/security`, `test/soak`), which write their',
    'results to `test-artifacts/reliability/`; `node scripts/reliability-table.mjs` renders this file from them.',
    "Registries and services are real: etcd 3.4, a Consul 1.8 dev agent, dnsmasq, the project's xDS control plane,",
    'and gRPC Greeter servers in their own processes (started, SIGTERMed, SIGKILLed and SIGSTOPped by the harness).',
    '',
  );
  out.push(
    `Last run: ${when[0] ?? 'never'} – ${when.at(-1) ?? 'never'}, commit \`${gitCommit()}\`, Node ${process.version}, ${process.platform}/${process.arch}.`,
    '',
  );
  out.push(
    'Legend: ✅ pass · ❌ FAIL (the last run failed) · 🐞 known bug (a test pins a library bug that is not fixed yet; it turns',
    'red once the bug is fixed) · ➖ n/a (the fault does not exist for that backend; footnote says why) · ⏳ not yet (needs a',
    'part that has not landed) · not run (no result in this run).',
    '',
  );
  out.push(
    'Calls use `ServiceClient.call()` with retries on (`maxAttempts: 3`, backoff 25–250 ms, budget `{ maxTokens: 100,',
    'tokenRatio: 1 }`) unless a row says otherwise; registrations use a 2 s TTL and a 0.5 s heartbeat.',
    '',
  );

  out.push('## Fault scenarios × backends', '');
  const scenarios = [];
  for (const r of faults) if (!scenarios.some((s) => s.scenario === r.scenario)) scenarios.push(r);
  const rank = (id) => (SCENARIO_ORDER.includes(id) ? SCENARIO_ORDER.indexOf(id) : SCENARIO_ORDER.length);
  scenarios.sort((a, b) => rank(a.scenario) - rank(b.scenario));
  out.push(`| scenario | ${BACKENDS.join(' | ')} |`, `|---|${BACKENDS.map(() => '---').join('|')}|`);
  for (const s of scenarios) {
    out.push(
      `| ${escape(s.title)} | ${BACKENDS.map((b) => cell(faults.find((r) => r.scenario === s.scenario && r.backend === b))).join(' | ')} |`,
    );
  }
  out.push('', '### What each scenario asserts, and what the last run measured', '');
  for (const s of scenarios) {
    out.push(`- **${escape(s.title)}**: ${escape(s.asserted)}.`);
    for (const b of BACKENDS) {
      const r = faults.find((x) => x.scenario === s.scenario && x.backend === b);
      const measured = r ? numbers(r.details) : '';
      if (measured) out.push(`  - ${b}: ${escape(measured)}`);
    }
  }

  out.push('', '## Fuzzing and property tests (fast-check, fixed seeds)', '');
  out.push('| input | backend | property | last run | result |', '|---|---|---|---|---|');
  for (const r of fuzz)
    out.push(
      `| ${escape(r.title)} | ${r.backend} | ${escape(r.asserted)} | ${escape(numbers(r.details))} | ${cell(r)} |`,
    );

  out.push('', '## Security checks', '');
  out.push('| check | backend | asserted | result |', '|---|---|---|---|');
  for (const r of security) out.push(`| ${escape(r.title)} | ${r.backend} | ${escape(r.asserted)} | ${cell(r)} |`);

  out.push('', '## Soak (`npm run test:soak`)', '');
  if (!soak.length) out.push('Not run in this run: `npm run test:soak`, then render again.');
  for (const r of soak) {
    const d = r.details ?? {};
    out.push(`**${escape(r.title)}** on ${r.backend}: ${cell(r)}. ${escape(r.asserted)}.`, '');
    if (d.calls !== undefined) {
      out.push('| measured | value |', '|---|---|');
      out.push(`| sustainable rate (64 callers) | ${d.capacityPerSecond} calls/s |`);
      out.push(`| steady load | ${d.ratePerSecond} calls/s |`);
      out.push(`| calls / failed | ${d.calls} / ${d.failed} |`);
      out.push(`| instance restarts | ${d.restarts} |`);
      out.push(`| heap after GC, start → end | ${d.heapStartMb} MB → ${d.heapEndMb} MB |`);
      const h = (x) =>
        Object.entries(x ?? {})
          .map(([k, v]) => `${k} ${v}`)
          .join(', ');
      out.push(`| open handles, start → end | ${escape(h(d.handlesStart))} → ${escape(h(d.handlesEnd))} |`);
    }
  }

  if (notes.length) {
    out.push('', '## Notes', '');
    notes.forEach((text, i) => out.push(`[^${i + 1}]: ${escape(text)}`));
  }
  out.push('');
  return out.join('\n');
}

const results = readResults();
writeFileSync(OUT, render(results));
const failed = results.filter((r) => r.status === 'fail');
console.log(`${OUT}: ${results.length} results (${failed.length} failed)`);
