// Prints the figures of bench/results.json (or the file given) as Markdown
// tables, for docs/performance.md:
//   node bench/markdown.mjs [bench/results.json]
//   node bench/markdown.mjs bench/results-scale.json
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const file = process.argv[2] ?? join(import.meta.dirname, 'results.json');
const r = JSON.parse(readFileSync(file, 'utf8'));
const out = [];
const n = (v, d = 1) =>
  v === null || v === undefined
    ? '—'
    : Number(v).toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d });
const row = (cells) => out.push(`| ${cells.join(' | ')} |`);
const head = (cells, align) => {
  row(cells);
  out.push(`|${align.map((a) => (a === 'r' ? '---:' : '---')).join('|')}|`);
};

const m = r.machine;
/** A [before, after] 1-minute load reading, or a note that this run did not record one. */
const load = (range) =>
  Array.isArray(range)
    ? range[0] === range[1]
      ? n(range[0], 2)
      : `${n(range[0], 2)}–${n(range[1], 2)}`
    : 'not recorded';
const perFigure = [r.pick?.[0], r.rebuild?.[0], r.convergence?.[0], r.memory, r.tcp, r.scale?.rows?.[0]].some(
  (x) => x && 'load_1m' in x,
);
out.push(
  `Measured ${m.date.slice(0, 10)} on ${m.cpus} × ${m.cpu_model}, Node ${m.node}, grpc-js ${m.grpc_js}, switchyard ${m.switchyard_commit}${m.quick ? ' (quick run)' : ''}; load average (1 / 5 / 15 min) ${m.loadavg_start.join(' / ')} at the start${m.loadavg_end ? ` and ${m.loadavg_end.join(' / ')} at the end` : ''}, on ${m.cpus} cores. ${perFigure ? 'Each figure carries the 1-minute load average while it was measured.' : 'This run did not record the load while each figure was measured (runs from then on do).'}`,
  '',
);

if (r.pick?.length) {
  const sizes = [...new Set(r.pick.map((p) => p.endpoints))];
  const subjects = [];
  for (const p of r.pick) {
    const label = `${p.peer ? `${p.peer} ` : ''}\`${p.strategy}\`${p.variant ? ` (${p.variant})` : ''}`;
    if (!subjects.some((s) => s.label === label))
      subjects.push({
        label,
        rows: r.pick.filter(
          (q) => q.strategy === p.strategy && (q.variant ?? '') === (p.variant ?? '') && q.peer === p.peer,
        ),
      });
  }
  out.push('**Pick cost**, median CPU ns per pick (bytes allocated per pick in brackets):', '');
  head(
    ['strategy', ...sizes.map((s) => `${s.toLocaleString('en-US')} endpoints`), ...(perFigure ? ['load (1 min)'] : [])],
    ['l', ...sizes.map(() => 'r'), ...(perFigure ? ['r'] : [])],
  );
  for (const s of subjects) {
    if (s.rows.every((x) => x.ns_median === null)) {
      row([s.label, ...sizes.map(() => 'not available'), ...(perFigure ? ['—'] : [])]);
      continue;
    }
    row([
      s.label,
      ...sizes.map((size) => {
        const x = s.rows.find((q) => q.endpoints === size);
        return x ? `${n(x.ns_median)} (${n(x.bytes_per_pick, 0)} B)` : '—';
      }),
      ...(perFigure ? [load(s.rows[0].load_1m)] : []),
    ]);
  }
  out.push('');
}

if (r.rebuild?.length) {
  out.push('**Picker rebuild** after one endpoint joins or leaves 10,000, median ms:', '');
  head(['strategy', 'median', 'join', 'leave', ...(perFigure ? ['load (1 min)'] : [])], ['l', 'r', 'r', 'r', 'r']);
  for (const x of r.rebuild)
    row([
      `${x.peer ? `${x.peer} ` : ''}\`${x.strategy}\`${x.variant ? ` (${x.variant})` : ''}`,
      n(x.ms_median, 2),
      n(x.ms_join_median, 2),
      n(x.ms_leave_median, 2),
      ...(perFigure ? [load(x.load_1m)] : []),
    ]);
  if (r.snapshot_update)
    out.push(
      '',
      r.snapshot_update.full_list_ms_median === undefined
        ? `Besides the picker, the snapshot itself (\`EndpointSet.next\` with one join, plus pruning load records) took ${n(r.snapshot_update.ms_median, 2)} ms at 10,000 endpoints${perFigure ? ` (load ${load(r.snapshot_update.load_1m)})` : ''}.`
        : `Besides the picker, the snapshot itself (the registry's diff of one join or one leave applied with \`EndpointSet.apply\`, and the departed endpoint's load record forgotten) took ${n(r.snapshot_update.ms_median, 3)} ms at 10,000 endpoints; a backend that only has a full list pays ${n(r.snapshot_update.full_list_ms_median, 2)} ms (\`EndpointSet.next\`)${perFigure ? ` (load ${load(r.snapshot_update.load_1m)})` : ''}.`,
    );
  out.push('');
}

const e = r.e2e;
if (e?.switchyard_rps) {
  const order = e.order_per_round
    ? 'each round starting with the next client (no client always runs first)'
    : 'each round in the same order, switchyard first';
  out.push(
    `**End to end**, unary calls over 3 Greeter servers (one process each), concurrency ${e.concurrency}, medians of ${e.rounds} alternated rounds of ${e.seconds_per_run} s, ${order}:`,
    '',
  );
  const withLoad = (cells, mode) => [...cells, ...(e.load_1m ? [load(e.load_1m[mode])] : [])];
  head(
    ['client', 'calls/s', 'p50 ms', 'p99 ms', 'client CPU µs/call', ...(e.load_1m ? ['load (1 min)'] : [])],
    ['l', 'r', 'r', 'r', 'r', 'r'],
  );
  row(
    withLoad(
      [
        'switchyard `discovery:///greeter`, `round_robin`',
        n(e.switchyard_rps, 0),
        n(e.p50_ms.switchyard, 2),
        n(e.p99_ms.switchyard, 2),
        n(e.cpu_us_per_call.switchyard, 1),
      ],
      'switchyard',
    ),
  );
  if (e.switchyard_no_retry)
    row(
      withLoad(
        [
          'the same, gRPC retries off',
          n(e.switchyard_no_retry.rps, 0),
          '—',
          n(e.switchyard_no_retry.p99_ms, 2),
          n(e.switchyard_no_retry.cpu_us_per_call, 1),
        ],
        'switchyard_no_retry',
      ),
    );
  row(
    withLoad(
      [
        'grpc-js `round_robin` over an `ipv4:` list',
        n(e.grpcjs_rr_rps, 0),
        n(e.p50_ms.grpcjs_rr, 2),
        n(e.p99_ms.grpcjs_rr, 2),
        n(e.cpu_us_per_call.grpcjs_rr, 1),
      ],
      'grpcjs_rr',
    ),
  );
  row(
    withLoad(
      [
        'one direct channel to one server',
        n(e.direct_rps, 0),
        n(e.p50_ms.direct, 2),
        n(e.p99_ms.direct, 2),
        n(e.cpu_us_per_call.direct, 1),
      ],
      'direct',
    ),
  );
  out.push(
    '',
    `Calls/s switchyard ÷ grpc-js round_robin: ${n(e.ratio_vs_grpcjs_rr, 3)} (median of per-round ratios ${n(e.paired_medians.rps_vs_grpcjs_rr, 3)}); ÷ direct: ${n(e.ratio_vs_direct, 3)}. Client CPU per call ÷ grpc-js round_robin: ${n(e.paired_medians.cpu_vs_grpcjs_rr, 3)} (per-round median); ÷ direct: ${n(e.paired_medians.cpu_vs_direct, 3)}.`,
    '',
  );
}

const t = r.tcp;
if (t?.paired_medians) {
  out.push(
    `**End to end over Nest's TCP transport**, request/response over 3 Nest TCP microservices (one process each), concurrency ${t.concurrency}, medians of ${t.rounds} alternated rounds of ${t.seconds_per_run} s:`,
    '',
  );
  head(['client', 'calls/s', 'p50 ms', 'p99 ms', 'client CPU µs/call', 'load (1 min)'], ['l', 'r', 'r', 'r', 'r', 'r']);
  for (const [label, key] of [
    ['switchyard `DiscoveryClientProxy`, `round_robin`', 'switchyard_tcp'],
    ['three `ClientTCP`s, hand-written round robin', 'clienttcp_rr'],
  ])
    row([
      label,
      n(t.rps[key], 0),
      n(t.p50_ms[key], 2),
      n(t.p99_ms[key], 2),
      n(t.cpu_us_per_call[key], 1),
      load(t.load_1m[key]),
    ]);
  out.push(
    '',
    `Per-round medians, \`DiscoveryClientProxy\` ÷ \`ClientTCP\`s: calls/s ${n(t.paired_medians.rps, 3)}, client CPU per call ${n(t.paired_medians.cpu, 3)}, p99 ${n(t.paired_medians.p99, 3)}.`,
    '',
  );
}

if (r.convergence?.length) {
  out.push("**Convergence**, registry change → the client's `endpoints$` emits it, ms:", '');
  head(
    ['backend', 'p50', 'p99', 'changes', ...(perFigure ? ['load (1 min)'] : []), 'how'],
    ['l', 'r', 'r', 'r', 'r', 'l'],
  );
  for (const x of r.convergence)
    row([
      `\`${x.backend}\``,
      n(x.p50_ms),
      n(x.p99_ms),
      x.samples ? String(x.samples) : x.status,
      ...(perFigure ? [load(x.load_1m)] : []),
      x.note ?? '',
    ]);
  out.push('');
}

if (r.memory?.endpoints) {
  const mem = r.memory;
  out.push(
    `**Memory**: ${n(mem.bytes_per_endpoint, 0)} bytes of heap per endpoint at ${mem.endpoints.toLocaleString('en-US')} endpoints with \`consistent_hash\` (${n(mem.bytes_per_endpoint_max, 0)} at most with any strategy): the instances ${n(mem.parts.instances, 0)}, the snapshot ${n(mem.parts.endpoint_set, 0)}, load records ${n(mem.parts.load_records, 0)}, the picker ${n(mem.parts.picker.consistent_hash, 0)} (\`consistent_hash\`) or less. grpc channels are not counted.${perFigure ? ` (Load ${load(mem.load_1m)}.)` : ''}`,
    '',
  );
}

const sc = r.scale;
if (sc?.rows?.length) {
  const p = sc.profile;
  out.push(
    `**Scale**: one client process with a client per service over a registry of services × instances (filled by a driver process), then ${p.churnPercent} % of the instances replaced per second for ${p.churnSeconds} s. Ready: from \`Discovery.create\` until every client serves every instance. Heap and RSS after full collections; idle CPU over ${p.idleSeconds} s with no change and no pick, once V8's memory reducer had run its collections after start-up and 12 s passed without one. Convergence: from the driver's write to the client's set showing it. Wrong sets: client sets that differ from the registry ${p.settleSeconds} s after churn stopped.`,
    '',
  );
  head(
    [
      'registry',
      'services × instances',
      'strategy',
      'ready s',
      'heap / RSS MiB',
      'idle CPU %',
      'churn p50 / p99 ms',
      'wrong sets',
      'load (1 min)',
    ],
    ['l', 'r', 'l', 'r', 'r', 'r', 'r', 'r', 'r'],
  );
  for (const x of sc.rows) {
    const shape = `${x.services.toLocaleString('en-US')} × ${x.instances.toLocaleString('en-US')}`;
    if (x.error) {
      row([`\`${x.backend}\``, shape, `\`${x.strategy}\``, `failed: ${x.error}`, '', '', '', '', '']);
      continue;
    }
    row([
      `\`${x.backend}\``,
      shape,
      `\`${x.strategy}\`${x.build === 'this' ? '' : ` (${x.build})`}`,
      x.ready_ms === null ? `${x.not_ready} never ready` : n(x.ready_ms / 1000),
      `${n(x.heap_mib, 0)} / ${n(x.rss_mib, 0)}`,
      n(x.idle_cpu_percent, 2),
      `${n(x.churn.p50_ms)} / ${n(x.churn.p99_ms)}`,
      String(x.wrong_sets),
      load(x.load_1m),
    ]);
  }
  out.push('');
}

if (r.targets?.length) {
  const met = r.targets.filter((t) => t.met === true).length;
  const other = r.targets.filter((t) => t.met !== true);
  out.push(
    `**Against the targets** of this run: ${met} of ${r.targets.length} met${other.length ? '; the others:' : '.'}`,
    '',
  );
  if (other.length) {
    head(['target', 'measured', 'limit', 'met'], ['l', 'r', 'l', 'l']);
    for (const t of other)
      row([
        t.what,
        String(t.measured),
        t.target.replace('<=', '≤').replace('>=', '≥'),
        t.met === null ? 'not measured' : 'no',
      ]);
    out.push('');
  }
}

process.stdout.write(`${out.join('\n')}\n`);
