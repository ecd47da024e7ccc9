import { Module, type DynamicModule, type Provider } from '@nestjs/common';
import type { ServiceClientOptions } from '../grpc/service-client.js';
import { DISCOVERY_INSTANCE, DISCOVERY_MODULE_OPTIONS, SERVICE_REGISTRY } from './discovery.constants.js';
import { DiscoveryLifecycle } from './discovery-lifecycle.service.js';
import { DiscoveryAdmin } from './admin/discovery-admin.service.js';
import { DiscoveryHealthIndicator } from './health/discovery.health.js';
import { GrpcHealthService } from '../health/grpc-health.service.js';
import {
  createAsyncOptionsProviders,
  createClientProviders,
  createCoreProviders,
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
    const clients = createClientProviders([...requestedClients(), ...(options.clients ?? [])]);
    return DiscoveryModule.root([createOptionsProvider(options)], clients, options.isGlobal);
  }

  /** Configures the module from a factory (ConfigService, a file, ...). */
  static forRootAsync(options: DiscoveryModuleAsyncOptions): DynamicModule {
    const clients = createClientProviders([...requestedClients(), ...(options.clients ?? [])]);
    const root = DiscoveryModule.root(createAsyncOptionsProviders(options), clients, options.isGlobal);
    return { ...root, imports: options.imports ?? [] };
  }

  /**
   * Provides clients for these services in the importing module, with
   * per-service options (strategy, version, tags, zone).
   *
   * @example
   * DiscoveryModule.forFeature([{ name: 'orders', loadBalance: 'least_connections', version: '^2.0.0' }])
   */
  static forFeature(clients: Array<string | ServiceClientOptions>): DynamicModule {
    const providers = createClientProviders(clients);
    return {
      module: DiscoveryFeatureModule,
      providers,
      exports: providers.map((p) => (p as { provide: string }).provide),
    };
  }

  private static root(optionProviders: Provider[], clients: Provider[], isGlobal = true): DynamicModule {
    // Health: the app's own grpc.health.v1 service and the Terminus indicator (Terminus itself loads only when used).
    const health: Provider[] = [
      { provide: GrpcHealthService, useFactory: () => new GrpcHealthService() },
      DiscoveryHealthIndicator,
    ];
    const exported = [
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

export { getServiceClientToken };
