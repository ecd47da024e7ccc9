// One strategy's pick cost (and rebuild cost) in a process of its own, so
// the pick call site sees a single picker class, as it does in a service
// that uses one strategy, and no other strategy's garbage or JIT state
// leaks into the figures. Run by bench/run.mjs; prints one JSON line.
//
//   node --expose-gc bench/pick.worker.mjs '{"target":"ours","strategy":"round_robin","mode":"time",...}'
//
// mode "time":  median ns per pick over timed batches, and rebuild ms.
// mode "alloc": bytes allocated per pick, from heapUsed before/after a long
//               run with no GC in between (the runner starts this mode with
//               a large young generation, and a run that saw a GC is redone
//               shorter).
import { PerformanceObserver } from 'node:perf_hooks';
import { ConsistentHashStrategy, LoadTracker, getStrategy } from '../dist/balancing/index.js';
import { endpointOf } from '../dist/core/endpoint.js';
import { benchInstance, endpointSet, hashKeys, seededRandom } from './support/fixtures.mjs';
import { loadMoleculer, moleculerPicker } from './support/moleculer.mjs';
import { median, settle, percentile } from './support/stats.mjs';

const spec = JSON.parse(process.argv[2] ?? '{}');
const {
  target = 'ours',
  strategy = 'round_robin',
  variant = '',
  mode = 'time',
  sizes = [3, 100, 10_000],
  batches = 31,
  batchMs = 10,
  warmupMs = 150,
  allocMs = 150,
  keyCount = 65_536,
  rebuildSize = 10_000,
  rebuildIterations = 15,
} = spec;

if (typeof globalThis.gc !== 'function') throw new Error('run with --expose-gc');
const gc = globalThis.gc;

let gcEvents = 0;
const observer = new PerformanceObserver((list) => {
  gcEvents += list.getEntries().length;
});
observer.observe({ entryTypes: ['gc'] });

const keyed =
  (target === 'ours' && strategy.startsWith('consistent_hash') && variant !== 'no key') ||
  (target === 'moleculer' && strategy === 'Shard');
const keys = hashKeys(keyCount);
if ((keys.length & (keys.length - 1)) !== 0) throw new Error('keyCount must be a power of two');
let cursor = 0;
// Picks that returned nothing: every result is inspected, so the JIT cannot drop a pick.
let misses = 0;

/*
 * The timed loops. Each worker process runs one picker class, so these
 * call sites stay monomorphic. Everything they touch is a local: a store to
 * a module-level binding on every iteration costs more than a round-robin
 * pick. The keyed loops pay one array read and one property store per pick
 * for the key, as the grpc picker does.
 */
function runPlain(picker, count) {
  let missed = 0;
  for (let i = 0; i < count; i++) if (picker.pick() === undefined) missed++;
  misses += missed;
}

function runKeyed(picker, context, keyList, count) {
  const mask = keyList.length - 1;
  let c = cursor;
  let missed = 0;
  for (let i = 0; i < count; i++) {
    context.key = keyList[c];
    c = (c + 1) & mask;
    if (picker.pick(context) === undefined) missed++;
  }
  cursor = c;
  misses += missed;
}

function runPeerPlain(peer, list, count) {
  let missed = 0;
  for (let i = 0; i < count; i++) if (peer.select(list) === undefined) missed++;
  misses += missed;
}

function runPeerKeyed(peer, list, context, keyList, count) {
  const mask = keyList.length - 1;
  const meta = context.meta;
  let c = cursor;
  let missed = 0;
  for (let i = 0; i < count; i++) {
    meta.key = keyList[c];
    c = (c + 1) & mask;
    if (peer.select(list, context) === undefined) missed++;
  }
  cursor = c;
  misses += missed;
}

/** Gives every endpoint a plausible load record (in flight 0-4, latency 1-10 ms), as a busy client would have. */
function seedLoads(loads, endpoints) {
  const random = seededRandom(endpoints.length);
  const now = performance.now();
  for (const endpoint of endpoints) {
    const load = loads.load(endpoint);
    load.inFlight = Math.floor(random() * 5);
    load.ewmaMs = 1 + random() * 9;
    load.stampMs = now - random() * 1_000;
  }
}

function ourStrategy() {
  if (strategy === 'consistent_hash' && variant === 'bounded 1.25')
    return new ConsistentHashStrategy({ boundedLoadFactor: 1.25 });
  return getStrategy(strategy);
}

/** `{ run(count) }` for this worker's picker over `n` endpoints, plus what rebuilds need. */
function subject(n, Strategies) {
  const set = endpointSet(n);
  if (target === 'moleculer') {
    const peer = moleculerPicker(Strategies, strategy, set.endpoints);
    const run = keyed
      ? (count) => runPeerKeyed(peer.instance, peer.list, peer.ctx, keys, count)
      : (count) => runPeerPlain(peer.instance, peer.list, count);
    return { run, set, peer };
  }
  const loads = new LoadTracker();
  seedLoads(loads, set.endpoints);
  const built = ourStrategy();
  const picker = built.build(set.endpoints, { loads, random: Math.random });
  const context = { key: undefined };
  const run = keyed ? (count) => runKeyed(picker, context, keys, count) : (count) => runPlain(picker, count);
  return { run, set, picker, loads, built };
}

function elapsedNs(run, count) {
  const t0 = process.hrtime.bigint();
  run(count);
  return Number(process.hrtime.bigint() - t0);
}

/** Wall-clock and CPU ns of one batch; CPU time leaves out the time other processes held this core. */
function timedBatch(run, count) {
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  run(count);
  const wall = Number(process.hrtime.bigint() - t0);
  const cpu = process.cpuUsage(cpu0);
  return { wall, cpu: (cpu.user + cpu.system) * 1_000 };
}

/** Runs for about `ms` and returns how many picks fit in it (grows the count until a run takes long enough). */
function calibrate(run, ms) {
  let count = 64;
  for (;;) {
    const ns = elapsedNs(run, count);
    if (ns >= ms * 1e6 || count >= 2 ** 28) return Math.max(1, Math.round((count * ms * 1e6) / Math.max(ns, 1)));
    count *= ns < 1e5 ? 16 : 2;
  }
}

/**
 * Median ns per pick over `batches` batches of about `batchMs` each. The
 * headline is CPU time per pick (robust when other processes share the
 * machine); wall-clock figures are kept beside it.
 */
function timePicks(run) {
  calibrate(run, warmupMs);
  // Calibrate on the best of three tries: a try descheduled by another process would make batches too short.
  const count = Math.max(calibrate(run, batchMs), calibrate(run, batchMs), calibrate(run, batchMs));
  const cpu = [];
  const wall = [];
  for (let b = 0; b < batches; b++) {
    const t = timedBatch(run, count);
    cpu.push(t.cpu / count);
    wall.push(t.wall / count);
  }
  return {
    ns_median: median(cpu),
    ns_p10: percentile(cpu, 10),
    ns_p90: percentile(cpu, 90),
    ns_wall_median: median(wall),
    picks_per_batch: count,
    batches,
  };
}

async function allocPerPick(run) {
  calibrate(run, warmupMs);
  let count = Math.min(4_000_000, calibrate(run, allocMs));
  for (let attempt = 0; attempt < 8; attempt++) {
    gc();
    gc();
    await settle();
    const gcBefore = gcEvents;
    const before = process.memoryUsage().heapUsed;
    run(count);
    const after = process.memoryUsage().heapUsed;
    await settle();
    if (gcEvents === gcBefore) return { bytes_per_pick: Math.max(0, (after - before) / count), picks_measured: count };
    // A collection ran during the measurement, so the heap delta undercounts: retry shorter.
    count = Math.max(100, Math.floor(count / 8));
  }
  return { bytes_per_pick: null, picks_measured: 0, problem: 'a garbage collection ran during every attempt' };
}

/** CPU ms of `fn()`: like the picks, robust against other processes taking the core mid-build. */
function cpuMs(fn) {
  const cpu0 = process.cpuUsage();
  fn();
  const cpu = process.cpuUsage(cpu0);
  return (cpu.user + cpu.system) / 1_000;
}

/** ms per picker build after one endpoint joins or leaves a `rebuildSize` set; the previous picker is passed as in production. */
function timeRebuilds(s) {
  const base = s.set;
  const instances = base.instances;
  const joined = base.next([...instances, benchInstance(rebuildSize + 1)]);
  const left = base.next(instances.filter((_, i) => i !== Math.floor(instances.length / 2)));
  const join = [];
  const leave = [];
  const build = (endpoints) => {
    if (target === 'moleculer') {
      const list = endpoints.map((e) => ({ id: e.instance.id, local: false, state: true, available: true }));
      return cpuMs(() => s.peer.rebuild(list));
    }
    return cpuMs(() => s.built.build(endpoints, { loads: s.loads, random: Math.random, previous: s.picker }));
  };
  // One untimed round of each, so that compiling the build code is not counted.
  build(joined.endpoints);
  build(left.endpoints);
  for (let i = 0; i < rebuildIterations; i++) {
    join.push(build(joined.endpoints));
    leave.push(build(left.endpoints));
  }
  const all = [...join, ...leave];
  return {
    ms_median: median(all),
    ms_join_median: median(join),
    ms_leave_median: median(leave),
    ms_max: Math.max(...all),
    iterations: all.length,
  };
}

/**
 * What one snapshot change costs besides the picker, as a client pays it:
 * the registry's diff applied to the EndpointSet (one join, or one leave)
 * and the departed endpoint's load record forgotten. `full_list_ms_median`:
 * the same join through `next(list)`, for backends that only have a full list.
 */
function timeSnapshot(s) {
  const base = s.set;
  const joinedInstances = [...base.instances, benchInstance(rebuildSize + 1)];
  const joiner = endpointOf(benchInstance(rebuildSize + 1));
  const leaver = base.endpoints[Math.floor(base.size / 2)];
  const times = [];
  const full = [];
  base.next(joinedInstances);
  base.apply({ upserted: [joiner] });
  for (let i = 0; i < rebuildIterations; i++) {
    times.push(cpuMs(() => base.apply({ upserted: [joiner] })));
    times.push(
      cpuMs(() => {
        const next = base.apply({ removed: [leaver.key] });
        s.loads.forget(next.diff.removed);
      }),
    );
    full.push(cpuMs(() => s.loads.retain(base.next(joinedInstances).endpoints)));
  }
  return {
    ms_median: median(times),
    ms_max: Math.max(...times),
    iterations: times.length,
    full_list_ms_median: median(full),
  };
}

async function main() {
  let Strategies;
  let peerVersion;
  if (target === 'moleculer') {
    const loaded = loadMoleculer();
    if (!loaded.Strategies) {
      process.stdout.write(`${JSON.stringify({ unavailable: loaded.problem })}\n`);
      return;
    }
    Strategies = loaded.Strategies;
    peerVersion = loaded.version;
  }
  const picks = [];
  for (const n of sizes) {
    const s = subject(n, Strategies);
    const row = { endpoints: n };
    Object.assign(row, mode === 'alloc' ? await allocPerPick(s.run) : timePicks(s.run));
    if (misses > 0) throw new Error(`${strategy}: ${misses} picks returned no endpoint`);
    picks.push(row);
  }
  const out = { picks, peer_version: peerVersion };
  if (mode === 'time' && rebuildSize > 0) {
    const s = subject(rebuildSize, Strategies);
    if (target === 'ours' || s.peer?.rebuild) out.rebuild = timeRebuilds(s);
    if (target === 'ours' && strategy === 'round_robin' && !variant) out.snapshot = timeSnapshot(s);
  }
  observer.disconnect();
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

await main();
