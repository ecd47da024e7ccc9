// Overload features, measured side by side in one process over raw-bytes
// Echo servers (bench/echo-server.mjs) in their own processes:
//   tail: p99 of ServiceClient.call() with one of three servers 50 ms slower,
//         hedging off vs on (idempotent calls), beside the run with no slow
//         server; the slow server is a fourth address swapped in.
//   idle: client CPU per call with each feature on but idle (nothing is
//         overloaded, nothing joins) vs every feature off.
// Modes alternate order per round. Prints one JSON line.
import * as grpc from '@grpc/grpc-js';
import { Discovery } from '../dist/index.js';
import { EchoClient } from './support/echo.mjs';
import { median, percentile } from './support/stats.mjs';

const spec = JSON.parse(process.argv[2] ?? '{}');
const { part, fast, slow, concurrency = 16, rounds = 4, durationMs = 3_000 } = spec;
const insecure = grpc.credentials.createInsecure();
const quiet = { log() {}, warn() {}, error: (m) => process.stderr.write(`${m}\n`) };
const payload = Buffer.alloc(32, 7);
const gc = globalThis.gc ?? (() => undefined);

/** Every feature off: the baseline of the idle comparison. */
const OFF = {
  slowStart: { window: 0 },
  circuitBreaker: { maxRequests: 0, maxRequestsPerEndpoint: 0, maxPending: 0 },
  throttling: { enabled: false },
  hedging: { delay: 0 },
  subsetting: { size: 0 },
};

function echo(channel, signal) {
  return new Promise((resolve, reject) => {
    const stub =
      stubs.get(channel) ??
      stubs.set(channel, new EchoClient('unused', insecure, { channelOverride: channel })).get(channel);
    const call = stub.Echo(payload, (error, reply) => (error ? reject(error) : resolve(reply)));
    signal?.addEventListener('abort', () => call.cancel(), { once: true });
  });
}
const stubs = new Map();

async function clientFor(addresses, options, loadBalance = 'round_robin') {
  const discovery = await Discovery.create(
    { backend: 'static', backendConfig: { addresses }, loadBalance },
    { logger: quiet },
  );
  const client = discovery.client({ name: 'echo', retry: false, ...options });
  await client.ready({ minEndpoints: addresses.length });
  return { client, close: () => discovery.close() };
}

function load(client, ms, callOptions, latencies) {
  return new Promise((resolve) => {
    let calls = 0;
    let errors = 0;
    let active = concurrency;
    let stopping = false;
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const stopAt = t0 + ms;
    const loop = () => {
      const started = performance.now();
      client
        .call(({ channel, signal }) => echo(channel, signal), callOptions)
        .then(
          () => next(started, false),
          () => next(started, true),
        );
    };
    const next = (started, failed) => {
      const now = performance.now();
      if (failed) errors++;
      else if (calls < latencies.length) latencies[calls++] = now - started;
      else calls++;
      if (!stopping && now < stopAt) return loop();
      stopping = true;
      if (--active === 0) {
        const cpu = process.cpuUsage(cpu0);
        resolve({ calls, errors, elapsedMs: performance.now() - t0, cpuUs: cpu.user + cpu.system });
      }
    };
    for (let i = 0; i < concurrency; i++) loop();
  });
}

function totalPicks(client) {
  let sum = 0;
  for (const count of client.pickCounts().values()) sum += count;
  return sum;
}

async function runModes(modes) {
  const latencies = new Float64Array(2_000_000);
  const clients = {};
  for (const [name, make] of Object.entries(modes)) clients[name] = await make();
  try {
    for (const { client, callOptions } of Object.values(clients))
      await load(client, 1_000, callOptions ?? {}, latencies);
    const names = Object.keys(clients);
    const runs = Object.fromEntries(names.map((n) => [n, []]));
    for (let round = 0; round < rounds; round++) {
      const order = names.map((_, i) => names[(i + round) % names.length]);
      for (const name of order) {
        gc();
        const { client, callOptions } = clients[name];
        const picks0 = totalPicks(client);
        const r = await load(client, durationMs, callOptions ?? {}, latencies);
        const attempts = totalPicks(client) - picks0;
        const sample = latencies.subarray(0, Math.min(r.calls, latencies.length));
        runs[name].push({
          round,
          calls: r.calls,
          errors: r.errors,
          rps: (r.calls * 1000) / r.elapsedMs,
          p50_ms: percentile(sample, 50),
          p99_ms: percentile(sample, 99),
          cpu_us_per_call: r.cpuUs / Math.max(1, r.calls + r.errors),
          attempts_per_call: attempts / Math.max(1, r.calls + r.errors),
        });
      }
    }
    const summary = Object.fromEntries(
      names.map((n) => [
        n,
        {
          rps: median(runs[n].map((r) => r.rps)),
          p50_ms: median(runs[n].map((r) => r.p50_ms)),
          p99_ms: median(runs[n].map((r) => r.p99_ms)),
          cpu_us_per_call: median(runs[n].map((r) => r.cpu_us_per_call)),
          errors: runs[n].reduce((s, r) => s + r.errors, 0),
          attempts_per_call: median(runs[n].map((r) => r.attempts_per_call)),
        },
      ]),
    );
    return { summary, runs };
  } finally {
    for (const { close } of Object.values(clients)) await close();
  }
}

async function tail() {
  const withSlow = [fast[0], fast[1], slow];
  const modes = {
    no_slow_server: async () => clientFor(fast.slice(0, 3), OFF),
    slow_hedging_off: async () => clientFor(withSlow, OFF),
  };
  for (const delayMs of spec.hedgeDelaysMs) {
    modes[`slow_hedging_${delayMs}ms`] = async () => ({
      ...(await clientFor(withSlow, { ...OFF, hedging: { delay: delayMs / 1000, maxAttempts: 2 } })),
      callOptions: { idempotent: true },
    });
  }
  return runModes(modes);
}

async function idle() {
  const on = {
    slow_start: { slowStart: { window: 30 } },
    circuit_breaker: { circuitBreaker: { maxRequests: 1024, maxRequestsPerEndpoint: 256, maxPending: 1024 } },
    throttling: { throttling: { enabled: true } },
    hedging: { hedging: { delay: 5 }, callOptions: { idempotent: true } },
    priority: { zone: 'a' },
  };
  const modes = { all_off: async () => clientFor(fast, OFF) };
  const optionsOf = ({ callOptions: _ignored, ...options }) => options;
  for (const [name, { callOptions, ...options }] of Object.entries(on)) {
    modes[name] = async () => ({ ...(await clientFor(fast, { ...OFF, ...options })), callOptions });
  }
  modes.all_on = async () => ({
    ...(await clientFor(fast, Object.assign({}, OFF, ...Object.values(on).map(optionsOf)))),
    callOptions: { idempotent: true },
  });
  return runModes(modes);
}

const result = part === 'tail' ? await tail() : await idle();
process.stdout.write(`${JSON.stringify(result)}\n`);
process.exit(0);
