// One service instance in its own process, as production runs it: a real
// gRPC Greeter server that (optionally) registers itself through
// switchyard, and on SIGTERM deregisters, drains, then stops serving.
// Tests SIGKILL it (crash), SIGSTOP it (stall) or SIGTERM it (rolling restart).
// Env: PORT, ID, SERVICE, DISCOVERY (JSON options; empty = do not register), DRAIN_MS.
// Prints READY once it serves, REGISTERED once registered, EVENT <type> for registration events.
// It loads the compiled library (npm run build) because plain node cannot import .ts.
import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { join } from 'node:path';
import { Discovery } from '../../../dist/discovery/discovery.js';

const proto = join(import.meta.dirname, '../../../sample/01-greeter/protos/greeter.proto');
const pkg = grpc.loadPackageDefinition(loadSync(proto, { keepCase: true, defaults: true }));
const id = process.env.ID ?? 'instance';
const port = Number(process.env.PORT);
const drainMs = Number(process.env.DRAIN_MS ?? 0);
const options = process.env.DISCOVERY ? JSON.parse(process.env.DISCOVERY) : undefined;
const logger = {
  log: () => undefined,
  warn: (m) => console.log(`WARN ${m}`),
  error: (m) => console.log(`ERROR ${m}`),
};

const server = new grpc.Server({ 'grpc.so_reuseport': 0 });
server.addService(pkg.greeter.Greeter.service, {
  SayHello: (call, callback) => callback(null, { message: `Hello, ${call.request.name}!`, instance: id }),
});

// grpc.health.v1 Check, hand-encoded (HealthCheckResponse is one enum field:
// 1 = SERVING, 2 = NOT_SERVING). SIGUSR1 turns it NOT_SERVING, SIGUSR2 SERVING
// again, so tests can make instances unhealthy while they keep answering calls.
let servingStatus = 1;
const identity = (buffer) => buffer;
server.addService(
  {
    Check: {
      path: '/grpc.health.v1.Health/Check',
      requestStream: false,
      responseStream: false,
      requestSerialize: identity,
      requestDeserialize: identity,
      responseSerialize: identity,
      responseDeserialize: identity,
    },
  },
  { Check: (_call, callback) => callback(null, Buffer.from([0x08, servingStatus])) },
);
process.on('SIGUSR1', () => {
  servingStatus = 2;
  console.log('HEALTH NOT_SERVING');
});
process.on('SIGUSR2', () => {
  servingStatus = 1;
  console.log('HEALTH SERVING');
});
await new Promise((resolve, reject) =>
  server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (error) =>
    error ? reject(error) : resolve(),
  ),
).catch((error) => {
  console.log(`BIND-FAILED ${error.message}`);
  process.exit(1);
});
console.log('READY');

let discovery;
let self;
let stopping = false;
process.on('SIGTERM', async () => {
  if (stopping) return;
  stopping = true;
  // Leave the registry first, keep serving while clients notice, then stop.
  await self?.deregister().catch(() => undefined);
  if (drainMs) await new Promise((resolve) => setTimeout(resolve, drainMs));
  await new Promise((resolve) => server.tryShutdown(resolve));
  await discovery?.close().catch(() => undefined);
  process.exit(0);
});

if (options) {
  discovery = await Discovery.create(options, { logger });
  self = discovery.self(discovery.instanceFor({ service: process.env.SERVICE, id, address: `127.0.0.1:${port}` }));
  self.events$.subscribe((event) => console.log(`EVENT ${event.type}`));
  try {
    await self.register();
  } catch (error) {
    console.log(`REGISTER-FAILED ${error?.name}: ${error?.message}`);
    process.exit(1);
  }
  console.log('REGISTERED');
}

// Exit with the test run: a parent that died leaves no orphan serving.
const parent = process.ppid;
setInterval(() => process.ppid !== parent && process.exit(0), 500);
