// The framework-free facade: configuration, the registry, clients, own
// registrations, grpc targets, events, metrics and the health report meet
// here, each as a few documented lines over the object that does the work.
import { Subject, type Observable, type Subscription } from 'rxjs';
import { compileQuery, type DiscoveryQuery } from '../core/discovery-query.js';
import type { DiscoveryOptions } from '../core/config/discovery-options.js';
import { resolveDiscoveryConfig, type ResolvedDiscoveryConfig } from '../core/config/resolve-discovery-config.js';
import { ClosedError, ConfigurationError } from '../core/errors.js';
import { createServiceInstance, type ServiceInstance, type ServiceInstanceInput } from '../core/service-instance.js';
import type { BalancingStrategy } from '../balancing/picker.js';
import { StrategyRegistry } from '../balancing/strategy-registry.js';
import { createRegistry } from '../registry/create-registry.js';
import { consoleLogger, type DiscoveryLogger, type Registry } from '../registry/registry.interface.js';
import { CheckerLeases } from '../health/checker-leases.js';
import type { DiscoveryEvent } from '../health/discovery-events.js';
import { healthSettingsOf, type HealthSettings } from '../health/health-settings.js';
import { DiscoveryMetrics, type DiscoveryMetricsOptions, type MetricsSource } from '../health/discovery-metrics.js';
import {
  assessDiscoveryHealth,
  type DiscoveryHealthOptions,
  type DiscoveryHealthReport,
} from '../health/discovery-health-report.js';
import type { ServiceClientOptions } from '../client/client-options.js';
import { resolveRetryOptions, type ResolvedRetryOptions, type RetryOptions } from '../client/retry-policy.js';
import { ServiceClient } from '../client/service-client.js';
import { discoveryTargets, type DiscoveryTarget } from '../transports/grpc/discovery-targets.js';
import { GrpcChannels } from '../transports/grpc/grpc-client-transport.js';
import { installGrpcIntegration } from '../transports/grpc/install-grpc-integration.js';
import { TcpProxyTransport } from '../transports/tcp/tcp-client-transport.js';
import { HttpServiceTransport } from '../transports/http/http-client-transport.js';
import {
  DiscoveryHttpDispatcher,
  type FetchDispatcher,
  type HttpDispatcherOptions,
} from '../transports/http/discovery-http-dispatcher.js';
import { ClientCatalog, type ClientDeclaration } from './client-catalog.js';
import { hostname } from 'node:os';
import { hashString } from '../balancing/string-hash.js';
import { resolveOverload } from '../core/config/overload-options.js';
import { ServiceRegistry } from './service-registry.js';

/** The app's own instance: everything optional but the port (or address). */
export type InstanceOptions = Partial<ServiceInstanceInput> & { port?: number; address?: string };

/** What {@link Discovery.create} takes besides the configuration. */
export interface DiscoveryExtras {
  /** Use this registry instead of creating one from `backend` (it is not closed by the Discovery). */
  registry?: Registry;
  logger?: DiscoveryLogger;
  /** User strategies, selectable by name in `load_balance` / `loadBalance` (in this Discovery only). */
  strategies?: BalancingStrategy[];
  /** Random source for pickers (deterministic tests). */
  random?: () => number;
  /** Default retries for every service (per-service `retry` in client options wins). */
  retry?: RetryOptions | false;
  /** How long a `discovery:///` channel or getChannel() waits for the first endpoint set, ms. Default 10 000. */
  firstSetTimeoutMs?: number;
  /** Per-service client options: what `client(name)`, `discovery:///<name>` and the Nest module use for that service. */
  clients?: ServiceClientOptions[];
}

let discoverySequence = 0;

/**
 * This process's index for deterministic subsetting when none is configured:
 * a hash of host and pid. Clients numbered 0, 1, 2 ... (subsetting.client_index,
 * e.g. a StatefulSet ordinal) spread exactly evenly; hashed ones roughly.
 */
function defaultClientIndex(): number {
  return hashString(`${hostname()}:${process.pid}`) % 1_000_003;
}
let clientSequence = 0;

/**
 * One configured backend and everything built on it: service clients
 * (shared per option set) and the app's own registration. The Nest module
 * is a thin adapter over this class; plain Node programs use it directly.
 *
 * @example
 * const discovery = await Discovery.create({ backend: 'local' });
 * const orders = discovery.client('orders');
 * await orders.ready();
 * await discovery.close();
 */
export class Discovery implements MetricsSource {
  private readonly catalog = new ClientCatalog();
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
  private readonly selves = new Set<ServiceRegistry>();
  private readonly targetRemovals = new Map<string, () => void>();
  /** Dispatchers made by httpDispatcher(), one per option set (a custom fallback makes its own). */
  private readonly httpDispatchers = new Map<string, DiscoveryHttpDispatcher>();
  /** Routes requests of `client.fetch()` that leave their service (a redirect to another host). */
  private redirects: DiscoveryHttpDispatcher | undefined;
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
    private readonly strategies: StrategyRegistry,
    private readonly random: (() => number) | undefined,
    extras: DiscoveryExtras,
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
    const strategies = new StrategyRegistry();
    for (const strategy of extras.strategies ?? []) strategies.register(strategy);
    const config = resolveDiscoveryConfig(options, { extraStrategies: strategies.names() });
    const logger = extras.logger ?? consoleLogger;
    resolveRetryOptions(extras.retry);
    const registry = extras.registry ?? (await createRegistry(config, logger));
    const discovery = new Discovery(config, registry, logger, !extras.registry, strategies, extras.random, extras);
    try {
      discovery.declareClients(
        (extras.clients ?? []).map((options) => ({ options, source: 'Discovery.create({ clients })' })),
      );
    } catch (error) {
      await discovery.close();
      throw error;
    }
    return discovery;
  }

  /**
   * Declares per-service client options (what forFeature and forRoot's
   * `clients` carry). Two different option sets for one service are a
   * ConfigurationError naming both sources.
   */
  declareClients(declarations: readonly ClientDeclaration[]): void {
    for (const { options } of declarations) this.queryFor(options);
    this.catalog.declare(declarations);
  }

  /**
   * The client of a service, created on first use and shared afterwards by
   * every caller with the same options. A bare name gets the options
   * declared for that service, if any.
   */
  client(nameOrOptions: string | ServiceClientOptions): ServiceClient {
    if (this.closed) throw new ClosedError('discovery is closed');
    const options = typeof nameOrOptions === 'string' ? this.catalog.optionsFor(nameOrOptions) : nameOrOptions;
    const query = this.queryFor(options);
    return this.catalog.get(options, () => this.createClient(options, query));
  }

  /** The client `discovery:///<name>` and `@InjectServiceClient(name)` use: the declared options, else the defaults. */
  clientFor(name: string): ServiceClient {
    return this.client(name);
  }

  /** Every client made so far. */
  listClients(): ServiceClient[] {
    return this.catalog.list();
  }

  /** Backend name (for metrics labels). */
  get backendName(): string {
    return this.registry.backend;
  }

  /** Picks so far per service and endpoint address, over every client. */
  *pickCounts(): Iterable<{ service: string; endpoint: string; count: number }> {
    for (const client of this.catalog.list()) {
      for (const [endpoint, count] of client.pickCounts()) yield { service: client.service, endpoint, count };
    }
  }

  /** Whether the backend's server answers now, and why not (see the registry's reachability contract). */
  registryReachability(): { reachable: boolean; reason: string | undefined } | undefined {
    const state = this.registry.reachability?.current;
    return state ? { reachable: state.reachable, reason: state.reason } : undefined;
  }

  /** The backend's reachability as a boolean (undefined when the backend reports none). */
  registryReachable(): boolean | undefined {
    return this.registryReachability()?.reachable;
  }

  /**
   * Grades registry reachability, the own registration and every
   * dependency (see assessDiscoveryHealth); what the Terminus indicator reports.
   *
   * @example
   * const report = discovery.healthReport(self, { minEndpoints: { orders: 2 } });
   */
  healthReport(self?: ServiceRegistry, options: DiscoveryHealthOptions = {}): DiscoveryHealthReport {
    return assessDiscoveryHealth(
      {
        backend: this.registry.backend,
        registryReachable: () => this.registryReachable(),
        registration: () => {
          const instance = self?.instance();
          if (!self || !instance) return undefined;
          return { state: self.state, instance: instance.id, service: instance.service };
        },
        dependencies: () => this.catalog.list(),
      },
      options,
    );
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
    for (const client of this.catalog.list()) {
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

  /**
   * Makes `discovery:///<service>` targets (and `discovery://<name>/<service>`)
   * resolve through this Discovery in every grpc-js client of the process.
   * The Nest module calls it; `getService()` does not need it.
   *
   * @example
   * discovery.serveGrpcTargets(); new grpc.Client('discovery:///greeter', grpc.credentials.createInsecure());
   */
  serveGrpcTargets(name = ''): this {
    this.serveTarget(this.id);
    this.serveTarget(name);
    return this;
  }

  /**
   * An undici Dispatcher that balances requests whose host names a service:
   * `fetch('http://orders/api/orders/42', { dispatcher })`, or every fetch
   * after `setGlobalDispatcher(...)` (with `fallback: true` for other hosts).
   * Each service is called with its declared client options.
   *
   * @example
   * const res = await fetch('http://orders/api/orders/42', { dispatcher: discovery.httpDispatcher() });
   */
  httpDispatcher(options: HttpDispatcherOptions = {}): FetchDispatcher {
    // Typed as the platform fetch's dispatcher; it is an undici Dispatcher, which every fetch accepts.
    return this.makeHttpDispatcher(options) as unknown as FetchDispatcher;
  }

  private makeHttpDispatcher(options: HttpDispatcherOptions): DiscoveryHttpDispatcher {
    if (this.closed) throw new ClosedError('discovery is closed');
    const custom = typeof options.fallback === 'object';
    const key = JSON.stringify([
      options.hostSuffix ?? '',
      [...(options.services ?? [])].sort(),
      options.fallback ?? false,
    ]);
    const made = custom ? undefined : this.httpDispatchers.get(key);
    if (made) return made;
    const dispatcher = new DiscoveryHttpDispatcher(
      {
        clientFor: (service) => this.clientFor(service),
        knownServices: () => this.catalog.names(),
        dispatchTo: (client, request, handler) => client.sendHttp(request, handler),
      },
      options,
    );
    this.httpDispatchers.set(custom ? `${key}#${this.httpDispatchers.size}` : key, dispatcher);
    return dispatcher;
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
      weight: options.weight ?? this.registry.defaultWeight,
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
    if (self.instance()) this.selfSubscriptions.push(self.events$.subscribe(() => this.emitRegistration(self)));
    return self;
  }

  /**
   * Closes own registrations (deregistering them unless
   * `registration.deregister_on_shutdown` is false, in which case they
   * expire by their TTL), every client and, if it opened it, the registry.
   * Idempotent.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const remove of this.targetRemovals.values()) remove();
    this.targetRemovals.clear();
    await Promise.allSettled([...this.httpDispatchers.values()].map((d) => d.close()));
    this.httpDispatchers.clear();
    const deregister = this.config.registration.deregisterOnShutdown;
    await Promise.allSettled([...this.selves].map((s) => s.close({ deregister })));
    await Promise.allSettled(this.catalog.list().map((c) => c.close()));
    this.catalog.clear();
    this.checkerLeases.close();
    this.selfSubscriptions.splice(0).forEach((s) => s.unsubscribe());
    this.attachedMetrics.splice(0).forEach((m) => m.close());
    this.bus.complete();
    if (this.ownsRegistry) await this.registry.close();
  }

  private createClient(options: ServiceClientOptions, query: DiscoveryQuery): ServiceClient {
    const { slowStart, circuitBreaker, throttling, hedging, priority, subsetting } = options;
    const overload = resolveOverload(
      this.config.overload,
      { slowStart, circuitBreaker, throttling, hedging, priority, subsetting },
      `clients.${options.name}`,
    );
    return new ServiceClient(
      { readyTimeoutMs: this.firstSetTimeoutMs, ...options },
      {
        registry: this.registry,
        query: compileQuery(query, `clients.${options.name}`),
        strategy: this.strategies.get(options.loadBalance ?? this.config.loadBalance),
        logger: this.logger,
        random: this.random,
        retry: this.retry,
        overload,
        clientIndex: overload.subsetting.clientIndex ?? defaultClientIndex(),
        health: {
          settings: this.health,
          checkers: this.checkerLeases,
          // Check results reach events$ once per check from the leases, not once per client.
          emit: (event) => event.type !== 'health-check' && this.bus.next(event),
        },
        transports: {
          grpc: (client) => {
            // getService() stubs balance through THIS client (its strategy,
            // filters and outlier detection), so their target names it.
            const authority = `${this.id}.${++clientSequence}`;
            return new GrpcChannels(client, {
              balancedTarget: `discovery://${authority}/${client.service}`,
              serveTarget: () => this.serveTarget(authority, client),
            });
          },
          tcp: (client) => new TcpProxyTransport(client),
          http: (client) =>
            new HttpServiceTransport(client, {
              hashHeader: this.hashHeader,
              hostSuffix: '',
              // A redirect to another host: routed like discovery.httpDispatcher() routes it.
              dispatchOther: (request, handler) =>
                (this.redirects ??= this.makeHttpDispatcher({})).dispatch(request, handler),
            }),
        },
      },
    );
  }

  /**
   * Registers this Discovery under a target authority ('' = `discovery:///`),
   * once; with `client`, the authority resolves that client's service to it.
   */
  private serveTarget(authority: string, client?: ServiceClient): void {
    if (this.closed || this.targetRemovals.has(authority)) return;
    installGrpcIntegration((m) => this.logger.warn(m));
    const target: DiscoveryTarget = {
      clientFor: (service) =>
        client && !client.isClosed && client.service === service ? client : this.clientFor(service),
      hashHeader: this.hashHeader,
      firstSetTimeoutMs: this.firstSetTimeoutMs,
    };
    this.targetRemovals.set(authority, discoveryTargets.add(authority, target));
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
}
