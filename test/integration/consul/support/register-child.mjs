// A separate process that registers one instance through the built
// switchyard (dist/) and deregisters on SIGTERM. Input: SWITCHYARD_CHILD
// as JSON { url, instance, timing }. Prints REGISTERED / DEREGISTERED.
import { createRegistry } from '../../../../dist/registry/consul/consul.registry.js';
import { resolveDiscoveryConfig } from '../../../../dist/core/config/resolve-discovery-config.js';
import { createServiceInstance } from '../../../../dist/core/service-instance.js';

const spec = JSON.parse(process.env.SWITCHYARD_CHILD ?? '{}');
const config = resolveDiscoveryConfig({ backend: 'consul', backendConfig: { url: spec.url } });
const logger = { log: (m) => console.log(m), warn: (m) => console.error(m), error: (m) => console.error(m) };
const registry = await createRegistry({ config, logger });
const registration = await registry.register(createServiceInstance(spec.instance), spec.timing);
console.log(`REGISTERED ${registration.instance.id}`);

// The heartbeat timer is unref'd; this keeps the process alive until told to stop.
const keepAlive = setInterval(() => undefined, 60_000);
process.once('SIGTERM', async () => {
  await registration.deregister();
  await registry.close();
  console.log('DEREGISTERED');
  clearInterval(keepAlive);
});
