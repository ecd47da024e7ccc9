import type { DiscoveryOptions } from '../core/config/discovery-options.js';
import { resolveDiscoveryConfig, type ResolvedDiscoveryConfig } from '../core/config/resolve-discovery-config.js';
import { ConfigurationError } from '../core/errors.js';
import type { ServiceClientOptions } from '../client/client-options.js';
import type { ServiceClient } from '../client/service-client.js';
import { createRegistry } from '../registry/create-registry.js';
import type { DiscoveryLogger, Registry } from '../registry/registry.interface.js';
import { Discovery, type InstanceOptions } from './discovery.js';
import type { ServiceRegistry } from './service-registry.js';

type Config = DiscoveryOptions | ResolvedDiscoveryConfig;

/**
 * Framework-free entry points, named after the seed's factory functions.
 *
 * @example
 * const { registry, client } = await DiscoveryFactory.registerAndDiscover('local', [], 'greeter', { port: 50051 });
 */
export const DiscoveryFactory = {
  /** Opens the backend a configuration names. */
  async createBackend(config: Config, logger?: DiscoveryLogger): Promise<Registry> {
    return createRegistry(resolveDiscoveryConfig(config), logger);
  },

  /**
   * A client for `service` (default: the configuration's `service_type`).
   * Closing the client closes the backend it opened.
   */
  async createDiscover(
    config: Config,
    service?: string | ServiceClientOptions,
    logger?: DiscoveryLogger,
  ): Promise<ServiceClient> {
    const discovery = await Discovery.create(config, { logger });
    const options = typeof service === 'object' ? service : { name: service ?? discovery.config.serviceType ?? '' };
    if (!options.name) {
      await discovery.close();
      throw ConfigurationError.single('backend_config.service_type', undefined, 'a service name to discover');
    }
    return ownedClient(discovery, options);
  },

  /**
   * A client for `service` on `backend` with default settings; `endpoints`
   * are the backend's addresses (etcd endpoints, the Consul URL, DNS or static
   * addresses, the local directory, the xDS server).
   */
  async createWithDefaults(
    backend: DiscoveryOptions['backend'],
    endpoints: string[],
    service: string,
  ): Promise<ServiceClient> {
    return DiscoveryFactory.createDiscover(defaultsFor(backend, endpoints, service), service);
  },

  /**
   * Registers `instance` as `service` and returns its ServiceRegistry with a
   * client of the same service. `registry.deregister()` then
   * `client.close()` undo it.
   */
  async registerAndDiscover(
    backend: DiscoveryOptions['backend'],
    endpoints: string[],
    service: string,
    instance: InstanceOptions,
  ): Promise<{ registry: ServiceRegistry; client: ServiceClient }> {
    const discovery = await Discovery.create(defaultsFor(backend, endpoints, service));
    try {
      const self = discovery.self(discovery.instanceFor({ ...instance, service }));
      await self.register();
      return { registry: self, client: ownedClient(discovery, { name: service }) };
    } catch (error) {
      await discovery.close();
      throw error;
    }
  },
};

function defaultsFor(
  backend: DiscoveryOptions['backend'] = 'local',
  endpoints: string[],
  service: string,
): DiscoveryOptions {
  const b = backend === 'xds' ? 'mesh' : backend;
  const first = endpoints[0];
  const backendConfig: Record<string, unknown> = { serviceType: service };
  if (b === 'etcd' && endpoints.length) backendConfig.endpoints = endpoints;
  if (b === 'consul' && first) backendConfig.url = first;
  if ((b === 'dns' || b === 'static') && endpoints.length) backendConfig.addresses = endpoints;
  if (b === 'local' && first) backendConfig.dir = first;
  if (b === 'mesh' && first) backendConfig.xdsServer = first;
  return { backend, backendConfig: backendConfig };
}

/** A client whose close() also closes the Discovery (and backend) made for it. */
function ownedClient(discovery: Discovery, options: ServiceClientOptions): ServiceClient {
  const client = discovery.client(options);
  const close = client.close.bind(client);
  client.close = async () => {
    await close();
    await discovery.close();
  };
  return client;
}
