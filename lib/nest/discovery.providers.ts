import type { Provider } from '@nestjs/common';
import { ModulesContainer } from '@nestjs/core';
import { loadDiscoveryConfig } from '../core/config/load-discovery-config.js';
import { ConfigurationError } from '../core/errors.js';
import type { ServiceClientOptions } from '../client/client-options.js';
import type { ServiceClient } from '../client/service-client.js';
import { Discovery } from '../discovery/discovery.js';
import type { ClientDeclaration } from '../discovery/client-catalog.js';
import type { ServiceRegistry } from '../discovery/service-registry.js';
import { DISCOVERY_INSTANCE, DISCOVERY_MODULE_OPTIONS, SERVICE_REGISTRY } from './discovery.constants.js';
import { nestDiscoveryLogger } from './discovery-logger.js';
import type {
  DiscoveryModuleAsyncOptions,
  DiscoveryModuleOptions,
  DiscoveryOptionsFactory,
} from './interfaces/discovery-module-options.interface.js';
import { getServiceClientToken } from './utils/get-service-client-token.util.js';
import { offerToClientProxies } from './utils/offer-to-client-proxies.js';
import { clientsUsedBy, featureDeclarations, FeatureClients } from './utils/requested-clients.js';

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

/**
 * Builds the app's Discovery; any invalid option, and two different option
 * sets for one service, fail bootstrap before anything stays open.
 */
export async function createDiscovery(
  options: DiscoveryModuleOptions,
  container?: ModulesContainer,
): Promise<Discovery> {
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
  const declarations: ClientDeclaration[] = [
    ...(options.clients ?? []).map((entry) => ({
      options: typeof entry === 'string' ? { name: entry } : entry,
      source: 'DiscoveryModule.forRoot*({ clients })',
    })),
    ...(container ? featureDeclarations(container) : []),
  ];
  const discovery = await Discovery.create(config as DiscoveryModuleOptions, {
    registry: options.registry,
    logger: options.logger ?? nestDiscoveryLogger(),
    strategies: options.strategies,
    retry: options.retry,
    firstSetTimeoutMs: options.firstSetTimeoutMs,
  });
  try {
    discovery.declareClients(declarations);
    // prom-client is optional: loaded only when metrics are asked for (an error here fails bootstrap with its reason).
    if (options.metrics) discovery.enableMetrics(options.metrics === true ? {} : options.metrics);
  } catch (error) {
    await discovery.close();
    throw error;
  }
  // ClientsModule's DiscoveryClientProxy instances of this app find their clients here.
  offerToClientProxies(discovery, container);
  // Importing the module makes discovery:///<service> targets work in every grpc-js client (ClientsModule included).
  return discovery.serveGrpcTargets();
}

export function createServiceRegistry(discovery: Discovery, options: DiscoveryModuleOptions): ServiceRegistry {
  const instance = options.instance ? discovery.instanceFor(options.instance) : undefined;
  return discovery.self(instance);
}

export function createCoreProviders(): Provider[] {
  return [
    {
      provide: DISCOVERY_INSTANCE,
      useFactory: createDiscovery,
      inject: [DISCOVERY_MODULE_OPTIONS, ModulesContainer],
    },
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

/** Validates one `clients` / `forFeature` entry and returns its options. */
export function clientOptionsOf(entry: string | ServiceClientOptions, path: string): ServiceClientOptions {
  const options: ServiceClientOptions = typeof entry === 'string' ? { name: entry } : entry;
  if (!options || typeof options.name !== 'string' || !options.name) {
    throw ConfigurationError.single(`${path}.name`, options?.name, 'a service name');
  }
  return options;
}

/**
 * One provider per service name. Every provider of a name, in the root
 * module or a feature module, resolves to the same client: the one the
 * Discovery holds for that name with its declared options. A name that only
 * some other app's classes inject (decorators are process-wide) gets no
 * client in this app.
 */
export function createClientProviders(names: Iterable<string>, always: ReadonlySet<string> = new Set()): Provider[] {
  const providers = new Map<string, Provider>();
  for (const name of names) {
    if (providers.has(name)) continue;
    providers.set(name, {
      provide: getServiceClientToken(name),
      useFactory: (discovery: Discovery, container: ModulesContainer): ServiceClient | undefined =>
        always.has(name) || clientsUsedBy(container).has(name) ? discovery.clientFor(name) : undefined,
      inject: [DISCOVERY_INSTANCE, ModulesContainer],
    });
  }
  return [...providers.values()];
}

/** The provider that carries a forFeature() call's options to the root module. */
export function createFeatureDeclarationProvider(clients: ServiceClientOptions[]): Provider {
  return { provide: Symbol('SWITCHYARD:FEATURE_CLIENTS'), useValue: new FeatureClients(clients) };
}
