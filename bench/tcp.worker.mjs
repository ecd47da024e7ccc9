// The TCP end-to-end client: request/response sends at a fixed concurrency
// over three Nest TCP microservices that run in their own processes
// (test/support/tcp/tcp-server-process.mjs, started by bench/run.mjs), through
//   switchyard_tcp  -- DiscoveryClientProxy (ServiceClient.proxy(), static
//                      backend, strategy round_robin, retries on);
//   clienttcp_rr    -- three Nest ClientTCPs, one per server, picked in a
//                      hand-written round robin;
// alternated, each round starting with the next mode, so drift hits both
// alike and neither always runs first. Every run records the 1-minute load
// average it ran under. Prints one JSON line.
import { ClientTCP } from '@nestjs/microservices';
import { loadavg } from 'node:os';
import { Discovery } from '../dist/index.js';
import { median, percentile, roundOrder } from './support/stats.mjs';

const spec = JSON.parse(process.argv[2] ?? '{}');
const {
  addresses,
  concurrency = 64,
  rounds = 5,
  durationMs = 5_000,
  warmupMs = 2_000,
  modes = ['switchyard_tcp', 'clienttcp_rr'],
} = spec;
if (!Array.isArray(addresses) || addresses.length < 1) throw new Error('addresses missing');

const gc = globalThis.gc ?? (() => undefined);
const quiet = { log() {}, warn() {}, error: (m) => process.stderr.write(`${m}\n`) };
const PATTERN = 'whoami';
const DATA = {};

/** Each mode as a function that sends one request and calls back with (error, reply). */
async function makeSenders() {
  const discovery = await Discovery.create(
    { backend: 'static', backendConfig: { addresses }, loadBalance: 'round_robin' },
    { logger: quiet },
  );
  const proxy = discovery.client('orders').proxy();
  const direct = addresses.map((address) => {
    const [host, port] = address.split(':');
    return new ClientTCP({ host, port: Number(port) });
  });
  await Promise.all(direct.map((client) => client.connect()));
  let next = 0;
  const viaObservable = (client, done) =>
    client.send(PATTERN, DATA).subscribe({ next: (reply) => done(null, reply), error: (error) => done(error) });
  return {
    senders: {
      switchyard_tcp: (done) => viaObservable(proxy, done),
      clienttcp_rr: (done) => viaObservable(direct[next++ % direct.length], done),
    },
    close: async () => {
      direct.forEach((client) => client.close());
      await discovery.close();
    },
  };
}

/** Waits until `send` has reached every server (the proxy connects to each on first use). */
async function warmUp(send) {
  const seen = new Set();
  const deadline = Date.now() + 20_000;
  while (seen.size < addresses.length) {
    if (Date.now() > deadline) throw new Error(`only ${seen.size} of ${addresses.length} servers answered within 20 s`);
    const replies = await Promise.all(
      Array.from({ length: 12 }, () => new Promise((resolve, reject) => send((e, r) => (e ? reject(e) : resolve(r))))),
    );
    for (const reply of replies) seen.add(reply.instance);
  }
}

/**
 * `concurrency` closed loops for `ms`: each loop sends its next request when
 * the previous one answered. Measures calls/s, latency percentiles and this
 * process's CPU time per call.
 */
function load(send, ms, latencies) {
  return new Promise((resolve) => {
    let calls = 0;
    let errors = 0;
    let firstError;
    let active = concurrency;
    let stopping = false;
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const stopAt = t0 + ms;
    const loop = () => {
      const started = performance.now();
      send((error) => {
        const now = performance.now();
        if (error) {
          errors++;
          firstError ??= error.message ?? String(error);
        } else if (calls < latencies.length) {
          latencies[calls++] = now - started;
        } else calls++;
        if (!stopping && now < stopAt) {
          loop();
          return;
        }
        stopping = true;
        if (--active === 0) {
          const elapsed = performance.now() - t0;
          const cpu = process.cpuUsage(cpu0);
          resolve({ calls, errors, firstError, elapsedMs: elapsed, cpuUs: cpu.user + cpu.system });
        }
      });
    };
    for (let i = 0; i < concurrency; i++) loop();
  });
}

async function main() {
  const { senders, close } = await makeSenders();
  const latencies = new Float64Array(4_000_000);
  try {
    for (const mode of modes) await warmUp(senders[mode]);
    for (const mode of modes) await load(senders[mode], warmupMs, latencies);
    const runs = Object.fromEntries(modes.map((m) => [m, []]));
    const order = [];
    for (let round = 0; round < rounds; round++) {
      const thisRound = roundOrder(modes, round);
      order.push(thisRound);
      for (const [position, mode] of thisRound.entries()) {
        gc();
        const loadAtStart = Math.round(loadavg()[0] * 100) / 100;
        const r = await load(senders[mode], durationMs, latencies);
        const sample = latencies.subarray(0, Math.min(r.calls, latencies.length));
        runs[mode].push({
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
    for (const mode of modes) {
      const list = runs[mode];
      summary[mode] = {
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
    await close();
  }
}

await main();
process.exit(0);
