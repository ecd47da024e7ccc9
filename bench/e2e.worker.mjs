// The end-to-end client: unary Greeter calls at a fixed concurrency over
// three Greeter servers that run in their own processes (started by
// bench/run.mjs), through
//   switchyard  -- a `discovery:///greeter` channel, strategy round_robin
//                  (static backend, Discovery.serveGrpcTargets());
//   grpcjs_rr   -- grpc-js's own round_robin over an `ipv4:` address list;
//   direct      -- one channel to one server;
// alternated, each round starting with the next mode (a b c, b c a, c a b, ...)
// so drift hits all alike and no mode always runs first. Every run records
// the 1-minute load average it started under. Prints one JSON line.
import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { Discovery } from '../dist/index.js';
import { median, percentile, roundOrder } from './support/stats.mjs';

const spec = JSON.parse(process.argv[2] ?? '{}');
const {
  addresses,
  concurrency = 64,
  rounds = 5,
  durationMs = 5_000,
  warmupMs = 2_000,
  modes = ['switchyard', 'grpcjs_rr', 'direct'],
} = spec;
if (!Array.isArray(addresses) || addresses.length < 1) throw new Error('addresses missing');

const gc = globalThis.gc ?? (() => undefined);
const proto = join(import.meta.dirname, '../sample/01-greeter/protos/greeter.proto');
const Greeter = grpc.loadPackageDefinition(loadSync(proto, { keepCase: true, defaults: true })).greeter.Greeter;
const insecure = grpc.credentials.createInsecure();
const quiet = { log() {}, warn() {}, error: (m) => process.stderr.write(`${m}\n`) };

/** The stubs under test, each over its own channel(s). */
async function makeClients() {
  const clients = {};
  const closers = [];
  if (modes.includes('switchyard') || modes.includes('switchyard_no_retry')) {
    const discovery = await Discovery.create(
      { backend: 'static', backendConfig: { addresses }, loadBalance: 'round_robin' },
      { logger: quiet },
    );
    discovery.serveGrpcTargets();
    closers.push(() => discovery.close());
    clients.switchyard = new Greeter('discovery:///greeter', insecure);
    if (modes.includes('switchyard_no_retry')) {
      // The same channel without gRPC's retry policy: shows what retries cost per call.
      const plain = await Discovery.create(
        { backend: 'static', backendConfig: { addresses }, loadBalance: 'round_robin' },
        { logger: quiet, retry: false },
      );
      plain.serveGrpcTargets('no-retry');
      closers.push(() => plain.close());
      clients.switchyard_no_retry = new Greeter('discovery://no-retry/greeter', insecure);
    }
  }
  const serviceConfig = JSON.stringify({ loadBalancingConfig: [{ round_robin: {} }] });
  clients.grpcjs_rr = new Greeter(`ipv4:${addresses.join(',')}`, insecure, { 'grpc.service_config': serviceConfig });
  clients.direct = new Greeter(addresses[0], insecure);
  return {
    clients,
    close: async () => {
      for (const stub of Object.values(clients)) stub.close();
      for (const close of closers) await close();
    },
  };
}

const request = { name: 'bench' };

function call(stub) {
  return new Promise((resolve, reject) =>
    stub.SayHello(request, (error, reply) => (error ? reject(error) : resolve(reply))),
  );
}

/** Waits until `stub` has reached every server it balances over (all of them, or one for direct). */
async function warmUp(stub, expected) {
  const seen = new Set();
  const deadline = Date.now() + 20_000;
  while (seen.size < expected) {
    if (Date.now() > deadline) throw new Error(`only ${seen.size} of ${expected} servers answered within 20 s`);
    const replies = await Promise.all(Array.from({ length: 12 }, () => call(stub)));
    for (const reply of replies) seen.add(reply.instance);
  }
}

/**
 * `concurrency` closed loops of calls for `durationMs`: each loop sends its
 * next call when the previous one answered. Measures calls/s, latency
 * percentiles and this process's CPU time per call.
 */
function load(stub, ms, latencies) {
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
      stub.SayHello(request, (error) => {
        const now = performance.now();
        if (error) {
          errors++;
          firstError ??= error.message;
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
  const { clients, close } = await makeClients();
  const latencies = new Float64Array(4_000_000);
  try {
    for (const mode of modes) await warmUp(clients[mode], mode === 'direct' ? 1 : addresses.length);
    for (const mode of modes) await load(clients[mode], warmupMs, latencies);
    const runs = Object.fromEntries(modes.map((m) => [m, []]));
    const order = [];
    for (let round = 0; round < rounds; round++) {
      const thisRound = roundOrder(modes, round);
      order.push(thisRound);
      for (const [position, mode] of thisRound.entries()) {
        gc();
        const loadAtStart = Math.round(loadavg()[0] * 100) / 100;
        const r = await load(clients[mode], durationMs, latencies);
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
