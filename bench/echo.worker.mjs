// End-to-end client CPU per call on a raw-bytes Echo service (bench/echo-server.mjs
// x3), where a call costs ~150 µs of client CPU and balancing overhead shows:
//   switchyard          a `discovery:///echo` channel, round_robin, switchyard's defaults
//                       (outlier detection on, gRPC retry policy from the client's retry options)
//   switchyard_no_retry the same with retries off
//   grpcjs_rr           grpc-js round_robin over an `ipv4:` list (no retry policy)
//   grpcjs_rr_retry     the same with the retry policy switchyard configures by default
// Rounds alternate the order of the modes, so drift and warm-up favour none.
// Prints one JSON line.
import * as grpc from '@grpc/grpc-js';
import { Discovery } from '../dist/index.js';
import { EchoClient } from './support/echo.mjs';
import { median, percentile } from './support/stats.mjs';

const spec = JSON.parse(process.argv[2] ?? '{}');
const {
  addresses,
  concurrency = 64,
  rounds = 6,
  durationMs = 4_000,
  warmupMs = 2_000,
  modes = ['switchyard', 'switchyard_no_retry', 'grpcjs_rr', 'grpcjs_rr_retry'],
} = spec;
if (!Array.isArray(addresses) || addresses.length < 1) throw new Error('addresses missing');

const gc = globalThis.gc ?? (() => undefined);
const insecure = grpc.credentials.createInsecure();
const quiet = { log() {}, warn() {}, error: (m) => process.stderr.write(`${m}\n`) };
const payload = Buffer.alloc(32, 7);
/** The retry policy switchyard hands grpc-js by default (lib/client/retry-policy.ts defaults). */
const RETRY = {
  methodConfig: [
    {
      name: [{}],
      retryPolicy: {
        maxAttempts: 3,
        initialBackoff: '0.050s',
        maxBackoff: '1.000s',
        backoffMultiplier: 2,
        retryableStatusCodes: ['UNAVAILABLE'],
      },
    },
  ],
  retryThrottling: { maxTokens: 10, tokenRatio: 0.1 },
};

async function makeClients() {
  const clients = {};
  const closers = [];
  const discoveryWith = async (authority, extras) => {
    const discovery = await Discovery.create(
      { backend: 'static', backendConfig: { addresses }, loadBalance: 'round_robin' },
      { logger: quiet, ...extras },
    );
    discovery.serveGrpcTargets(authority);
    closers.push(() => discovery.close());
  };
  if (modes.includes('switchyard')) {
    await discoveryWith('defaults', {});
    clients.switchyard = new EchoClient('discovery://defaults/echo', insecure);
  }
  if (modes.includes('switchyard_no_retry')) {
    await discoveryWith('no-retry', { retry: false });
    clients.switchyard_no_retry = new EchoClient('discovery://no-retry/echo', insecure);
  }
  const rr = { loadBalancingConfig: [{ round_robin: {} }] };
  const list = `ipv4:${addresses.join(',')}`;
  clients.grpcjs_rr = new EchoClient(list, insecure, { 'grpc.service_config': JSON.stringify(rr) });
  clients.grpcjs_rr_retry = new EchoClient(list, insecure, {
    'grpc.service_config': JSON.stringify({ ...rr, ...RETRY }),
  });
  return {
    clients,
    close: async () => {
      for (const stub of Object.values(clients)) stub.close();
      for (const close of closers) await close();
    },
  };
}

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
      stub.Echo(payload, (error) => {
        const now = performance.now();
        if (error) {
          errors++;
          firstError ??= error.message;
        } else if (calls < latencies.length) latencies[calls++] = now - started;
        else calls++;
        if (!stopping && now < stopAt) return loop();
        stopping = true;
        if (--active === 0) {
          const cpu = process.cpuUsage(cpu0);
          resolve({ calls, errors, firstError, elapsedMs: performance.now() - t0, cpuUs: cpu.user + cpu.system });
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
    for (const mode of modes) await load(clients[mode], warmupMs, latencies);
    const runs = Object.fromEntries(modes.map((m) => [m, []]));
    for (let round = 0; round < rounds; round++) {
      // Round r starts with mode r (mod n): every mode goes first equally often.
      const order = modes.map((_, i) => modes[(i + round) % modes.length]);
      for (const mode of order) {
        gc();
        const r = await load(clients[mode], durationMs, latencies);
        const sample = latencies.subarray(0, Math.min(r.calls, latencies.length));
        runs[mode].push({
          round,
          position: order.indexOf(mode),
          calls: r.calls,
          errors: r.errors,
          first_error: r.firstError,
          rps: (r.calls * 1000) / r.elapsedMs,
          p99_ms: percentile(sample, 99),
          cpu_us_per_call: r.cpuUs / Math.max(1, r.calls + r.errors),
        });
      }
    }
    const summary = {};
    for (const mode of modes) {
      const list = runs[mode];
      summary[mode] = {
        rps: median(list.map((r) => r.rps)),
        p99_ms: median(list.map((r) => r.p99_ms)),
        cpu_us_per_call: median(list.map((r) => r.cpu_us_per_call)),
        errors: list.reduce((sum, r) => sum + r.errors, 0),
        first_error: list.find((r) => r.first_error)?.first_error,
      };
    }
    process.stdout.write(`${JSON.stringify({ summary, runs })}\n`);
  } finally {
    await close();
  }
}

await main();
process.exit(0);
