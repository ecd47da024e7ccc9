// A separate process that registers one instance in a `local` registry
// folder and keeps heart-beating until it is stopped (SIGTERM: deregisters
// and exits) or killed (SIGKILL: leaves its file to expire).
// Usage: node register-instance.mjs '{"dir":"...","service":"orders","id":"a","address":"127.0.0.1:5001","ttlMs":2000,"heartbeatMs":500}'
// It loads the compiled library (npm run build) because plain node cannot import .ts.
import { LocalRegistry } from '../../../dist/registry/local/local.registry.js';
import { createServiceInstance } from '../../../dist/core/service-instance.js';

const spec = JSON.parse(process.argv[2] ?? '{}');
const registry = new LocalRegistry({ dir: spec.dir });
// Heartbeat timers are unref'd; this keeps the process alive until a signal.
const keepAlive = setInterval(() => undefined, 1 << 30);

async function stop(code) {
  clearInterval(keepAlive);
  await registry.close().catch(() => undefined);
  process.exit(code);
}

process.on('SIGTERM', () => void stop(0));

try {
  const instance = createServiceInstance({
    service: spec.service,
    id: spec.id,
    address: spec.address,
    namespace: spec.namespace,
    version: spec.version,
    tags: spec.tags,
  });
  const registration = await registry.register(instance, { ttlMs: spec.ttlMs, heartbeatMs: spec.heartbeatMs });
  registration.events$.subscribe((event) => console.log(`EVENT ${event.type}`));
  console.log(`REGISTERED ${instance.id}`);
} catch (error) {
  console.log(`REGISTER-FAILED ${error?.name}: ${error?.message}`);
  await stop(1);
}
