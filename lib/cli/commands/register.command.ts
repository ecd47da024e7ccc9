import { ConfigurationError } from '../../core/errors.js';
import { createServiceInstance } from '../../core/service-instance.js';
import { ServiceRegistry, type ServiceRegistryEvent } from '../../discovery/service-registry.js';
import { numberOption, tagOptions } from '../cli-arguments.js';
import { CommandFailure, EXIT_OK, EXIT_USAGE, UsageError, formatSeconds } from '../cli-errors.js';
import { describeInstance, instanceView } from '../cli-output.js';
import type { CliSession } from '../cli-session.js';
import { onInterrupt } from '../interrupt.js';

/**
 * `switchyard register --name <service> --address <host:port>`: registers
 * a manual instance, keeps it alive with the backend's heartbeats (and
 * restores it after a loss) while the command runs; Ctrl-C deregisters it
 * and exits 0.
 *
 * @example
 * await registerCommand(session); // switchyard register --name orders --address 127.0.0.1:50051 --ttl 6
 */
export async function registerCommand(session: CliSession): Promise<number> {
  const { options } = session.invocation;
  const { out, config, registry } = session;
  const service = options.name ?? config.serviceType;
  if (!service)
    throw new UsageError("'register' needs --name <service> (or backend_config.service_type in the configuration)");
  if (!options.address) throw new UsageError("'register' needs --address <host:port>");
  if (registry.readOnly)
    throw new CommandFailure(
      `the ${registry.backend} backend is read-only: nothing can be registered in it`,
      EXIT_USAGE,
    );
  const instance = createServiceInstance({
    service,
    address: options.address,
    id: options.id,
    namespace: session.namespace,
    version: options.version ?? config.version.default,
    tags: tagOptions(options.tag),
    metadata: { zone: options.zone, region: options.region },
    weight: numberOption(options.weight, 'weight') ?? registry.defaultWeight,
  });
  const timing = { ttlMs: config.registration.ttlMs, heartbeatMs: config.registration.heartbeatMs };
  const self = new ServiceRegistry(registry, instance, timing, session.logger);
  const interrupt = onInterrupt();
  const emit = (event: string, fields: Record<string, unknown>, text: string) => {
    if (out.options.json) out.json({ at: new Date().toISOString(), event, id: instance.id, service, ...fields }, true);
    else out.line(text);
  };
  const events = self.events$.subscribe((event: ServiceRegistryEvent) => {
    if (event.type === 'lost') emit('lost', { reason: event.reason }, `lost ${instance.id}: ${event.reason}`);
    else if (event.type === 'restored') emit('restored', {}, `restored ${instance.id}`);
  });
  try {
    out.error(`registering ${describeInstance(instance)} in ${session.where}...`);
    const outcome = await Promise.race([
      self.register().then(() => 'registered' as const),
      interrupt.signalled.then(() => 'interrupted' as const),
    ]);
    if (outcome === 'interrupted' || self.state !== 'registered') {
      await self.deregister();
      out.error(`stopped before '${instance.id}' was registered`);
      return EXIT_OK;
    }
    emit(
      'registered',
      {
        backend: registry.backend,
        target: session.admin.target,
        ttlSeconds: timing.ttlMs / 1000,
        heartbeatSeconds: timing.heartbeatMs / 1000,
        instance: instanceView(instance),
      },
      `registered ${describeInstance(instance)} in ${session.where} (ttl ${formatSeconds(timing.ttlMs)}, heartbeat every ${formatSeconds(timing.heartbeatMs)}); Ctrl-C to deregister`,
    );
    await interrupt.signalled;
    await self.deregister();
    emit('deregistered', {}, `deregistered ${instance.id}`);
    return EXIT_OK;
  } catch (error) {
    if (error instanceof UsageError || error instanceof CommandFailure || error instanceof ConfigurationError)
      throw error;
    throw new CommandFailure(
      `cannot register '${instance.id}' in ${session.where}: ${(error as Error).message}`,
      undefined,
      { cause: error },
    );
  } finally {
    events.unsubscribe();
    interrupt.dispose();
    await self.close().catch(() => undefined);
  }
}
