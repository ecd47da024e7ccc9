import { compileQuery, type DiscoveryQuery } from '../core/discovery-query.js';
import type { DiscoveryOptions } from '../core/config/discovery-options.js';
import { resolveDiscoveryConfig, type ResolvedDiscoveryConfig } from '../core/config/resolve-discovery-config.js';
import { ClosedError, ConfigurationError } from '../core/errors.js';
import { createServiceInstance, type ServiceInstance, type ServiceInstanceInput } from '../core/service-instance.js';
import type { BalancingStrategy } from '../balancing/picker.js';
import { getStrategy, listStrategies, registerStrategy } from '../balancing/strategy-registry.js';
import { createRegistry } from '../registry/create-registry.js';
import { consoleLogger, type DiscoveryLogger, type Registry } from '../registry/registry.interface.js';
import { ServiceClient, type ServiceClientOptions } from '../grpc/service-client.js';
import { discoveryTargets, type DiscoveryTarget } from '../grpc/discovery-targets.js';
import { installGrpcIntegration } from '../grpc/install-grpc-integration.js';
import { resolveRetryOptions, type ResolvedRetryOptions, type RetryOptions } from '../grpc/retry-policy.js';
import { ServiceRegistry } from './service-registry.js';

/** The app's own instance: everything optional but the port (or address). */
export type InstanceOptions = Partial<ServiceInstanceInput> & { port?: number; address?: string };

/** What {@link Discovery.create} takes besides the configuration. */
export interface DiscoveryExtras {
  /** Use this registry instead of creating one from `backend` (it is not closed by the Discovery). */
  registry?: Registry;
  logger?: DiscoveryLogger;
  /** User strategies, selectable by name in `load_balance` / `loadBalance`. */
  strategies?: BalancingStrategy[];
  /** Random source for pickers (deterministic tests). */
  random?: () => number;
  /** Default retries for every service (per-service `retry` in client options wins). */
  retry?: RetryOptions | false;
  /** How long a `discovery:///` channel or getChannel() waits for the first endpoint set, ms. Default 10 000. */
  firstSetTimeoutMs?: number;
}

let discoverySequence = 0;

/**
 * One configured backend and everything built on it: service clients
 * (cached per query) and the app's own registration. The Nest module is a
 * thin adapter over this class; plain Node programs use it directly.
 *
 * @example
 * const discovery = await Discovery.create({ backend: 'local' });
 * const orders = discovery.client('orders');
 * await orders.ready();
 * await discovery.close();
 */
export class Discovery implements DiscoveryTarget {
  private readonly clients = new Map<string, ServiceClient>();
  /** The first client made for each service name: what `discovery:///<name>` channels use. */
  private readonly byName = new Map<string, ServiceClient>();
  private readonly selves = new Set<ServiceRegistry>();
  private readonly targetRemovals: Array<() => void> = [];
  private closed = false;
  /** Unique authority of this Discovery in `discovery://<id>/<service>` targets. */
  readonly id = `d${++discoverySequence}`;
  readonly retry: ResolvedRetryOptions;
  readonly firstSetTimeoutMs: number;

  private constructor(
    readonly config: ResolvedDiscoveryConfig,
    readonly registry: Registry,
    readonly logger: DiscoveryLogger,
    private readonly ownsRegistry: boolean,
    private readonly extras: DiscoveryExtras,
  ) {
    this.retry = resolveRetryOptions(extras.retry);
    this.firstSetTimeoutMs = extras.firstSetTimeoutMs ?? 10_000;
  }

  /** Header carrying the consistent-hash key on grpc calls. */
  get hashHeader(): string {
    return this.config.hashHeader;
  }

  /** Validates the configuration (throws ConfigurationError before opening anything) and opens the backend. */
  static async create(options: DiscoveryOptions | ResolvedDiscoveryConfig, extras: DiscoveryExtras = {}): Promise<Discovery> {
    for (const strategy of extras.strategies ?? []) registerStrategy(strategy);
    const config = resolveDiscoveryConfig(options, { extraStrategies: listStrategies() });
    const logger = extras.logger ?? consoleLogger;
    resolveRetryOptions(extras.retry);
    const registry = extras.registry ?? (await createRegistry(config, logger));
    return new Discovery(config, registry, logger, !extras.registry, extras);
  }

  /**
   * The client of a service, created on first use and shared afterwards
   * (per service and query).
   */
  client(nameOrOptions: string | ServiceClientOptions): ServiceClient {
    if (this.closed) throw new ClosedError('discovery is closed');
    const options: ServiceClientOptions = typeof nameOrOptions === 'string' ? { name: nameOrOptions } : nameOrOptions;
    const query = this.queryFor(options);
    const key = JSON.stringify([query, options.loadBalance ?? this.config.loadBalance]);
    let client = this.clients.get(key);
    if (!client) {
      const strategy = getStrategy(options.loadBalance ?? this.config.loadBalance);
      client = new ServiceClient({ readyTimeoutMs: this.firstSetTimeoutMs, ...options }, {
        registry: this.registry,
        query: compileQuery(query, `clients.${options.name}`),
        strategy,
        logger: this.logger,
        random: this.extras.random,
        retry: this.retry,
        balancedTarget: `discovery://${this.id}/${options.name}`,
      });
      this.clients.set(key, client);
      if (!this.byName.has(options.name)) this.byName.set(options.name, client);
    }
    return client;
  }

  /** For the grpc resolver: the client configured for that service name (forFeature options), else a default one. */
  clientForTarget(name: string): ServiceClient {
    return this.byName.get(name) ?? this.client(name);
  }

  /** Retry policy grpc-js applies on `discovery:///<service>` channels. */
  retryFor(service: string): ResolvedRetryOptions {
    return this.byName.get(service)?.retryPolicy ?? this.retry;
  }

  /**
   * Makes `discovery:///<service>` targets (and `discovery://<name>/<service>`)
   * resolve through this Discovery in every grpc-js client of the process.
   * The Nest module calls it; plain programs call it themselves.
   *
   * @example
   * discovery.serveGrpcTargets(); new grpc.Client('discovery:///greeter', grpc.credentials.createInsecure());
   */
  serveGrpcTargets(name = ''): this {
    installGrpcIntegration((m) => this.logger.warn(m));
    const target: DiscoveryTarget = {
      client: (options) => this.clientForTarget(options.name),
      retryFor: (service) => this.retryFor(service),
      hashHeader: this.hashHeader,
      firstSetTimeoutMs: this.firstSetTimeoutMs,
    };
    if (!this.targetRemovals.length) this.targetRemovals.push(discoveryTargets.add(this.id, target));
    this.targetRemovals.push(discoveryTargets.add(name, target));
    return this;
  }

  /** Builds the query a client's options describe, with the configuration's defaults. */
  queryFor(options: ServiceClientOptions): DiscoveryQuery {
    if (!options || typeof options.name !== 'string' || !options.name) {
      throw ConfigurationError.single('clients[].name', options?.name, 'a service name');
    }
    return {
      service: options.name,
      namespace: options.namespace ?? this.config.namespace.default,
      version: options.version,
      versionFormat: this.config.version.format,
      versionRouting: this.config.version.enableRouting,
      tags: [...this.config.tagFilters, ...(options.tags ?? [])],
      zone: options.zone,
    };
  }

  /** The full instance for this app, with the configuration's defaults (service_type, namespace, version). */
  instanceFor(options: InstanceOptions): ServiceInstance {
    const service = options.service ?? this.config.serviceType;
    if (!service) {
      throw ConfigurationError.single('instance.service', undefined, 'a service name (or backend_config.service_type in the configuration)');
    }
    return createServiceInstance({
      ...options,
      service,
      host: options.address ? undefined : (options.host ?? '127.0.0.1'),
      namespace: options.namespace ?? this.config.namespace.default,
      version: options.version ?? this.config.version.default,
    } as ServiceInstanceInput);
  }

  /** A ServiceRegistry for this app's own instance (not registered until `register()`). */
  self(instance: ServiceInstance | undefined): ServiceRegistry {
    const self = new ServiceRegistry(
      this.registry,
      instance,
      { ttlMs: this.config.registration.ttlMs, heartbeatMs: this.config.registration.heartbeatMs },
      this.logger,
    );
    this.selves.add(self);
    return self;
  }

  /** Deregisters own instances, closes every client and (if it opened it) the registry. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.targetRemovals.splice(0).forEach((remove) => remove());
    await Promise.allSettled([...this.selves].map((s) => s.close()));
    await Promise.allSettled([...this.clients.values()].map((c) => c.close()));
    this.clients.clear();
    this.byName.clear();
    if (this.ownsRegistry) await this.registry.close();
  }
}
