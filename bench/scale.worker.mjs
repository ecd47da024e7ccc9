// The client side of the scale scenario: ONE process with a client per
// service (1,000 services of 100 instances by default), driven by the
// orchestrator (bench/parts/scale.mjs) over IPC, phase by phase:
//   start   Discovery.create + a client per service; reports the time until
//           every client serves every instance, then heap and RSS (after GC)
//   idle    process CPU over a quiet window (no registry change, no pick)
//   churn   while the registry is churned by the driver process: records
//           when each endpoint key appears in or leaves a client's set (the
//           orchestrator joins this with the driver's change log), picks
//           `pickRate` times a second over the services (so each picker is
//           rebuilt after the changes it saw), and measures CPU
//   check   every client's set, for comparison with the registry
// Run with --expose-gc. `dist` in the start message selects the build
// (default ../dist; another checkout's dist/ measures a baseline).
// BENCH_SCALE_IDLE_PROFILE / BENCH_SCALE_CHURN_PROFILE=<file.cpuprofile>: a CPU
// profile of the idle window (what an idle client does) / of the churn (what a change costs).
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { PerformanceObserver } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { startCpuProfile } from './support/cpu-profile.mjs';

const quiet = { log() {}, warn() {}, error() {} };
const now = () => performance.timeOrigin + performance.now();
const cpuMs = (since) => {
  const used = process.cpuUsage(since);
  return (used.user + used.system) / 1000;
};

let discovery;
let clients = [];
let subscriptions = [];
let seen;

function send(message) {
  process.send(message);
}

/** Established TCP connections this process holds to `port` on loopback (Linux /proc; undefined elsewhere). */
function socketsTo(port) {
  try {
    const inodes = new Set();
    for (const fd of readdirSync('/proc/self/fd')) {
      const link = (() => {
        try {
          return readlinkSync(`/proc/self/fd/${fd}`);
        } catch {
          return '';
        }
      })();
      const match = /^socket:\[(\d+)\]$/.exec(link);
      if (match) inodes.add(match[1]);
    }
    const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
    let count = 0;
    for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      // remote address, state 01 = ESTABLISHED, inode
      if (fields[2]?.endsWith(`:${hexPort}`) && fields[3] === '01' && inodes.has(fields[9])) count++;
    }
    return count;
  } catch {
    return undefined;
  }
}

/**
 * The idle window starts once V8's memory reducer has run and no
 * collection ran for this long. After allocation stops, the reducer runs two
 * or three incremental collections, 0.6 s apart, to shrink the heap: not
 * when the allocation stops but once the allocation rate it averages since
 * the last collection reads low, which after a start-up of 100,000 instances
 * took from 8 s to 30 s here (a one-time ~0.5 s of CPU at 150 MB: measured
 * in the window, it read as 2 % of idle CPU in one run and 0.2 % in the
 * next). The window measures what follows them.
 */
const GC_QUIET_MS = 12_000;
/** The reducer's collections are waited for this long at most (a heap that did not grow may not arm it)... */
const GC_REDUCER_MAX_MS = 45_000;
/** ...and the quiet for this long at most. */
const GC_QUIET_MAX_MS = 90_000;

/**
 * Resolves once an incremental major collection (the memory reducer's kind)
 * ran, or GC_REDUCER_MAX_MS passed, and then no collection ran for
 * GC_QUIET_MS; or after GC_QUIET_MAX_MS. Returns the time it waited.
 */
async function gcQuiet() {
  let last = performance.now();
  let reduced = false;
  const observer = new PerformanceObserver((list) => {
    last = performance.now();
    for (const entry of list.getEntries()) if (entry.detail?.kind === 4) reduced = true;
  });
  observer.observe({ entryTypes: ['gc'] });
  const started = performance.now();
  const settled = () =>
    performance.now() - last >= GC_QUIET_MS && (reduced || performance.now() - started >= GC_REDUCER_MAX_MS);
  while (!settled() && performance.now() - started < GC_QUIET_MAX_MS)
    await new Promise((resolve) => setTimeout(resolve, 250));
  observer.disconnect();
  return { waitedMs: performance.now() - started, reduced };
}

async function memoryAfterGc() {
  for (let i = 0; i < 3; i++) {
    globalThis.gc();
    await new Promise((resolve) => setImmediate(resolve));
  }
  const usage = process.memoryUsage();
  return {
    heap_mib: usage.heapUsed / 2 ** 20,
    rss_mib: usage.rss / 2 ** 20,
    array_buffers_mib: usage.arrayBuffers / 2 ** 20,
  };
}

async function start({ dist, options, services, instances, readyTimeoutMs }) {
  const { Discovery } = await import(pathToFileURL(join(dist, 'index.js')).href);
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  discovery = await Discovery.create(options, { logger: quiet, firstSetTimeoutMs: readyTimeoutMs });
  clients = services.map((name) => discovery.client(name));
  const pending = new Set(clients);
  const readyMs = await new Promise((resolve) => {
    const timer = setTimeout(() => resolve(null), readyTimeoutMs);
    const check = () => {
      for (const client of pending) if (client.snapshot().size >= instances) pending.delete(client);
      if (pending.size === 0) {
        clearTimeout(timer);
        resolve(performance.now() - t0);
        return true;
      }
      return false;
    };
    if (check()) return;
    const poll = setInterval(() => {
      if (check()) clearInterval(poll);
    }, 20);
    timer.unref?.();
  });
  const startCpuMs = cpuMs(cpu0);
  send({
    phase: 'started',
    ready_ms: readyMs,
    not_ready: pending.size,
    start_cpu_ms: startCpuMs,
    stale_sets: clients.filter((c) => c.snapshot().state === 'stale').length,
  });
}

async function idle({ seconds, registryPort }) {
  // Steady state, not the aftermath of start-up: full collections first (heap and RSS are read
  // after them), then a wait until V8's memory reducer has shrunk the heap with a few more (8-30 s
  // after start-up stops allocating) and no collection ran for 12 s, then the window. Collections
  // inside the window are reported beside it.
  const memory = await memoryAfterGc();
  const quiet = await gcQuiet();
  let gcMs = 0;
  const gcKinds = {};
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      gcMs += entry.duration;
      const kind =
        { 1: 'minor', 2: 'major', 4: 'incremental', 8: 'weakcb' }[entry.detail?.kind] ?? String(entry.detail?.kind);
      gcKinds[kind] = (gcKinds[kind] ?? 0) + 1;
    }
  });
  observer.observe({ entryTypes: ['gc'] });
  const profiler = process.env.BENCH_SCALE_IDLE_PROFILE ? await startCpuProfile() : undefined;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
  const wall = performance.now() - t0;
  const idleCpu = cpuMs(cpu0);
  await profiler?.stop(process.env.BENCH_SCALE_IDLE_PROFILE);
  await new Promise((resolve) => setImmediate(resolve));
  observer.disconnect();
  send({
    phase: 'idle',
    ...memory,
    idle_cpu_percent: (idleCpu / wall) * 100,
    idle_gc_ms: gcMs,
    idle_gc_counts: gcKinds,
    idle_settle_ms: quiet.waitedMs,
    idle_after_reducer: quiet.reduced,
    registry_sockets: registryPort ? socketsTo(registryPort) : undefined,
  });
}

async function churn({ seconds, pickRate }) {
  // key -> first time seen present / absent after the churn started.
  seen = { appeared: new Map(), left: new Map() };
  for (const client of clients) {
    let last;
    subscriptions.push(
      client.endpoints$.subscribe((set) => {
        if (last !== undefined) {
          const t = now();
          const diff = set.revision === last.revision + 1 ? set.diff : diffOf(last, set);
          for (const e of diff.added) if (!seen.appeared.has(e.key)) seen.appeared.set(e.key, t);
          for (const e of diff.removed) if (!seen.left.has(e.key)) seen.left.set(e.key, t);
        }
        last = set;
      }),
    );
  }
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let picks = 0;
  let failedPicks = 0;
  let next = 0;
  const keys = Array.from({ length: 1024 }, (_, i) => `user-${i * 2654435761}`);
  const timer =
    pickRate > 0
      ? setInterval(() => {
          // Picks due since the start, spread over the services in turn.
          const due = Math.floor(((performance.now() - t0) / 1000) * pickRate);
          for (; picks + failedPicks < due; next++) {
            try {
              clients[next % clients.length].pick({ key: keys[next & 1023] });
              picks++;
            } catch {
              failedPicks++;
            }
          }
        }, 10)
      : undefined;
  // GC pauses over the churn: a long one delays every change that arrives meanwhile.
  const gc = { ms: 0, maxMs: 0, counts: {} };
  const gcObserver = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      gc.ms += entry.duration;
      gc.maxMs = Math.max(gc.maxMs, entry.duration);
      const kind =
        { 1: 'minor', 2: 'major', 4: 'incremental', 8: 'weakcb' }[entry.detail?.kind] ?? String(entry.detail?.kind);
      gc.counts[kind] = (gc.counts[kind] ?? 0) + 1;
    }
  });
  gcObserver.observe({ entryTypes: ['gc'] });
  const profiler = process.env.BENCH_SCALE_CHURN_PROFILE ? await startCpuProfile() : undefined;
  await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
  clearInterval(timer);
  const wall = performance.now() - t0;
  await profiler?.stop(process.env.BENCH_SCALE_CHURN_PROFILE);
  gcObserver.disconnect();
  send({
    phase: 'churned',
    churn_cpu_percent: (cpuMs(cpu0) / wall) * 100,
    churn_gc_ms: gc.ms,
    churn_gc_max_ms: gc.maxMs,
    churn_gc_counts: gc.counts,
    picks,
    failed_picks: failedPicks,
    ...(await memoryAfterGc()),
  });
}

/** What changed between two sets that are not consecutive (works on any build). */
function diffOf(before, after) {
  const had = new Set(before.endpoints.map((e) => e.key));
  const has = new Set(after.endpoints.map((e) => e.key));
  return {
    added: after.endpoints.filter((e) => !had.has(e.key)),
    removed: before.endpoints.filter((e) => !has.has(e.key)),
  };
}

function report() {
  // Sent in chunks: one IPC message of 100,000 entries is slow to serialise.
  const entries = (map) => [...map.entries()];
  send({ phase: 'seen', appeared: entries(seen?.appeared ?? new Map()), left: entries(seen?.left ?? new Map()) });
}

function check() {
  send({
    phase: 'sets',
    sets: clients.map((client) => ({
      service: client.service,
      state: client.snapshot().state,
      ids: client.snapshot().endpoints.map((e) => e.instance.id),
    })),
  });
}

async function stop() {
  for (const subscription of subscriptions) subscription.unsubscribe();
  await discovery?.close();
  send({ phase: 'stopped' });
  process.exit(0);
}

const handlers = { start, idle, churn, report, check, stop };
process.on('message', (message) => {
  Promise.resolve(handlers[message.phase](message)).catch((error) => {
    send({ phase: 'error', error: `${error?.constructor?.name}: ${error?.message}` });
  });
});
// Exit with the orchestrator: a parent that died leaves no orphan.
process.on('disconnect', () => process.exit(0));
