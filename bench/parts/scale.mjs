// Bench part `scale`: one client process over a registry of many instances
// (issue 22). For each backend (etcd, consul, mesh) and strategy: the
// registry is filled by a driver process (bench/scale-registry.worker.mjs),
// then one client process (bench/scale.worker.mjs) makes a client per
// service and reports
//   - ready: from Discovery.create to every client serving every instance
//   - heap / RSS after GC, and idle CPU (no change, no pick) over a window
//   - churn: the driver replaces 1 % of the instances per second (while the
//     client picks BENCH_SCALE_PICKS times a second over the services, 0 by
//     default); convergence of every change (sent -> the client's set shows
//     it, and from the registry's acknowledgement), p50 / p99 / max, and
//     changes never seen
//   - wrong sets: client sets that differ from the registry once churn
//     stopped and a settle window passed
// plus, for etcd, the watch streams, watchers and range reads etcd counted.
// Environment (sizes default to the issue's; BENCH_QUICK shrinks them):
//   BENCH_SCALE_BACKENDS=etcd,consul,mesh   BENCH_SCALE_STRATEGIES=consistent_hash,round_robin
//   BENCH_SCALE_SHAPES=1000x100,100x1000    (services x instances; consul: BENCH_SCALE_CONSUL_SHAPES, default 1000x10,1000x100)
//   BENCH_SCALE_CHURN_SECONDS=30            BENCH_SCALE_CHURN_PERCENT=1   BENCH_SCALE_PICKS=0
//   BENCH_SCALE_BASELINE=/path/to/dist      also run each scenario on that build (another checkout), alternating
//   BENCH_SCALE_CLIENT_FLAGS='--trace-gc'   extra Node flags for the client process (what they print goes to stdout)
import { fork } from 'node:child_process';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { startConsul, startEtcd, httpGet } from '../support/peers.mjs';
import { ROOT } from '../support/processes.mjs';
import { percentile, round } from '../support/stats.mjs';

export const SCALE_TARGETS = {
  readyMs: 5_000,
  heapMib: 200,
  idleCpuPercent: 1,
  convergenceP99Ms: { etcd: 250, mesh: 250, consul: 1_000 },
};

const env = process.env;

function list(name, fallback) {
  return (env[name] ?? fallback)
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

function shapes(name, fallback) {
  return list(name, fallback).map((text) => {
    const match = /^(\d+)x(\d+)$/.exec(text);
    if (!match) throw new Error(`${name}: expected shapes like 1000x100, got '${text}'`);
    return { services: Number(match[1]), instances: Number(match[2]) };
  });
}

function numberFrom(name, fallback) {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 0) throw new Error(`${name}: expected a number >= 0, got '${raw}'`);
  return value;
}

/** A forked worker driven by messages: `ask(message, phase)` resolves with the reply of that phase. */
function driven(script, execArgv = [], stdout = 'ignore') {
  const child = fork(join(ROOT, 'bench', script), [], {
    cwd: ROOT,
    execArgv,
    stdio: ['ignore', stdout, 'pipe', 'ipc'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk) => (stderr = (stderr + chunk).slice(-4_000)));
  const waiting = new Map();
  let failure;
  child.on('message', (message) => {
    if (message.phase === 'error') {
      failure = new Error(`${script}: ${message.error}`);
      for (const { reject } of waiting.values()) reject(failure);
      waiting.clear();
      return;
    }
    waiting.get(message.phase)?.resolve(message);
    waiting.delete(message.phase);
  });
  child.on('exit', (code, signal) => {
    failure ??= new Error(`${script} exited (${signal ?? code}): ${stderr.trim().split('\n').slice(-3).join(' | ')}`);
    for (const { reject } of waiting.values()) reject(failure);
    waiting.clear();
  });
  return {
    child,
    ask(message, phase, timeoutMs = 600_000) {
      if (failure) return Promise.reject(failure);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${script}: no '${phase}' within ${timeoutMs} ms`)), timeoutMs);
        waiting.set(phase, {
          resolve: (value) => {
            clearTimeout(timer);
            resolve(value);
          },
          reject: (error) => {
            clearTimeout(timer);
            reject(error);
          },
        });
        child.send(message);
      });
    },
    kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
  };
}

/** etcd's own counters: watch streams, watchers, range requests. */
async function etcdCounters(url) {
  const { body } = await httpGet(`${url}/metrics`);
  const value = (name) => {
    let total = 0;
    for (const line of body.split('\n')) {
      if (line.startsWith(`${name} `) || line.startsWith(`${name}{`)) total += Number(line.split(' ').pop());
    }
    return total;
  };
  return {
    watch_streams: value('etcd_debugging_mvcc_watch_stream_total'),
    watchers: value('etcd_debugging_mvcc_watcher_total'),
    range_requests: value('etcd_debugging_mvcc_range_total'),
  };
}

const load1m = () => round(loadavg()[0], 2);

/**
 * One scenario: a fresh registry of `shape`, one client process on `dist`
 * with `strategy`. Returns the row for results.json.
 */
async function scenario({ backend, shape, strategy, dist, label, profile, log }) {
  const services = Array.from({ length: shape.services }, (_, s) => `scale-${String(s).padStart(4, '0')}`);
  const loadBefore = load1m();
  let peer;
  const driver = driven('scale-registry.worker.mjs');
  // What extra client flags print (--trace-gc) goes to the bench's stdout.
  const clientFlags = (process.env.BENCH_SCALE_CLIENT_FLAGS ?? '').split(' ').filter(Boolean);
  const client = driven('scale.worker.mjs', ['--expose-gc', ...clientFlags], clientFlags.length ? 'inherit' : 'ignore');
  try {
    let target;
    let registryPort;
    if (backend === 'etcd') {
      peer = await startEtcd();
      if (peer.problem) throw new Error(peer.problem);
      target = peer.url;
    } else if (backend === 'consul') {
      peer = await startConsul();
      if (peer.problem) throw new Error(peer.problem);
      target = peer.url;
    }
    log(`  scale: ${label}: filling ${backend} with ${shape.services} x ${shape.instances}`);
    const populated = await driver.ask(
      { phase: 'setup', kind: backend, target, services, instances: shape.instances },
      'populated',
      1_800_000,
    );
    const url = populated.url ?? target;
    registryPort = Number(new URL(url).port);
    const backendConfig =
      backend === 'etcd' ? { endpoints: [url] } : backend === 'consul' ? { url } : { xdsServer: url };
    const countersBefore = backend === 'etcd' ? await etcdCounters(url) : undefined;
    log(`  scale: ${label}: client start (${shape.services} clients)`);
    const started = await client.ask(
      {
        phase: 'start',
        dist,
        options: { backend, backendConfig, loadBalance: strategy },
        services,
        instances: shape.instances,
        readyTimeoutMs: profile.readyTimeoutMs,
      },
      'started',
      profile.readyTimeoutMs + 120_000,
    );
    const countersStarted = backend === 'etcd' ? await etcdCounters(url) : undefined;
    // Idle is measured once start-up has finished (etcd: watchers still attach for a second or so after the sets are ready).
    await new Promise((resolve) => setTimeout(resolve, profile.settleSeconds * 1000));
    const idle = await client.ask({ phase: 'idle', seconds: profile.idleSeconds, registryPort }, 'idle');
    const perSecond = (shape.services * shape.instances * profile.churnPercent) / 100;
    log(`  scale: ${label}: churn ${perSecond}/s for ${profile.churnSeconds} s, ${profile.picks} picks/s`);
    const clientChurn = client.ask(
      { phase: 'churn', seconds: profile.churnSeconds, pickRate: profile.picks },
      'churned',
    );
    const churn = await driver.ask({ phase: 'churn', seconds: profile.churnSeconds, perSecond }, 'churned');
    const churned = await clientChurn;
    await new Promise((resolve) => setTimeout(resolve, profile.settleSeconds * 1000));
    const seen = await client.ask({ phase: 'report' }, 'seen');
    const sets = await client.ask({ phase: 'check' }, 'sets');
    const truth = await driver.ask({ phase: 'truth' }, 'truth');
    const countersEnd = backend === 'etcd' ? await etcdCounters(url) : undefined;

    const appeared = new Map(seen.appeared);
    const left = new Map(seen.left);
    const latencies = [];
    const sinceAck = [];
    const byQuarter = [[], [], [], []];
    const churnStart = churn.log[0]?.[3] ?? 0;
    let missed = 0;
    for (const [, key, op, t, acked] of churn.log) {
      const at = (op === 'added' ? appeared : left).get(key);
      if (at === undefined) missed++;
      else {
        const latency = Math.max(0, at - t);
        latencies.push(latency);
        if (acked > 0) sinceAck.push(Math.max(0, at - acked));
        byQuarter[Math.min(3, Math.floor(((t - churnStart) / (profile.churnSeconds * 1000)) * 4))].push(latency);
      }
    }
    const expected = new Map(truth.sets.map((s) => [s.service, s.ids.join(',')]));
    const wrong = sets.sets.filter((s) => [...s.ids].sort().join(',') !== expected.get(s.service));
    return {
      backend,
      strategy,
      build: label.includes('baseline') ? 'baseline' : 'this',
      services: shape.services,
      instances: shape.instances,
      records: shape.services * shape.instances,
      populate_s: round(populated.ms / 1000, 1),
      ready_ms: started.ready_ms === null ? null : round(started.ready_ms, 0),
      not_ready: started.not_ready,
      stale_at_ready: started.stale_sets,
      start_cpu_s: round(started.start_cpu_ms / 1000, 2),
      heap_mib: round(idle.heap_mib, 1),
      rss_mib: round(idle.rss_mib, 1),
      array_buffers_mib: round(idle.array_buffers_mib, 1),
      idle_cpu_percent: round(idle.idle_cpu_percent, 2),
      idle_gc_ms: round(idle.idle_gc_ms, 1),
      idle_gc_counts: idle.idle_gc_counts,
      idle_settle_s: round(idle.idle_settle_ms / 1000, 1),
      idle_after_reducer: idle.idle_after_reducer,
      registry_sockets: idle.registry_sockets,
      churn: {
        per_second: perSecond,
        seconds: profile.churnSeconds,
        changes_sent: churn.sent,
        changes_not_sent: churn.skipped,
        failed_writes: churn.failed,
        p50_ms: round(percentile(latencies, 50), 1),
        p99_ms: round(percentile(latencies, 99), 1),
        max_ms: latencies.length ? round(Math.max(...latencies), 1) : null,
        // From the registry's acknowledgement of the write instead of its sending: the client's share.
        after_ack_p50_ms: round(percentile(sinceAck, 50), 1),
        after_ack_p99_ms: round(percentile(sinceAck, 99), 1),
        // Each quarter of the churn window: does the tail come from the start (watchers still attaching) or stay?
        p99_ms_by_quarter: byQuarter.map((q) => round(percentile(q, 99), 1)),
        changes_seen: latencies.length,
        changes_never_seen: missed,
        client_cpu_percent: round(churned.churn_cpu_percent, 1),
        client_gc_ms: round(churned.churn_gc_ms, 0),
        client_gc_max_pause_ms: round(churned.churn_gc_max_ms, 1),
        client_gc_counts: churned.churn_gc_counts,
        picks: churned.picks,
        failed_picks: churned.failed_picks,
        heap_mib_after: round(churned.heap_mib, 1),
      },
      wrong_sets: wrong.length,
      wrong_examples: wrong.slice(0, 3).map((s) => `${s.service}: ${s.state}, ${s.ids.length} ids`),
      ...(countersBefore
        ? {
            etcd: {
              watch_streams: countersStarted.watch_streams - countersBefore.watch_streams,
              watchers: countersStarted.watchers - countersBefore.watchers,
              range_requests_at_start: countersStarted.range_requests - countersBefore.range_requests,
              range_requests_during_churn: countersEnd.range_requests - countersStarted.range_requests,
            },
          }
        : {}),
      load_1m: [Math.min(loadBefore, load1m()), Math.max(loadBefore, load1m())],
    };
  } finally {
    await Promise.race([
      Promise.all([client.ask({ phase: 'stop' }, 'stopped', 30_000), driver.ask({ phase: 'stop' }, 'stopped', 30_000)]),
      new Promise((resolve) => setTimeout(resolve, 30_000)),
    ]).catch(() => undefined);
    client.kill();
    driver.kill();
    await peer?.stop?.();
  }
}

export async function scalePart({ log, quick }) {
  const profile = {
    churnSeconds: numberFrom('BENCH_SCALE_CHURN_SECONDS', quick ? 10 : 30),
    churnPercent: numberFrom('BENCH_SCALE_CHURN_PERCENT', 1),
    // 0: no calls, as the table was measured; with picks, each picker is rebuilt after the changes it saw.
    picks: numberFrom('BENCH_SCALE_PICKS', 0),
    idleSeconds: quick ? 5 : 20,
    settleSeconds: quick ? 5 : 10,
    readyTimeoutMs: 300_000,
  };
  const backends = list('BENCH_SCALE_BACKENDS', 'etcd,consul,mesh');
  const strategies = list('BENCH_SCALE_STRATEGIES', 'consistent_hash,round_robin');
  const bigShapes = shapes('BENCH_SCALE_SHAPES', quick ? '200x100' : '1000x100,100x1000');
  const consulShapes = shapes('BENCH_SCALE_CONSUL_SHAPES', quick ? '200x10' : '1000x10,1000x100');
  const builds = [{ dist: join(ROOT, 'dist'), label: '' }];
  if (env.BENCH_SCALE_BASELINE) builds.push({ dist: env.BENCH_SCALE_BASELINE, label: ' (baseline)' });
  const rows = [];
  for (const backend of backends) {
    for (const shape of backend === 'consul' ? consulShapes : bigShapes) {
      for (const strategy of strategies) {
        // With a baseline, the two builds alternate which runs first.
        const order = rows.length % 2 === 0 ? builds : [...builds].reverse();
        for (const build of order) {
          const label = `${backend} ${shape.services}x${shape.instances} ${strategy}${build.label}`;
          try {
            rows.push(await scenario({ backend, shape, strategy, dist: build.dist, label, profile, log }));
          } catch (error) {
            log(`  scale: ${label} failed: ${error.message.split('\n')[0]}`);
            rows.push({
              backend,
              strategy,
              build: build.label ? 'baseline' : 'this',
              services: shape.services,
              instances: shape.instances,
              error: error.message.split('\n')[0],
            });
          }
        }
      }
    }
  }
  return { profile, rows };
}

/** Adds the scale targets to the runner's target table. */
export function scaleTargets(scale, add) {
  for (const row of scale?.rows ?? []) {
    if (row.build !== 'this') continue;
    const what = `scale ${row.backend} ${row.services}x${row.instances} ${row.strategy}`;
    if (row.error) {
      add(`${what}`, `failed: ${row.error}`, 'runs', false);
      continue;
    }
    add(
      `${what}: ready, ms`,
      row.ready_ms ?? 'never',
      `<= ${SCALE_TARGETS.readyMs}`,
      row.ready_ms !== null && row.ready_ms <= SCALE_TARGETS.readyMs,
    );
    add(`${what}: heap, MiB`, row.heap_mib, `<= ${SCALE_TARGETS.heapMib}`, row.heap_mib <= SCALE_TARGETS.heapMib);
    add(
      `${what}: idle CPU, %`,
      row.idle_cpu_percent,
      `<= ${SCALE_TARGETS.idleCpuPercent}`,
      row.idle_cpu_percent <= SCALE_TARGETS.idleCpuPercent,
    );
    const limit = SCALE_TARGETS.convergenceP99Ms[row.backend];
    add(
      `${what}: churn p99, ms`,
      row.churn.p99_ms,
      `<= ${limit}`,
      row.churn.p99_ms <= limit && row.churn.changes_never_seen === 0,
    );
    add(`${what}: wrong sets after churn`, row.wrong_sets, '0', row.wrong_sets === 0);
  }
}

/** The scale table for the printed report. */
export function scaleReport(scale, { table, loadText }) {
  if (!scale?.rows?.length) return [];
  const rows = scale.rows.map((r) =>
    r.error
      ? [
          `${r.backend} ${r.services}x${r.instances}`,
          r.strategy,
          r.build,
          `failed: ${r.error}`,
          '',
          '',
          '',
          '',
          '',
          '-',
        ]
      : [
          `${r.backend} ${r.services}x${r.instances}`,
          r.strategy,
          r.build,
          r.ready_ms === null ? `${r.not_ready} never ready` : `${(r.ready_ms / 1000).toFixed(1)} s`,
          `${r.heap_mib} / ${r.rss_mib}`,
          `${r.idle_cpu_percent}`,
          `${r.churn.p50_ms} / ${r.churn.p99_ms} (max ${r.churn.max_ms})`,
          `${r.churn.changes_never_seen}`,
          `${r.wrong_sets}`,
          loadText(r.load_1m),
        ],
  );
  const p = scale.profile;
  return [
    '',
    `Scale: one client process, a client per service; churn ${p.churnPercent} % of the instances per second for ${p.churnSeconds} s with ${p.picks} picks/s`,
    table(
      [
        'registry',
        'strategy',
        'build',
        'ready',
        'heap / RSS MiB',
        'idle CPU %',
        'churn p50 / p99 ms',
        'never seen',
        'wrong sets',
        'load 1m',
      ],
      rows,
    ),
  ];
}
