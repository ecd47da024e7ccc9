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
// Health layer: shared active checkers, events, metrics and the health report.
import { Subject, type Observable, type Subscription } from 'rxjs';
import { CheckerLeases } from '../health/checker-leases.js';
import type { DiscoveryEvent } from '../health/discovery-events.js';
import { healthSettingsOf, type HealthSettings } from '../health/health-settings.js';
import { DiscoveryMetrics, type DiscoveryMetricsOptions, type MetricsSource } from '../health/discovery-metrics.js';
import {
  assessDiscoveryHealth,
  type DiscoveryHealthOptions,
  type DiscoveryHealthReport,
  type DiscoveryHealthSource,
} from '../health/discovery-health-report.js';

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
export class Discovery implements DiscoveryTarget, MetricsSource {
  private readonly clients = new Map<string, ServiceClient>();
  private readonly bus = new Subject<DiscoveryEvent>();
  /**
   * Every client's health, ejection, panic, registry-error and watch-lag
   * events, each active check once, and the app's registration changes.
   */
  readonly events$: Observable<DiscoveryEvent> = this.bus.asObservable();
  /** Health overlay settings every client gets (from health_check, outlier_detection, panic_threshold). */
  readonly health: HealthSettings;
  private readonly checkerLeases: CheckerLeases;
  private readonly selfSubscriptions: Subscription[] = [];
  private readonly attachedMetrics: DiscoveryMetrics[] = [];
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
    this.health = healthSettingsOf(config);
    this.checkerLeases = new CheckerLeases((event) => this.bus.next(event));
  }

  /** Header carrying the consistent-hash key on grpc calls. */
  get hashHeader(): string {
    return this.config.hashHeader;
  }

  /** Validates the configuration (throws ConfigurationError before opening anything) and opens the backend. */
  static async create(
    options: DiscoveryOptions | ResolvedDiscoveryConfig,
    extras: DiscoveryExtras = {},
  ): Promise<Discovery> {
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
      client = new ServiceClient(
        { readyTimeoutMs: this.firstSetTimeoutMs, ...options },
        {
          registry: this.registry,
          query: compileQuery(query, `clients.${options.name}`),
          strategy,
          logger: this.logger,
          random: this.extras.random,
          retry: this.retry,
          balancedTarget: `discovery://${this.id}/${options.name}`,
          health: {
            settings: this.health,
            checkers: this.checkerLeases,
            // Check results reach events$ once per check from the leases, not once per client.
            emit: (event) => event.type !== 'health-check' && this.bus.next(event),
          },
        },
      );
      this.clients.set(key, client);
      if (!this.byName.has(options.name)) this.byName.set(options.name, client);
    }
    return client;
  }

  /** Every client made so far. */
  listClients(): ServiceClient[] {
    return [...this.clients.values()];
  }

  /** Backend name (for metrics labels). */
  get backendName(): string {
    return this.registry.backend;
  }

  /** Picks so far per service and endpoint address, over every client. */
  *pickCounts(): Iterable<{ service: string; endpoint: string; count: number }> {
    for (const client of this.clients.values()) {
      for (const [endpoint, count] of client.pickCounts()) yield { service: client.service, endpoint, count };
    }
  }

  /**
   * The backend's own reachability signal (etcd, Consul, mesh expose
   * `reachable`; the memory store has `isReachable`); undefined when the
   * backend has none.
   */
  registryReachable(): boolean | undefined {
    const registry = this.registry as unknown as { reachable?: unknown; store?: { isReachable?: unknown } };
    if (typeof registry.reachable === 'boolean') return registry.reachable;
    if (typeof registry.store?.isReachable === 'boolean') return registry.store.isReachable;
    return undefined;
  }

  /**
   * Grades registry reachability, the own registration and every
   * dependency (see assessDiscoveryHealth); what the Terminus indicator reports.
   *
   * @example
   * const report = discovery.healthReport(self, { minEndpoints: { orders: 2 } });
   */
  healthReport(self?: ServiceRegistry, options: DiscoveryHealthOptions = {}): DiscoveryHealthReport {
    const byName = this.byName;
    const source: DiscoveryHealthSource = {
      backend: this.registry.backend,
      registryReachable: () => this.registryReachable(),
      registration: () => {
        const instance = self?.instance();
        if (!self || !instance) return undefined;
        return { state: self.state, instance: instance.id, service: instance.service };
      },
      dependencies: () => byName.values(),
    };
    return assessDiscoveryHealth(source, options);
  }

  /**
   * Records this Discovery's events into prom-client metrics (optional
   * dependency, loaded now). Closed with the Discovery.
   *
   * @example
   * discovery.enableMetrics(); // then expose `await promClient.register.metrics()` on /metrics
   */
  enableMetrics(options: DiscoveryMetricsOptions = {}): DiscoveryMetrics {
    const metrics = DiscoveryMetrics.attach(this, options);
    this.attachedMetrics.push(metrics);
    // Clients made before metrics were enabled report their current state now.
    for (const client of this.clients.values()) {
      const h = client.healthStatus;
      const set = client.snapshot();
      if (set.resolved || set.state === 'stale') {
        this.bus.next({
          type: 'endpoints',
          service: client.service,
          revision: set.revision,
          state: set.state,
          total: h.total,
          healthy: h.healthy,
          unhealthy: h.unhealthy,
          ejected: h.ejected,
          served: set.size,
          panic: h.panic,
          at: Date.now(),
        });
      }
    }
    for (const self of this.selves) this.emitRegistration(self);
    return metrics;
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
      throw ConfigurationError.single(
        'instance.service',
        undefined,
        'a service name (or backend_config.service_type in the configuration)',
      );
    }
    return createServiceInstance({
      ...options,
      service,
      host: options.address ? undefined : (options.host ?? '127.0.0.1'),
      namespace: options.namespace ?? this.config.namespace.default,
      version: options.version ?? this.config.version.default,
    });
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
    const me = self.instance();
    if (me) this.selfSubscriptions.push(self.events$.subscribe(() => this.emitRegistration(self)));
    return self;
  }

  private emitRegistration(self: ServiceRegistry): void {
    const instance = self.instance();
    if (!instance) return;
    this.bus.next({
      type: 'registration',
      service: instance.service,
      instance: instance.id,
      state: self.state,
      at: Date.now(),
    });
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
    this.checkerLeases.close();
    this.selfSubscriptions.splice(0).forEach((s) => s.unsubscribe());
    this.attachedMetrics.splice(0).forEach((m) => m.close());
    this.bus.complete();
    if (this.ownsRegistry) await this.registry.close();
  }
}
