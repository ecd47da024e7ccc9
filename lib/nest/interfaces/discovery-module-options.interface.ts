import type { InjectionToken, ModuleMetadata, OptionalFactoryDependency, Type } from '@nestjs/common';
import type { BalancingStrategy } from '../../balancing/picker.js';
import type { DiscoveryOptions } from '../../core/config/discovery-options.js';
import type { ResolvedDiscoveryConfig } from '../../core/config/resolve-discovery-config.js';
import type { InstanceOptions } from '../../discovery/discovery.js';
import type { ServiceClientOptions } from '../../client/client-options.js';
import type { RetryOptions } from '../../client/retry-policy.js';
import type { DiscoveryMetricsOptions } from '../../health/discovery-metrics.js';
import type { DiscoveryLogger, Registry } from '../../registry/registry.interface.js';

/**
 * Options of `DiscoveryModule.forRoot()`: the discovery configuration
 * (camelCase, or a loaded/`config` file) plus what the Nest app adds.
 *
 * @example
 * DiscoveryModule.forRoot({ backend: 'local', instance: { service: 'greeter', port: 50051 } })
 */
export interface DiscoveryModuleOptions extends DiscoveryOptions {
  /** A configuration file path (.toml/.json/.yaml) or a config from loadDiscoveryConfig(); replaces the inline keys. */
  config?: string | ResolvedDiscoveryConfig;
  /** This app's own instance; omit for client-only apps. `host` defaults to 127.0.0.1. */
  instance?: InstanceOptions;
  /** Per-service client options (and clients to provide), besides those named by @InjectServiceClient. */
  clients?: Array<string | ServiceClientOptions>;
  /** A ready-made registry (e.g. a shared MemoryRegistry in tests); the module does not close it. */
  registry?: Registry;
  /** Where switchyard logs; default Nest's Logger with context `Discovery`. */
  logger?: DiscoveryLogger;
  /** User strategies, selectable by name. */
  strategies?: BalancingStrategy[];
  /** Default true: clients and the registry are injectable everywhere. */
  isGlobal?: boolean;
  /**
   * Opt-in admin view on the app's HTTP server: `GET <path>` (a page) and
   * `GET <path>/state.json`. Holds no secrets. Off by default.
   */
  admin?: { path: string; refreshMs?: number };
  /** Default retries of every service (per-service `retry` in client options wins); `false` disables. */
  retry?: RetryOptions | false;
  /** How long `discovery:///` channels and getChannel() wait for the first endpoint set, ms. Default 10 000. */
  firstSetTimeoutMs?: number;
  /** Record prom-client metrics (optional dependency): `true` for prom-client's global registry, or { register, prefix }. */
  metrics?: boolean | DiscoveryMetricsOptions;
}

/** A class that makes the options (for `useClass` / `useExisting`). */
export interface DiscoveryOptionsFactory {
  createDiscoveryOptions(): DiscoveryModuleOptions | Promise<DiscoveryModuleOptions>;
}

/**
 * Options of `DiscoveryModule.forRootAsync()`.
 *
 * @example
 * DiscoveryModule.forRootAsync({ imports: [ConfigModule], inject: [ConfigService], useFactory: (c: ConfigService) => ({ backend: c.get('DISCOVERY_BACKEND') }) })
 */
export interface DiscoveryModuleAsyncOptions extends Pick<ModuleMetadata, 'imports'> {
  useFactory?: (...args: any[]) => DiscoveryModuleOptions | Promise<DiscoveryModuleOptions>;
  inject?: Array<InjectionToken | OptionalFactoryDependency>;
  useClass?: Type<DiscoveryOptionsFactory>;
  useExisting?: Type<DiscoveryOptionsFactory>;
  /**
   * Clients to provide, known when the module is defined (names or options).
   * Options may also come back from the factory as `clients`.
   */
  clients?: Array<string | ServiceClientOptions>;
  /** Default true: clients and the registry are injectable everywhere. */
  isGlobal?: boolean;
}
