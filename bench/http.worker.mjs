// The HTTP benchmark's client: GET requests at a fixed concurrency over
// three HTTP servers in their own processes (bench/http-server.mjs, started
// by bench/run.mjs), through
//   switchyard_fetch       -- client.fetch('/hello'), strategy round_robin (static backend);
//   switchyard_dispatcher  -- the platform's fetch with discovery.httpDispatcher();
//   undici_rr              -- hand-written: the same fetch over three undici Pools, round robin;
//   axios_keepalive        -- axios (its http adapter) with a keep-alive agent, round robin by hand;
// alternated per round (a b c d, b c d a, ...), each run with the 1-minute
// load average it started under. Every request reads its whole body.
// mode "alloc": bytes allocated per pick on the dispatcher's path (host ->
// client, pick, pool), from heapUsed around a long loop without a GC.
// mode "overhead": switchyard's own CPU per request on the dispatcher's path
// (routing, pick, retry loop, call handle, outcome), with each endpoint's
// pool swapped for a stub that answers at once: what the end-to-end ratios
// cannot resolve on a busy machine.
// Prints one JSON line.
import http from 'node:http';
import { loadavg } from 'node:os';
import { PerformanceObserver } from 'node:perf_hooks';
import axios from 'axios';
import { Pool } from 'undici';
import { Discovery } from '../dist/index.js';
import { median, percentile, roundOrder, settle } from './support/stats.mjs';

const spec = JSON.parse(process.argv[2] ?? '{}');
const {
  addresses,
  concurrency = 64,
  rounds = 5,
  durationMs = 5_000,
  warmupMs = 2_000,
  modes = ['switchyard_fetch', 'switchyard_dispatcher', 'undici_rr', 'axios_keepalive'],
  mode = 'load',
} = spec;
if (!Array.isArray(addresses) || addresses.length < 1) throw new Error('addresses missing');

const gc = globalThis.gc ?? (() => undefined);
const quiet = { log() {}, warn() {}, error: (m) => process.stderr.write(`${m}\n`) };
const origins = addresses.map((a) => `http://${a}`);

/** One request function per mode; each resolves once the whole body was read. */
async function makeClients() {
  const discovery = await Discovery.create(
    { backend: 'static', backendConfig: { addresses }, loadBalance: 'round_robin' },
    { logger: quiet, clients: [{ name: 'echo' }] },
  );
  const client = discovery.client('echo');
  await client.ready({ minEndpoints: addresses.length });
  const dispatcher = discovery.httpDispatcher();
  const pools = origins.map((origin) => new Pool(origin, { connections: 64 }));
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const instance = axios.create({ httpAgent: agent });
  let next = 0;
  const requests = {
    switchyard_fetch: async () => (await client.fetch('/hello')).arrayBuffer(),
    switchyard_dispatcher: async () => (await fetch('http://echo/hello', { dispatcher })).arrayBuffer(),
    undici_rr: async () => {
      const i = next++ % pools.length;
      return (await fetch(`${origins[i]}/hello`, { dispatcher: pools[i] })).arrayBuffer();
    },
    axios_keepalive: async () => (await instance.get(`${origins[next++ % origins.length]}/hello`)).data,
  };
  return {
    client,
    dispatcher,
    requests,
    close: async () => {
      await Promise.all(pools.map((p) => p.close()));
      agent.destroy();
      await discovery.close();
    },
  };
}

/** `concurrency` closed loops for `ms`: calls/s, latency percentiles, this process's CPU per request. */
async function load(request, ms, latencies) {
  let calls = 0;
  let errors = 0;
  let firstError;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const stopAt = t0 + ms;
  const loop = async () => {
    while (performance.now() < stopAt) {
      const started = performance.now();
      try {
        await request();
        if (calls < latencies.length) latencies[calls] = performance.now() - started;
        calls++;
      } catch (error) {
        errors++;
        firstError ??= `${error.message}${error.cause ? `: ${error.cause.message}` : ''}`;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, loop));
  const elapsedMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  return { calls, errors, firstError, elapsedMs, cpuUs: cpu.user + cpu.system };
}

/** Bytes allocated per pick on the dispatcher's path: origin -> client, pick, the endpoint's pool. */
async function allocPerPick(c) {
  // One real request makes the transport, its pools and the route.
  await (await fetch('http://echo/hello', { dispatcher: c.dispatcher })).arrayBuffer();
  const transport = c.client.httpTransport;
  const routes = c.dispatcher.routes;
  const origin = 'http://echo';
  const pick = (n) => {
    let sink = 0;
    for (let i = 0; i < n; i++) {
      const client = routes.get(origin);
      const endpoint = client.pickEndpoint();
      sink += transport.context.pools.get(endpoint).origin.length;
    }
    return sink;
  };
  pick(200_000);
  let gcs = 0;
  const observer = new PerformanceObserver((list) => (gcs += list.getEntries().length));
  observer.observe({ entryTypes: ['gc'] });
  let count = 1_000_000;
  try {
    for (let attempt = 0; attempt < 8; attempt++) {
      gc();
      gc();
      await settle();
      const before = process.memoryUsage().heapUsed;
      const gcBefore = gcs;
      pick(count);
      const after = process.memoryUsage().heapUsed;
      await settle();
      if (gcs === gcBefore) return { bytes_per_pick: Math.max(0, (after - before) / count), picks_measured: count };
      count = Math.max(1_000, Math.floor(count / 4));
    }
    return { bytes_per_pick: null, picks_measured: 0, problem: 'a garbage collection ran during every attempt' };
  } finally {
    observer.disconnect();
  }
}

/** CPU µs per request of switchyard's own layer: the dispatcher over stub pools that answer synchronously. */
async function ownOverhead(c) {
  await (await fetch('http://echo/hello', { dispatcher: c.dispatcher })).arrayBuffer();
  const pools = c.client.httpTransport.context.pools;
  const raw = [Buffer.from('content-length'), Buffer.from('2')];
  const body = Buffer.from('ok');
  const stub = {
    dispatch(_options, handler) {
      handler.onConnect(() => undefined);
      handler.onHeaders(200, raw, () => undefined, 'OK');
      handler.onData(body);
      handler.onComplete(null);
      return true;
    },
  };
  for (const endpoint of c.client.snapshot().endpoints) {
    const entry = pools.get(endpoint);
    await entry.pool.close();
    entry.pool = stub;
  }
  const options = { origin: 'http://echo', path: '/hello', method: 'GET', headers: { accept: '*/*' }, body: null };
  let completed = 0;
  const handler = {
    onConnect() {},
    onHeaders: () => true,
    onData: () => true,
    onComplete: () => completed++,
    onError: (error) => {
      throw error;
    },
  };
  const run = async (n) => {
    const cpu0 = process.cpuUsage();
    for (let i = 0; i < n; i++) {
      c.dispatcher.dispatch(options, handler);
      // Let the retry loop's promises settle now and then, as the event loop would.
      if ((i & 1023) === 1023) await new Promise(setImmediate);
    }
    await new Promise(setImmediate);
    const cpu = process.cpuUsage(cpu0);
    return (cpu.user + cpu.system) / n;
  };
  await run(200_000);
  const samples = [];
  for (let i = 0; i < 5; i++) samples.push(await run(200_000));
  if (completed !== 1_200_000) throw new Error(`only ${completed} of 1,200,000 stub requests completed`);
  return { us_per_request: median(samples), samples };
}

async function main() {
  const c = await makeClients();
  try {
    if (mode === 'alloc') {
      process.stdout.write(`${JSON.stringify(await allocPerPick(c))}\n`);
      return;
    }
    if (mode === 'overhead') {
      process.stdout.write(`${JSON.stringify(await ownOverhead(c))}\n`);
      return;
    }
    const latencies = new Float64Array(2_000_000);
    for (const m of modes) await load(c.requests[m], warmupMs, latencies);
    const runs = Object.fromEntries(modes.map((m) => [m, []]));
    const order = [];
    for (let round = 0; round < rounds; round++) {
      const thisRound = roundOrder(modes, round);
      order.push(thisRound);
      for (const [position, m] of thisRound.entries()) {
        gc();
        const loadAtStart = Math.round(loadavg()[0] * 100) / 100;
        const r = await load(c.requests[m], durationMs, latencies);
        const sample = latencies.subarray(0, Math.min(r.calls, latencies.length));
        runs[m].push({
          round,
          calls: r.calls,
          errors: r.errors,
          first_error: r.firstError,
          rps: (r.calls * 1000) / r.elapsedMs,
          p50_ms: percentile(sample, 50),
          p99_ms: percentile(sample, 99),
          cpu_us_per_call: r.cpuUs / Math.max(1, r.calls + r.errors),
          position,
          load_1m: [loadAtStart, Math.round(loadavg()[0] * 100) / 100],
        });
      }
    }
    const summary = {};
    for (const m of modes) {
      const list = runs[m];
      summary[m] = {
        rps: median(list.map((r) => r.rps)),
        p50_ms: median(list.map((r) => r.p50_ms)),
        p99_ms: median(list.map((r) => r.p99_ms)),
        cpu_us_per_call: median(list.map((r) => r.cpu_us_per_call)),
        errors: list.reduce((sum, r) => sum + r.errors, 0),
        first_error: list.find((r) => r.first_error)?.first_error,
      };
    }
    process.stdout.write(`${JSON.stringify({ summary, runs, order })}\n`);
  } finally {
    await c.close();
  }
}

await main();
process.exit(0);
