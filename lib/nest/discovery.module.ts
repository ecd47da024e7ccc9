import { Module, type DynamicModule, type Provider } from '@nestjs/common';
import type { ServiceClientOptions } from '../client/client-options.js';
import { Discovery } from '../discovery/discovery.js';
import { DISCOVERY_INSTANCE, DISCOVERY_MODULE_OPTIONS, SERVICE_REGISTRY } from './discovery.constants.js';
import { DiscoveryLifecycle } from './discovery-lifecycle.service.js';
import { DiscoveryAdmin } from './admin/discovery-admin.service.js';
import { DiscoveryHealthIndicator } from './health/discovery.health.js';
import { GrpcHealthService } from '../health/grpc-health.service.js';
import {
  clientOptionsOf,
  createAsyncOptionsProviders,
  createClientProviders,
  createCoreProviders,
  createFeatureDeclarationProvider,
  createOptionsProvider,
} from './discovery.providers.js';
import type {
  DiscoveryModuleAsyncOptions,
  DiscoveryModuleOptions,
} from './interfaces/discovery-module-options.interface.js';
import { getServiceClientToken } from './utils/get-service-client-token.util.js';
import { requestedClients } from './utils/requested-clients.js';

/**
 * Service registration, discovery and client-side load balancing for Nest.
 * (Exported as `ServiceDiscoveryModule` too: `@nestjs/core` has a
 * `DiscoveryModule` of its own.)
 *
 * @example
 * @Module({ imports: [DiscoveryModule.forRoot({ backend: 'local', instance: { service: 'orders', port: 50051 } })] })
 * export class AppModule {}
 */
@Module({})
export class DiscoveryModule {
  /** Configures the module from options known up front. */
  static forRoot(options: DiscoveryModuleOptions = {}): DynamicModule {
    const declared = (options.clients ?? []).map((c, i) => clientOptionsOf(c, `clients[${i}]`).name);
    const clients = createClientProviders([...declared, ...requestedClients()], new Set(declared));
    return DiscoveryModule.root([createOptionsProvider(options)], clients, options.isGlobal);
  }

  /** Configures the module from a factory (ConfigService, a file, ...). */
  static forRootAsync(options: DiscoveryModuleAsyncOptions): DynamicModule {
    const declared = (options.clients ?? []).map((c, i) => clientOptionsOf(c, `clients[${i}]`).name);
    const clients = createClientProviders([...declared, ...requestedClients()], new Set(declared));
    const root = DiscoveryModule.root(createAsyncOptionsProviders(options), clients, options.isGlobal);
    return { ...root, imports: options.imports ?? [] };
  }

  /**
   * Declares per-service options (strategy, version, tags, zone, retry,
   * proto, credentials) and provides those clients in the importing module.
   * The options reach every injection of the service in the app, whatever
   * the import order; two different option sets for one service are a
   * bootstrap error naming both.
   *
   * @example
   * DiscoveryModule.forFeature([{ name: 'orders', loadBalance: 'least_connections', version: '^2.0.0' }])
   */
  static forFeature(clients: Array<string | ServiceClientOptions>): DynamicModule {
    const options = clients.map((c, i) => clientOptionsOf(c, `forFeature[${i}]`));
    const names = options.map((o) => o.name);
    const providers = [createFeatureDeclarationProvider(options), ...createClientProviders(names, new Set(names))];
    return { module: DiscoveryFeatureModule, providers, exports: names.map(getServiceClientToken) };
  }

  private static root(optionProviders: Provider[], clients: Provider[], isGlobal = true): DynamicModule {
    // Health: the app's own grpc.health.v1 service and the Terminus indicator (Terminus itself loads only when used).
    const health: Provider[] = [
      { provide: GrpcHealthService, useFactory: () => new GrpcHealthService() },
      DiscoveryHealthIndicator,
    ];
    // The Discovery by its class too: `constructor(private readonly discovery: Discovery)` (e.g. for httpDispatcher()).
    const byClass: Provider = { provide: Discovery, useExisting: DISCOVERY_INSTANCE };
    const exported = [
      Discovery,
      DISCOVERY_INSTANCE,
      SERVICE_REGISTRY,
      DISCOVERY_MODULE_OPTIONS,
      GrpcHealthService,
      DiscoveryHealthIndicator,
      ...clients.map((p) => (p as { provide: string }).provide),
    ];
    return {
      module: DiscoveryModule,
      global: isGlobal,
      providers: [
        ...optionProviders,
        ...createCoreProviders(),
        byClass,
        ...health,
        DiscoveryLifecycle,
        DiscoveryAdmin,
        ...clients,
      ],
      exports: exported,
    };
  }
}

/** Holder module of `forFeature` clients. */
@Module({})
export class DiscoveryFeatureModule {}

/** Alias of {@link DiscoveryModule} that does not clash with `@nestjs/core`'s DiscoveryModule. */
export const ServiceDiscoveryModule = DiscoveryModule;
