// `npm run bench`: the benchmark suite. Measures, against the compiled
// library in dist/ (npm run bench builds it first):
//   1. pick cost per strategy at 3, 100 and 10,000 endpoints (ns, bytes),
//      beside Moleculer's strategies when moleculer is installed;
//   2. picker rebuild after one endpoint joins or leaves 10,000;
//   3. end to end: unary calls over 3 Greeter servers in their own processes,
//      switchyard's discovery:/// channel vs grpc-js round_robin vs direct,
//      each round starting with the next one (no side always runs first);
//   4. convergence: registry change -> client's endpoints$ emission, per backend;
//   5. memory: retained heap per endpoint at 10,000 endpoints;
//   6. tcp: request/response over 3 Nest TCP microservices, DiscoveryClientProxy
//      vs three ClientTCPs in a hand-written round robin (bench/support/tcp-part.mjs).
//   7. http: client.fetch and the dispatcher vs a hand-written undici round robin and axios (bench/support/http-part.mjs).
// (One file of about 800 lines: the parts share the profile, the targets and
// the report; the measuring code lives in the workers.)
// Prints tables and writes bench/results.json; every figure carries the
// 1-minute load average it was measured under, and the run's load at its
// start and end is printed always. Environment:
//   BENCH_QUICK=1                 a ~1-minute smoke run (fewer, shorter samples)
//   BENCH_ONLY=pick,e2e,...       run only these parts (pick, rebuild, e2e, echo, convergence, memory, overload, tcp, http, scale)
//                                 scale (one client over 100,000 instances, bench/parts/scale.mjs) takes ~30 min: BENCH_ONLY=scale
//   BENCH_OUT=path                where to write the results (default bench/results.json; bench/results-scale.json for BENCH_ONLY=scale)
//   BENCH_E2E_SECONDS, BENCH_E2E_ROUNDS, BENCH_E2E_CONCURRENCY, BENCH_CONVERGENCE_CHANGES
//   BENCH_E2E_NO_RETRY=1          also run the discovery:/// channel with gRPC retries off
//   BENCH_REPORT=1                measure nothing: print the tables of the results file again
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem, type as osType, release } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { MOLECULER_STRATEGIES, PEER_NAME, loadMoleculer } from './support/moleculer.mjs';
import { httpReport, httpTargetChecks, runHttpPart } from './support/http-part.mjs';
import { startConsul, startDnsmasq, startEtcd, startGreeter } from './support/peers.mjs';
import { ROOT, runWorker, stopAll, stopAllOnSignals } from './support/processes.mjs';
import { median, percentile, round } from './support/stats.mjs';
import { fmt, table } from './support/table.mjs';
import { echoPart, echoReport, echoTargets } from './parts/echo.mjs';
import { overloadPart, overloadReport, overloadTargets } from './parts/overload.mjs';
import { scalePart, scaleReport, scaleTargets } from './parts/scale.mjs';
import { tcpEndToEnd, tcpReport, tcpTargetChecks } from './support/tcp-part.mjs';

const env = process.env;
const QUICK = env.BENCH_QUICK === '1' || env.BENCH_QUICK === 'true';
const PARTS = ['pick', 'rebuild', 'e2e', 'echo', 'convergence', 'memory', 'overload', 'tcp', 'http', 'scale'];
const ONLY = env.BENCH_ONLY
  ? env.BENCH_ONLY.split(',')
      .map((s) => s.trim())
      .filter(Boolean)
  : PARTS.filter((part) => part !== 'scale');
/** What a plain `npm run bench` runs: every part but `scale` (about half an hour on its own). */
const DEFAULT_PARTS = PARTS.filter((part) => part !== 'scale');
for (const part of ONLY)
  if (!PARTS.includes(part))
    throw new Error(`BENCH_ONLY: unknown part '${part}' (expected some of ${PARTS.join(', ')})`);
// The scale part (half an hour, its own machine load) keeps its figures in a file of its own.
const OUT =
  env.BENCH_OUT ??
  join(ROOT, ONLY.length === 1 && ONLY[0] === 'scale' ? 'bench/results-scale.json' : 'bench/results.json');

function numberFromEnv(name, fallback) {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name}: expected a positive number, got '${raw}'`);
  return value;
}

const PROFILE = {
  pick: QUICK
    ? { batches: 11, batchMs: 5, warmupMs: 80, allocMs: 60, rebuildIterations: 5 }
    : { batches: 31, batchMs: 10, warmupMs: 150, allocMs: 150, rebuildIterations: 15 },
  e2e: {
    concurrency: numberFromEnv('BENCH_E2E_CONCURRENCY', 64),
    rounds: numberFromEnv('BENCH_E2E_ROUNDS', QUICK ? 2 : 5),
    durationMs: numberFromEnv('BENCH_E2E_SECONDS', QUICK ? 2 : 5) * 1000,
    warmupMs: QUICK ? 1_000 : 2_000,
  },
  convergence: { changes: numberFromEnv('BENCH_CONVERGENCE_CHANGES', QUICK ? 16 : 50) },
};
const SIZES = [3, 100, 10_000];
const REBUILD_SIZE = 10_000;

/** Targets from the benchmark issue; `check` returns [measured, ok]. */
const TARGETS = {
  pickNs: 100,
  pickNsHash: 150,
  /** Per change at 10,000 endpoints (issue 22): every picker update, and the snapshot update besides it. */
  rebuildMs: 1,
  snapshotMs: 0.5,
  ratioVsGrpcjs: 0.97,
  cpuAboveGrpcjs: 1.03,
  p99AboveGrpcjs: 1.1,
  convergenceP99: { etcd: 50, mesh: 50, kubernetes: 50, local: 250, consul: 250 },
  memoryBytes: 1024,
};

const OUR_PICK_SUBJECTS = [
  { strategy: 'round_robin' },
  { strategy: 'random' },
  { strategy: 'consistent_hash' },
  { strategy: 'least_connections' },
  { strategy: 'weighted_round_robin' },
  { strategy: 'weighted_random' },
  { strategy: 'p2c_ewma' },
  // Variants: the fallback for calls without a key, bounded load, and a small hot key set.
  { strategy: 'consistent_hash', variant: 'no key' },
  { strategy: 'consistent_hash', variant: 'bounded 1.25' },
  { strategy: 'consistent_hash', variant: 'hot keys', keyCount: 512 },
];
const PEER_PICK_SUBJECTS = [
  ...MOLECULER_STRATEGIES.map((s) => ({ strategy: s.strategy, versus: s.versus })),
  // Moleculer's shard keeps an LRU cache of 1,000 keys: the hot set fits in it.
  { strategy: 'Shard', versus: 'consistent_hash', variant: 'hot keys', keyCount: 512 },
];
/** The pick worker in alloc mode gets a young generation large enough that a long run triggers no GC. */
const ALLOC_FLAGS = ['--expose-gc', '--min-semi-space-size=64', '--max-semi-space-size=64'];

const log = (message) => process.stderr.write(`${message}\n`);

/** The 1-minute load average now (2 decimals). */
const load1m = () => round(loadavg()[0], 2);

/**
 * Runs a worker and notes the 1-minute load average before and after it
 * (as [lowest, highest]):
 * every figure is printed with the load it was measured under, so a figure
 * from a busy machine says so.
 */
async function measure(script, input, options) {
  const before = load1m();
  const result = await runWorker(script, input, options);
  return { ...result, load_1m: loadRange(before, load1m()) };
}

/** [lowest, highest] of several [before, after] load readings. */
function loadRange(...readings) {
  const values = readings.flat().filter((v) => typeof v === 'number');
  return values.length ? [Math.min(...values), Math.max(...values)] : null;
}

function machine() {
  const require = createRequire(import.meta.url);
  let commit = 'unknown';
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'lib'], { cwd: ROOT, encoding: 'utf8' }).trim();
    if (dirty) commit += ' + uncommitted lib/ changes';
  } catch {
    // not a git checkout
  }
  return {
    node: process.version,
    cpus: cpus().length,
    cpu_model: cpus()[0]?.model,
    os: `${osType()} ${release()}`,
    memory_gib: round(totalmem() / 2 ** 30, 1),
    grpc_js: require('@grpc/grpc-js/package.json').version,
    switchyard_commit: commit,
    loadavg_start: loadavg().map((l) => round(l, 2)),
    date: new Date().toISOString(),
    quick: QUICK,
  };
}

// ---------------------------------------------------------------- 1 + 2: pick and rebuild

async function pickAndRebuild() {
  const common = { sizes: SIZES, ...PROFILE.pick };
  const withRebuild = ONLY.includes('rebuild');
  const pick = [];
  const rebuild = [];
  let snapshot;
  for (const subject of OUR_PICK_SUBJECTS) {
    const label = subject.variant ? `${subject.strategy} (${subject.variant})` : subject.strategy;
    log(`  pick: ${label}`);
    const mainRow = !subject.variant;
    const input = {
      target: 'ours',
      ...common,
      ...subject,
      rebuildSize: withRebuild && (mainRow || subject.variant === 'bounded 1.25') ? REBUILD_SIZE : 0,
    };
    const timed = await measure('pick.worker.mjs', input, { execArgv: ['--expose-gc'] });
    const alloc = ONLY.includes('pick')
      ? await measure('pick.worker.mjs', { ...input, mode: 'alloc', rebuildSize: 0 }, { execArgv: ALLOC_FLAGS })
      : undefined;
    if (ONLY.includes('pick')) pick.push(...pickRows(subject, timed, alloc, null));
    if (timed.rebuild)
      rebuild.push({
        strategy: subject.strategy,
        ...(subject.variant ? { variant: subject.variant } : {}),
        endpoints: REBUILD_SIZE,
        ...roundAll(timed.rebuild, 3),
        peer: null,
        load_1m: timed.load_1m,
      });
    if (timed.snapshot) snapshot = { endpoints: REBUILD_SIZE, ...roundAll(timed.snapshot, 3), load_1m: timed.load_1m };
  }
  const moleculer = loadMoleculer();
  for (const subject of PEER_PICK_SUBJECTS) {
    if (!moleculer.Strategies) {
      if (ONLY.includes('pick')) {
        for (const n of SIZES) {
          pick.push({
            strategy: subject.strategy,
            ...(subject.variant ? { variant: subject.variant } : {}),
            versus: subject.versus,
            endpoints: n,
            ns_median: null,
            bytes_per_pick: null,
            peer: PEER_NAME,
            note: `not available (install moleculer to compare): ${moleculer.problem}`,
          });
        }
      }
      continue;
    }
    const label = `${PEER_NAME} ${subject.strategy}${subject.variant ? ` (${subject.variant})` : ''}`;
    log(`  pick: ${label}`);
    const input = {
      target: 'moleculer',
      ...common,
      strategy: subject.strategy,
      variant: subject.variant,
      keyCount: subject.keyCount,
      rebuildSize: withRebuild && !subject.variant && subject.strategy === 'Shard' ? REBUILD_SIZE : 0,
    };
    try {
      const timed = await measure('pick.worker.mjs', input, { execArgv: ['--expose-gc'] });
      const alloc = ONLY.includes('pick')
        ? await measure('pick.worker.mjs', { ...input, mode: 'alloc', rebuildSize: 0 }, { execArgv: ALLOC_FLAGS })
        : undefined;
      if (ONLY.includes('pick'))
        pick.push(...pickRows({ ...subject, peerVersion: timed.peer_version }, timed, alloc, PEER_NAME));
      if (timed.rebuild)
        rebuild.push({
          strategy: subject.strategy,
          versus: subject.versus,
          endpoints: REBUILD_SIZE,
          ...roundAll(timed.rebuild, 3),
          peer: PEER_NAME,
          load_1m: timed.load_1m,
        });
    } catch (error) {
      log(`  ${label} failed: ${error.message.split('\n')[0]}`);
      if (ONLY.includes('pick'))
        for (const n of SIZES)
          pick.push({
            strategy: subject.strategy,
            versus: subject.versus,
            endpoints: n,
            ns_median: null,
            bytes_per_pick: null,
            peer: PEER_NAME,
            note: `failed: ${error.message.split('\n')[0]}`,
          });
    }
  }
  return { pick, rebuild, snapshot, peerVersion: moleculer.version };
}

function pickRows(subject, timed, alloc, peer) {
  return timed.picks.map((t, i) => {
    const a = alloc?.picks[i];
    return {
      strategy: subject.strategy,
      ...(subject.variant ? { variant: subject.variant } : {}),
      ...(subject.versus ? { versus: subject.versus } : {}),
      endpoints: t.endpoints,
      ns_median: round(t.ns_median, 1),
      ns_p10: round(t.ns_p10, 1),
      ns_p90: round(t.ns_p90, 1),
      ns_wall_median: round(t.ns_wall_median, 1),
      bytes_per_pick: a ? round(a.bytes_per_pick, 2) : null,
      picks_per_batch: t.picks_per_batch,
      batches: t.batches,
      ...(a ? { alloc_picks_measured: a.picks_measured } : {}),
      ...(a?.problem ? { note: a.problem } : {}),
      peer,
      ...(peer && subject.peerVersion ? { peer_version: subject.peerVersion } : {}),
      load_1m: loadRange(timed.load_1m, alloc?.load_1m),
    };
  });
}

function roundAll(object, digits) {
  return Object.fromEntries(Object.entries(object).map(([k, v]) => [k, round(v, digits)]));
}

// ---------------------------------------------------------------- 3: end to end

async function endToEnd() {
  const servers = [];
  try {
    for (const id of ['greeter-1', 'greeter-2', 'greeter-3']) servers.push(await startGreeter(id));
    const modes = [
      'switchyard',
      ...(env.BENCH_E2E_NO_RETRY === '1' ? ['switchyard_no_retry'] : []),
      'grpcjs_rr',
      'direct',
    ];
    log(
      `  e2e: ${PROFILE.e2e.rounds} rounds x ${modes.join(', ')}, ${PROFILE.e2e.durationMs / 1000} s each, concurrency ${PROFILE.e2e.concurrency}`,
    );
    const result = await measure(
      'e2e.worker.mjs',
      { addresses: servers.map((s) => s.address), modes, ...PROFILE.e2e },
      { execArgv: ['--expose-gc'], timeoutMs: 900_000 },
    );
    const s = result.summary;
    const paired = (mode, key) => median(result.runs[mode].map((run, i) => run[key] / result.runs.grpcjs_rr[i][key]));
    const pairedDirect = (key) => median(result.runs.switchyard.map((run, i) => run[key] / result.runs.direct[i][key]));
    const e2e = {
      concurrency: PROFILE.e2e.concurrency,
      switchyard_rps: round(s.switchyard.rps, 0),
      grpcjs_rr_rps: round(s.grpcjs_rr.rps, 0),
      direct_rps: round(s.direct.rps, 0),
      ratio_vs_grpcjs_rr: round(s.switchyard.rps / s.grpcjs_rr.rps, 3),
      ratio_vs_direct: round(s.switchyard.rps / s.direct.rps, 3),
      p99_ms: {
        switchyard: round(s.switchyard.p99_ms, 2),
        grpcjs_rr: round(s.grpcjs_rr.p99_ms, 2),
        direct: round(s.direct.p99_ms, 2),
      },
      cpu_us_per_call: {
        switchyard: round(s.switchyard.cpu_us_per_call, 1),
        grpcjs_rr: round(s.grpcjs_rr.cpu_us_per_call, 1),
        direct: round(s.direct.cpu_us_per_call, 1),
      },
      p50_ms: {
        switchyard: round(s.switchyard.p50_ms, 2),
        grpcjs_rr: round(s.grpcjs_rr.p50_ms, 2),
        direct: round(s.direct.p50_ms, 2),
      },
      paired_medians: {
        rps_vs_grpcjs_rr: round(paired('switchyard', 'rps'), 3),
        rps_vs_direct: round(pairedDirect('rps'), 3),
        cpu_vs_grpcjs_rr: round(paired('switchyard', 'cpu_us_per_call'), 3),
        cpu_vs_direct: round(pairedDirect('cpu_us_per_call'), 3),
        p99_vs_grpcjs_rr: round(paired('switchyard', 'p99_ms'), 3),
      },
      rounds: PROFILE.e2e.rounds,
      seconds_per_run: PROFILE.e2e.durationMs / 1000,
      // Each round starts with the next mode (a b c, b c a, c a b, ...): no mode always runs first.
      order_per_round: result.order,
      load_1m: Object.fromEntries(
        Object.entries(result.runs).map(([mode, runs]) => [mode, loadRange(...runs.map((r) => r.load_1m))]),
      ),
      errors: Object.fromEntries(Object.entries(s).map(([mode, v]) => [mode, v.errors])),
      servers: 'test/support/grpc/greeter-process.mjs x3, one process each, 127.0.0.1',
      runs: Object.fromEntries(
        Object.entries(result.runs).map(([mode, runs]) => [
          mode,
          runs.map((r) => ({
            ...roundAll({ rps: r.rps, p50_ms: r.p50_ms, p99_ms: r.p99_ms, cpu_us_per_call: r.cpu_us_per_call }, 2),
            calls: r.calls,
            errors: r.errors,
            position: r.position,
            load_1m: r.load_1m,
          })),
        ]),
      ),
    };
    if (s.switchyard_no_retry) {
      e2e.switchyard_no_retry = {
        rps: round(s.switchyard_no_retry.rps, 0),
        p99_ms: round(s.switchyard_no_retry.p99_ms, 2),
        cpu_us_per_call: round(s.switchyard_no_retry.cpu_us_per_call, 1),
        cpu_vs_grpcjs_rr: round(paired('switchyard_no_retry', 'cpu_us_per_call'), 3),
      };
    }
    for (const [mode, v] of Object.entries(s))
      if (v.errors) log(`  e2e ${mode}: ${v.errors} failed calls, first: ${v.first_error}`);
    return e2e;
  } finally {
    await Promise.all(servers.map((s) => s.server.stop()));
  }
}

// ---------------------------------------------------------------- 4: convergence

/**
 * Each change follows the previous one (once seen) after a random pause in
 * this range, so changes land at a random phase of whatever periodic work a
 * backend does (debounce, minimum query spacing, polling): a fixed cadence
 * would measure one phase only.
 */
const SPACING_MS = [0, 500];

async function convergence() {
  const rows = [];
  const changes = PROFILE.convergence.changes;
  const run = async (backend, backendConfig, extra = {}, note) => {
    log(`  convergence: ${backend} (${changes} changes)`);
    try {
      const r = await measure(
        'convergence.worker.mjs',
        { backend, backendConfig, changes, ...extra },
        { timeoutMs: 600_000 },
      );
      if (r.unavailable)
        return { backend, p50_ms: null, p99_ms: null, samples: 0, status: 'not yet', note: r.unavailable };
      const all = [...r.register, ...r.deregister];
      return {
        backend,
        p50_ms: round(percentile(all, 50), 1),
        p99_ms: round(percentile(all, 99), 1),
        samples: all.length,
        status:
          r.timeouts.register + r.timeouts.deregister
            ? `${r.timeouts.register} registers, ${r.timeouts.deregister} deregisters not seen within ${extra.timeoutMs ?? 15_000} ms`
            : 'ok',
        register: {
          p50_ms: round(percentile(r.register, 50), 1),
          p99_ms: round(percentile(r.register, 99), 1),
          samples: r.register.length,
        },
        deregister: {
          p50_ms: round(percentile(r.deregister, 50), 1),
          p99_ms: round(percentile(r.deregister, 99), 1),
          samples: r.deregister.length,
        },
        max_ms: round(Math.max(...all), 1),
        load_1m: r.load_1m,
        ...(note ? { note } : {}),
        ...(r.warnings?.length ? { warnings: r.warnings } : {}),
      };
    } catch (error) {
      return {
        backend,
        p50_ms: null,
        p99_ms: null,
        samples: 0,
        status: 'failed',
        note: error.message.split('\n').slice(0, 3).join(' '),
      };
    }
  };
  /** Starts the backend's server, runs `run` with what `configure(peer)` gives ({ backendConfig, extra }), stops the server. */
  const withPeer = async (backend, start, configure, note) => {
    let peer;
    try {
      peer = await start();
    } catch (error) {
      return {
        backend,
        p50_ms: null,
        p99_ms: null,
        samples: 0,
        status: 'unavailable',
        note: `peer did not start: ${error.message.trim().split('\n').slice(-4).join(' | ')}`,
      };
    }
    if (peer.problem)
      return { backend, p50_ms: null, p99_ms: null, samples: 0, status: 'unavailable', note: peer.problem };
    try {
      const { backendConfig, extra } = configure(peer);
      return await run(backend, backendConfig, extra, `${note}; ${peer.version}`);
    } finally {
      await peer.stop();
    }
  };

  rows.push(
    await run('memory', {}, { pauseMs: [5, 50] }, 'in-process baseline: the store notifies watchers synchronously'),
  );
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-bench-local-'));
  try {
    rows.push(
      await run('local', { dir }, { pauseMs: SPACING_MS }, 'instance files + fs.watch (25 ms debounce), defaults'),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  rows.push(
    await withPeer(
      'etcd',
      startEtcd,
      (p) => ({ backendConfig: { endpoints: [p.url] }, extra: { pauseMs: SPACING_MS } }),
      'one member on loopback, prefix watch',
    ),
  );
  rows.push(
    await withPeer(
      'consul',
      startConsul,
      (p) => ({ backendConfig: { url: p.url }, extra: { pauseMs: SPACING_MS } }),
      'dev agent on loopback, blocking health queries (250 ms min. between queries)',
    ),
  );
  rows.push(
    await withPeer(
      'dns',
      () => startDnsmasq({ localTtl: 1 }),
      (p) => ({
        backendConfig: { domain: 'svc.test', nameservers: [p.nameserver], srv: false, port: 50051, ttlFloor: 1 },
        // Changes land at a random phase of the 1 s re-resolve cycle.
        extra: { pauseMs: [0, 1_000], hostsDir: p.hostsDir },
      }),
      'A records from a dnsmasq hosts dir (inotify), record TTL 1 s, ttl_floor 1 s: polled, so bounded by the TTL floor',
    ),
  );
  rows.push(
    await run(
      'mesh',
      {},
      { pauseMs: SPACING_MS },
      'ADS stream (CDS + EDS) from the test xDS control plane (test/support/xds), in the client process',
    ),
  );
  rows.push(
    await run(
      'kubernetes',
      {},
      { pauseMs: SPACING_MS },
      'EndpointSlice watch on the test API server (test/support/kubernetes, a child process), one slice rewritten per change',
    ),
  );
  return rows;
}

// ---------------------------------------------------------------- 5: memory

async function memory() {
  log('  memory: 10,000 endpoints');
  const m = await measure(
    'memory.worker.mjs',
    { endpoints: 10_000 },
    { execArgv: ['--expose-gc', '--no-flush-bytecode'] },
  );
  const totals = Object.values(m.total_bytes_per_endpoint);
  return {
    endpoints: m.endpoints,
    bytes_per_endpoint: round(m.total_bytes_per_endpoint.consistent_hash, 0),
    strategy: 'consistent_hash (the default load_balance)',
    bytes_per_endpoint_max: round(Math.max(...totals), 0),
    parts: {
      instances: round(m.instances_bytes_per_endpoint, 0),
      endpoint_set: round(m.endpoint_set_bytes_per_endpoint, 0),
      load_records: round(m.load_records_bytes_per_endpoint, 0),
      picker: Object.fromEntries(
        Object.entries(m.picker_bytes_per_endpoint).map(([k, v]) => [k, round(Math.max(0, v), 1)]),
      ),
    },
    total_by_strategy: Object.fromEntries(Object.entries(m.total_bytes_per_endpoint).map(([k, v]) => [k, round(v, 0)])),
    load_1m: m.load_1m,
  };
}

// ---------------------------------------------------------------- targets and output

function evaluateTargets(results) {
  const checks = [];
  const add = (what, measured, target, ok) => checks.push({ what, measured, target, met: ok });
  echoTargets(results.echo, add);
  overloadTargets(results.overload, add);
  scaleTargets(results.scale, add);
  for (const row of results.pick ?? []) {
    if (row.peer || row.variant || row.endpoints !== 10_000 || row.ns_median === null) continue;
    const limit = row.strategy === 'consistent_hash' ? TARGETS.pickNsHash : TARGETS.pickNs;
    add(`pick ${row.strategy} @10k, ns`, row.ns_median, `<= ${limit}`, row.ns_median <= limit);
  }
  for (const row of results.pick ?? []) {
    if (row.peer || row.bytes_per_pick === null) continue;
    // Heap deltas over a million picks carry a few KB of noise: under 0.5 B/pick is zero allocation per pick.
    if (row.bytes_per_pick >= 0.5)
      add(
        `pick ${row.strategy}${row.variant ? ` (${row.variant})` : ''} @${row.endpoints}, bytes/pick`,
        row.bytes_per_pick,
        '0',
        false,
      );
  }
  const ourAllocRows = (results.pick ?? []).filter((r) => !r.peer && r.bytes_per_pick !== null);
  if (ourAllocRows.length)
    add(
      'pick: bytes allocated per pick, every strategy and size',
      round(Math.max(...ourAllocRows.map((r) => r.bytes_per_pick)), 2),
      '0 (< 0.5 measured)',
      ourAllocRows.every((r) => r.bytes_per_pick < 0.5),
    );
  for (const row of results.pick ?? []) {
    if (!row.peer || row.ns_median === null) continue;
    const ours = results.pick.find(
      (r) =>
        !r.peer &&
        r.strategy === row.versus &&
        r.endpoints === row.endpoints &&
        (r.variant ?? '') === (row.variant === 'hot keys' ? 'hot keys' : ''),
    );
    if (ours)
      add(
        `pick ${ours.strategy}${ours.variant ? ` (${ours.variant})` : ''} vs ${row.peer} ${row.strategy} @${row.endpoints}, ns`,
        `${ours.ns_median} vs ${row.ns_median}`,
        'not slower',
        ours.ns_median <= row.ns_median * 1.05,
      );
  }
  const peerMissing = (results.pick ?? []).find((r) => r.peer && r.ns_median === null);
  if (peerMissing) add(`pick vs ${peerMissing.peer} (RoundRobin, Random, Shard)`, 'not available', 'not slower', null);
  for (const row of results.rebuild ?? []) {
    if (row.peer) continue;
    add(
      `rebuild ${row.strategy}${row.variant ? ` (${row.variant})` : ''} @10k, ms`,
      row.ms_median,
      `<= ${TARGETS.rebuildMs}`,
      row.ms_median <= TARGETS.rebuildMs,
    );
  }
  if (results.snapshot_update)
    add(
      'snapshot update (one join or leave) @10k, ms',
      results.snapshot_update.ms_median,
      `<= ${TARGETS.snapshotMs}`,
      results.snapshot_update.ms_median <= TARGETS.snapshotMs,
    );
  const e = results.e2e;
  if (e && typeof e === 'object' && e.switchyard_rps) {
    // Judged on the median of per-round ratios (a and b ran back to back in each round, so drift cancels); the ratio of medians is shown beside it.
    const p = e.paired_medians;
    const both = (paired, ofMedians) => `${paired} (of medians ${ofMedians})`;
    add(
      'e2e calls/s vs grpc-js round_robin',
      both(p.rps_vs_grpcjs_rr, e.ratio_vs_grpcjs_rr),
      `>= ${TARGETS.ratioVsGrpcjs}`,
      p.rps_vs_grpcjs_rr >= TARGETS.ratioVsGrpcjs,
    );
    const cpu = round(e.cpu_us_per_call.switchyard / e.cpu_us_per_call.grpcjs_rr, 3);
    add(
      'e2e client CPU per call vs grpc-js round_robin',
      both(p.cpu_vs_grpcjs_rr, cpu),
      `<= ${TARGETS.cpuAboveGrpcjs}`,
      p.cpu_vs_grpcjs_rr <= TARGETS.cpuAboveGrpcjs,
    );
    const p99 = round(e.p99_ms.switchyard / e.p99_ms.grpcjs_rr, 3);
    add(
      'e2e p99 vs grpc-js round_robin',
      both(p.p99_vs_grpcjs_rr, p99),
      `<= ${TARGETS.p99AboveGrpcjs}`,
      p.p99_vs_grpcjs_rr <= TARGETS.p99AboveGrpcjs,
    );
  }
  for (const row of results.convergence ?? []) {
    const limit = TARGETS.convergenceP99[row.backend];
    if (limit === undefined) continue;
    if (row.p99_ms === null) add(`convergence ${row.backend} p99, ms`, row.status, `<= ${limit}`, null);
    else add(`convergence ${row.backend} p99, ms`, row.p99_ms, `<= ${limit}`, row.p99_ms <= limit);
  }
  tcpTargetChecks(results.tcp, add);
  checks.push(...httpTargetChecks(results.http));
  if (results.memory && typeof results.memory === 'object') {
    add(
      'memory per endpoint @10k, bytes',
      results.memory.bytes_per_endpoint_max,
      `<= ${TARGETS.memoryBytes}`,
      results.memory.bytes_per_endpoint_max <= TARGETS.memoryBytes,
    );
  }
  return checks;
}

/** A [before, after] 1-minute load reading as text ("-" when the results predate per-figure loads). */
function loadText(range) {
  if (!Array.isArray(range)) return '-';
  return range[0] === range[1] ? fmt(range[0], 2) : `${fmt(range[0], 2)}-${fmt(range[1], 2)}`;
}

/** `text` cut to `max` characters (the full text is in results.json). */
function clip(text, max) {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

function printReport(results) {
  const out = [];
  const m = results.machine;
  out.push(
    `switchyard benchmarks  node ${m.node}, ${m.cpus} cpus (${m.cpu_model}), grpc-js ${m.grpc_js}${m.quick ? ', QUICK run' : ''}`,
    `load average (1 / 5 / 15 min): ${m.loadavg_start.join(' / ')} at the start${m.loadavg_end ? `, ${m.loadavg_end.join(' / ')} at the end` : ''}; each figure below carries the 1-minute load while it was measured`,
  );
  if (results.pick?.length) {
    out.push('', '1. Pick cost (median CPU ns per pick over timed batches; bytes allocated per pick)');
    const unavailable = results.pick.filter((r) => r.peer && r.ns_median === null);
    const rows = results.pick
      .filter((r) => !unavailable.includes(r))
      .map((r) => [
        r.peer ? `${r.peer} ${r.strategy}` : r.strategy,
        r.variant ?? '',
        r.endpoints,
        r.ns_median === null ? (r.note ?? '-') : fmt(r.ns_median),
        r.ns_median === null ? '' : `${fmt(r.ns_p10)}-${fmt(r.ns_p90)}`,
        r.bytes_per_pick === null ? '-' : fmt(r.bytes_per_pick, 2),
        loadText(r.load_1m),
      ]);
    out.push(table(['strategy', 'variant', 'endpoints', 'ns/pick', 'p10-p90', 'bytes/pick', 'load 1m'], rows));
    for (const peer of new Set(unavailable.map((r) => r.peer)))
      out.push(`   ${peer}: ${unavailable.find((r) => r.peer === peer).note}`);
  }
  if (results.rebuild?.length) {
    out.push('', `2. Picker rebuild after one endpoint joins or leaves ${REBUILD_SIZE.toLocaleString('en-US')} (ms)`);
    out.push(
      table(
        ['strategy', 'median', 'join', 'leave', 'max', 'load 1m'],
        results.rebuild.map((r) => [
          `${r.peer ? `${r.peer} ` : ''}${r.strategy}${r.variant ? ` (${r.variant})` : ''}`,
          fmt(r.ms_median, 2),
          fmt(r.ms_join_median, 2),
          fmt(r.ms_leave_median, 2),
          fmt(r.ms_max, 2),
          loadText(r.load_1m),
        ]),
      ),
    );
    if (results.snapshot_update)
      out.push(
        `   besides the picker, one snapshot update (EndpointSet.apply of one join or leave + forgetting its load record) @10k: ${fmt(results.snapshot_update.ms_median, 3)} ms median; a full list through EndpointSet.next: ${fmt(results.snapshot_update.full_list_ms_median, 2)} ms (load 1m ${loadText(results.snapshot_update.load_1m)})`,
      );
  }
  const e = results.e2e;
  if (e && typeof e === 'object' && e.switchyard_rps) {
    out.push(
      '',
      `3. End to end: unary calls, 3 Greeter server processes, concurrency ${e.concurrency}, medians of ${e.rounds} alternated rounds of ${e.seconds_per_run} s`,
    );
    const modes = [
      ['switchyard discovery:/// round_robin', 'switchyard'],
      ['grpc-js round_robin (ipv4: list)', 'grpcjs_rr'],
      ['direct channel, one server', 'direct'],
    ];
    const rows = modes.map(([label, key]) => [
      label,
      fmt(e[`${key}_rps`], 0),
      fmt(e.p50_ms[key], 2),
      fmt(e.p99_ms[key], 2),
      fmt(e.cpu_us_per_call[key], 1),
      loadText(e.load_1m?.[key]),
    ]);
    if (e.switchyard_no_retry)
      rows.splice(1, 0, [
        'switchyard, retries off',
        fmt(e.switchyard_no_retry.rps, 0),
        '-',
        fmt(e.switchyard_no_retry.p99_ms, 2),
        fmt(e.switchyard_no_retry.cpu_us_per_call, 1),
        loadText(e.load_1m?.switchyard_no_retry),
      ]);
    out.push(table(['client', 'calls/s', 'p50 ms', 'p99 ms', 'client CPU µs/call', 'load 1m'], rows));
    if (e.order_per_round) out.push(`   order per round: ${e.order_per_round.map((o) => o.join(' ')).join(' | ')}`);
    out.push(
      `   a/b calls/s ${fmt(e.ratio_vs_grpcjs_rr, 3)} (paired ${fmt(e.paired_medians.rps_vs_grpcjs_rr, 3)}), a/c ${fmt(e.ratio_vs_direct, 3)}; CPU/call a/b ${fmt(e.cpu_us_per_call.switchyard / e.cpu_us_per_call.grpcjs_rr, 3)} (paired ${fmt(e.paired_medians.cpu_vs_grpcjs_rr, 3)}), a/c ${fmt(e.cpu_us_per_call.switchyard / e.cpu_us_per_call.direct, 3)}`,
    );
  } else if (e?.error) {
    out.push('', `3. End to end: failed: ${e.error}`);
  }
  if (results.convergence?.length) {
    out.push('', '4. Convergence: registry change -> client endpoints$ emission (ms)');
    out.push(
      table(
        ['backend', 'p50', 'p99', 'samples', 'status', 'load 1m', 'note'],
        results.convergence.map((r) => [
          r.backend,
          fmt(r.p50_ms),
          fmt(r.p99_ms),
          r.samples,
          r.status,
          loadText(r.load_1m),
          clip(r.note ?? '', 100),
        ]),
      ),
    );
  }
  if (results.memory && typeof results.memory === 'object' && results.memory.endpoints) {
    const mem = results.memory;
    out.push(
      '',
      `5. Memory at ${mem.endpoints.toLocaleString('en-US')} endpoints: ${mem.bytes_per_endpoint} bytes per endpoint with ${mem.strategy}, at most ${mem.bytes_per_endpoint_max} with any strategy (load 1m ${loadText(mem.load_1m)})`,
    );
    out.push(
      `   instances ${mem.parts.instances}, snapshot ${mem.parts.endpoint_set}, load records ${mem.parts.load_records}, picker ${Object.entries(
        mem.parts.picker,
      )
        .map(([k, v]) => `${k} ${v}`)
        .join(', ')}`,
    );
  }
  out.push(
    ...echoReport(results.echo, { table, loadText }),
    ...overloadReport(results.overload, { table, loadText }),
    ...tcpReport(results.tcp, { table, fmt, loadText }),
    ...httpReport(results.http, loadText),
    ...scaleReport(results.scale, { table, loadText }),
  );
  if (results.targets?.length) {
    out.push('', 'Targets');
    out.push(
      table(
        ['target', 'measured', 'limit', 'met'],
        results.targets.map((t) => [
          t.what,
          String(t.measured),
          t.target,
          t.met === null ? 'not measured' : t.met ? 'yes' : 'MISSED',
        ]),
      ),
    );
  }
  process.stdout.write(`${out.join('\n')}\n`);
}

/** BENCH_REPORT=1: measure nothing; re-judge the targets of the results file and print its tables again. */
function reportOnly() {
  const results = JSON.parse(readFileSync(OUT, 'utf8'));
  results.targets = evaluateTargets(results);
  writeFileSync(OUT, `${JSON.stringify(results, null, 2)}\n`);
  printReport(results);
}

async function main() {
  if (env.BENCH_REPORT === '1') return reportOnly();
  stopAllOnSignals();
  const started = performance.now();
  const results = { machine: machine() };
  log(`switchyard bench${QUICK ? ' (quick)' : ''}: ${ONLY.join(', ')}`);
  try {
    if (ONLY.includes('pick') || ONLY.includes('rebuild')) {
      const r = await pickAndRebuild();
      if (ONLY.includes('pick')) results.pick = r.pick;
      if (ONLY.includes('rebuild')) {
        results.rebuild = r.rebuild;
        if (r.snapshot) results.snapshot_update = r.snapshot;
      }
    }
    if (ONLY.includes('e2e')) {
      try {
        results.e2e = await endToEnd();
      } catch (error) {
        log(`  e2e failed: ${error.message}`);
        results.e2e = { error: error.message.split('\n')[0] };
      }
    }
    for (const [part, run] of [
      ['echo', echoPart],
      ['overload', overloadPart],
      ['scale', scalePart],
    ]) {
      if (!ONLY.includes(part)) continue;
      try {
        results[part] = await run({ measure, log, profile: PROFILE.e2e, quick: QUICK });
      } catch (error) {
        log(`  ${part} failed: ${error.message}`);
        results[part] = { error: error.message.split('\n')[0] };
      }
    }
    if (ONLY.includes('convergence')) results.convergence = await convergence();
    if (ONLY.includes('memory')) results.memory = await memory();
    if (ONLY.includes('tcp')) {
      // The same rounds, length and concurrency as the gRPC end-to-end part.
      results.tcp = await tcpEndToEnd({ profile: PROFILE.e2e, measure, loadRange, log }).catch((error) => {
        log(`  tcp failed: ${error.message}`);
        return { error: error.message.split('\n')[0] };
      });
    }
    if (ONLY.includes('http'))
      results.http = await runHttpPart(PROFILE.e2e, measure, log).catch((error) => {
        log(`  http failed: ${error.message}`);
        return { error: error.message.split('\n')[0] };
      });
  } finally {
    await stopAll();
  }
  results.targets = evaluateTargets(results);
  results.machine.loadavg_end = loadavg().map((l) => round(l, 2));
  results.machine.seconds = round((performance.now() - started) / 1000, 1);
  if (DEFAULT_PARTS.some((part) => !ONLY.includes(part))) results.partial = ONLY;
  writeFileSync(OUT, `${JSON.stringify(results, null, 2)}\n`);
  printReport(results);
  log(`\nwrote ${OUT} in ${results.machine.seconds} s`);
}

await main();
