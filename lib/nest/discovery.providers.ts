import type { Provider } from '@nestjs/common';
import { loadDiscoveryConfig } from '../core/config/load-discovery-config.js';
import { ConfigurationError } from '../core/errors.js';
import { Discovery } from '../discovery/discovery.js';
import type { ServiceRegistry } from '../discovery/service-registry.js';
import type { ServiceClientOptions } from '../grpc/service-client.js';
import { DISCOVERY_INSTANCE, DISCOVERY_MODULE_OPTIONS, SERVICE_REGISTRY } from './discovery.constants.js';
import { nestDiscoveryLogger } from './discovery-logger.js';
import type {
  DiscoveryModuleAsyncOptions,
  DiscoveryModuleOptions,
  DiscoveryOptionsFactory,
} from './interfaces/discovery-module-options.interface.js';
import { getServiceClientToken } from './utils/get-service-client-token.util.js';

/** Keys of DiscoveryModuleOptions that are not discovery configuration. */
const MODULE_ONLY_KEYS = [
  'config',
  'instance',
  'clients',
  'registry',
  'logger',
  'strategies',
  'isGlobal',
  'retry',
  'firstSetTimeoutMs',
  'metrics',
  'admin',
] as const;

/** Builds the Discovery for the module; any invalid option fails bootstrap before anything opens. */
export async function createDiscovery(options: DiscoveryModuleOptions): Promise<Discovery> {
  if (!options || typeof options !== 'object') {
    throw ConfigurationError.single('', options, 'an options object for DiscoveryModule');
  }
  const inline: Record<string, unknown> = { ...options };
  for (const key of MODULE_ONLY_KEYS) delete inline[key];
  let config: unknown = inline;
  if (options.config !== undefined) {
    if (Object.keys(inline).length) {
      throw ConfigurationError.single(
        Object.keys(inline)[0],
        undefined,
        'nothing besides `config` (the file holds the discovery settings)',
      );
    }
    config = typeof options.config === 'string' ? await loadDiscoveryConfig(options.config) : options.config;
  }
  const discovery = await Discovery.create(config as DiscoveryModuleOptions, {
    registry: options.registry,
    logger: options.logger ?? nestDiscoveryLogger(),
    strategies: options.strategies,
    retry: options.retry,
    firstSetTimeoutMs: options.firstSetTimeoutMs,
  });
  // prom-client is optional: loaded only when metrics are asked for (an error here fails bootstrap with its reason).
  if (options.metrics) {
    try {
      discovery.enableMetrics(options.metrics === true ? {} : options.metrics);
    } catch (error) {
      await discovery.close();
      throw error;
    }
  }
  // Importing the module makes discovery:///<service> targets work in every grpc-js client (ClientsModule included).
  return discovery.serveGrpcTargets();
}

export function createServiceRegistry(discovery: Discovery, options: DiscoveryModuleOptions): ServiceRegistry {
  const instance = options.instance ? discovery.instanceFor(options.instance) : undefined;
  return discovery.self(instance);
}

export function createCoreProviders(): Provider[] {
  return [
    { provide: DISCOVERY_INSTANCE, useFactory: createDiscovery, inject: [DISCOVERY_MODULE_OPTIONS] },
    {
      provide: SERVICE_REGISTRY,
      useFactory: createServiceRegistry,
      inject: [DISCOVERY_INSTANCE, DISCOVERY_MODULE_OPTIONS],
    },
  ];
}

export function createOptionsProvider(options: DiscoveryModuleOptions): Provider {
  return { provide: DISCOVERY_MODULE_OPTIONS, useValue: options };
}

export function createAsyncOptionsProviders(options: DiscoveryModuleAsyncOptions): Provider[] {
  if (options.useFactory) {
    return [{ provide: DISCOVERY_MODULE_OPTIONS, useFactory: options.useFactory, inject: options.inject ?? [] }];
  }
  const factoryClass = options.useClass ?? options.useExisting;
  if (!factoryClass) {
    throw ConfigurationError.single('forRootAsync', undefined, 'one of useFactory, useClass or useExisting');
  }
  const providers: Provider[] = [
    {
      provide: DISCOVERY_MODULE_OPTIONS,
      useFactory: (factory: DiscoveryOptionsFactory) => factory.createDiscoveryOptions(),
      inject: [factoryClass],
    },
  ];
  if (options.useClass) providers.push({ provide: options.useClass, useClass: options.useClass });
  return providers;
}

/** One provider per client; several modules asking for the same service share one client. */
export function createClientProviders(clients: Array<string | ServiceClientOptions>): Provider[] {
  const seen = new Map<string, Provider>();
  for (const entry of clients) {
    const options: ServiceClientOptions = typeof entry === 'string' ? { name: entry } : entry;
    if (!options || typeof options.name !== 'string' || !options.name) {
      throw ConfigurationError.single('clients[].name', options?.name, 'a service name');
    }
    // Explicit options win over a bare name recorded by the decorator.
    if (seen.has(options.name) && typeof entry === 'string') continue;
    seen.set(options.name, {
      provide: getServiceClientToken(options.name),
      useFactory: (discovery: Discovery) => discovery.client(options),
      inject: [DISCOVERY_INSTANCE],
    });
  }
  return [...seen.values()];
}
