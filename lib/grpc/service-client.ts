import * as grpc from '@grpc/grpc-js';
import { createRequire } from 'node:module';
import { filter, firstValueFrom, ReplaySubject, Subject, timeout, type Observable, type Subscription } from 'rxjs';
import type { CompiledQuery, DiscoveryQuery } from '../core/discovery-query.js';
import type { Endpoint } from '../core/endpoint.js';
import { EndpointSet } from '../core/endpoint-set.js';
import { ClosedError, DiscoveryError, NoEndpointsError, type NoEndpointsReason } from '../core/errors.js';
import type { BalancingStrategy, PickContext, Picker } from '../balancing/picker.js';
import { LoadTracker, onCallEnd, onCallStart } from '../balancing/endpoint-load.js';
import type { DiscoveryLogger, Registry } from '../registry/registry.interface.js';
import { ChannelPool, type ChannelFactoryOptions } from './channel-pool.js';
import { MinuteCounter } from './minute-counter.js';
import { backoffDelay } from '../core/backoff.js';
import { resolveRetryOptions, RetryBudget, type ResolvedRetryOptions, type RetryOptions } from './retry-policy.js';
// Health layer: the overlay between the registry's set and the picker, and the events it reports.
import type { DiscoveryEvent } from '../health/discovery-events.js';
import { HealthOverlay, type CheckerSource, type ServiceHealth } from '../health/health-overlay.js';
import type { HealthSettings } from '../health/health-settings.js';
import { healthCheckerPool } from '../health/endpoint-health-checker.js';
import { callOutcome, type CallOutcome } from '../health/outlier-detector.js';

/** A proto file (or loaded package) for `getService(name)`. */
export interface ProtoSource {
  /** .proto file(s), loaded with @grpc/proto-loader (keepCase, longs as String, enums as String, defaults, oneofs). */
  path?: string | string[];
  /** proto-loader options (include dirs, ...). */
  loaderOptions?: Record<string, unknown>;
  /** Or a package already loaded with grpc.loadPackageDefinition. */
  grpcObject?: grpc.GrpcObject;
}

/** What `call()` hands its function on each attempt. */
export interface CallAttempt {
  channel: grpc.Channel;
  endpoint: Endpoint;
  /** The call's overall deadline (pass it to the stub). */
  deadline: Date | undefined;
  /** 1 for the first attempt. */
  attempt: number;
}

/** Options of {@link ServiceClient.call}. */
export interface CallOptions {
  /** Consistent-hash key. */
  key?: string;
  /** Retry settings for this call; default the client's. `false` disables retries. */
  retry?: RetryOptions | false;
  /** Overall deadline for all attempts, ms from now. */
  timeoutMs?: number;
}

/** Per-service client options (what `forFeature` and `Discovery.client` take). */
export interface ServiceClientOptions extends ChannelFactoryOptions {
  /** The service to discover. */
  name: string;
  /** Default: the configuration's `namespace.default`. */
  namespace?: string;
  /** Exact version, or a semver range when version routing is on. */
  version?: string;
  /** Extra tag filters, added to the configuration's `tag_filters`. */
  tags?: Array<{ key: string; value?: string; pattern?: 'exact' | 'prefix' | 'regex' | 'exists' }>;
  /** Prefer endpoints in this zone (all zones when it has none). */
  zone?: string;
  /** Strategy name; default the configuration's `load_balance`. */
  loadBalance?: string;
  /** Default bound of `ready()`, ms. Default 10 000. */
  readyTimeoutMs?: number;
  /** Retries for `call()` and for grpc-js clients on `discovery:///<name>`. */
  retry?: RetryOptions | false;
  /** The proto that `getService(name)` builds stubs from. */
  proto?: ProtoSource;
  /** Below this many served endpoints the Terminus indicator reports the service `degraded`. Default 1. */
  minEndpoints?: number;
}

/** Options of {@link ServiceClient.ready}. */
export interface ReadyOptions {
  /** Wait until at least this many endpoints are known. Default 1. */
  minEndpoints?: number;
  /** Give up after this long (rejects with NoEndpointsError). Default the client's readyTimeoutMs. */
  timeoutMs?: number;
}

/** Internals a ServiceClient is built from; made by `Discovery.client()`. */
export interface ServiceClientDeps {
  registry: Registry;
  query: CompiledQuery;
  strategy: BalancingStrategy;
  logger: DiscoveryLogger;
  /** Closed with the client when the client owns it (createDiscover). */
  ownsRegistry?: boolean;
  random?: () => number;
  /** grpc-js target of the balanced channel, e.g. `discovery://d1/orders`. */
  balancedTarget?: string;
  /** The module-wide retry default. */
  retry?: ResolvedRetryOptions;
  /** Health overlay settings, checker source and event sink (from the Discovery); none: the registry's sets are served as they are. */
  health?: { settings: HealthSettings; checkers?: CheckerSource; emit?: (event: DiscoveryEvent) => void };
}

/** Settings that turn the health overlay into a pass-through. */
const NO_HEALTH: HealthSettings = {
  active: {
    enabled: false,
    kind: 'grpc',
    service: '',
    path: '/health',
    intervalMs: 10_000,
    timeoutMs: 5_000,
    failureThreshold: 3,
    successThreshold: 2,
    jitter: 0.1,
  },
  outlier: {
    enabled: false,
    consecutiveFailures: 5,
    baseEjectionMs: 30_000,
    maxEjectionMs: 300_000,
    maxEjectionPercent: 50,
  },
  panicThreshold: 0,
};

/**
 * A client for one service: an observable endpoint set, a picker rebuilt per
 * snapshot and a cached channel per endpoint. Safe to share: every method
 * may be called concurrently without locking.
 *
 * @example
 * constructor(@InjectServiceClient('orders') private readonly orders: ServiceClient) {}
 * const channel = await this.orders.getChannel({ key: customerId });
 */
export class ServiceClient {
  readonly service: string;
  readonly strategy: string;
  private readonly sets = new ReplaySubject<EndpointSet>(1);
  private current: EndpointSet;
  private picker: Picker = EMPTY_PICKER;
  private readonly loads = new LoadTracker();
  private readonly pool: ChannelPool;
  private readonly subscription: Subscription;
  private closed = false;
  private readonly random: () => number;
  private readonly retry: ResolvedRetryOptions;
  private readonly budget: RetryBudget;
  private readonly stubs = new Map<grpc.ServiceClientConstructor, grpc.Client>();
  private readonly constructors = new Map<string, grpc.ServiceClientConstructor>();
  private grpcObject: grpc.GrpcObject | undefined;
  private readonly overlay: HealthOverlay;
  private readonly events = new Subject<DiscoveryEvent>();
  /** Picks per endpoint key (counted here so the call path updates no metric objects). */
  private readonly picks = new Map<
    string,
    { address: string; count: number; lastMinute: MinuteCounter; failures: MinuteCounter }
  >();
  private rawState: EndpointSet['state'] | undefined;

  /**
   * Health, ejection, panic, registry-error and watch-lag events of this
   * service (see {@link DiscoveryEvent}); completes on close.
   */
  readonly events$: Observable<DiscoveryEvent> = this.events.asObservable();

  /**
   * Replays the current set to each subscriber, then every change. Never
   * errors: a registry outage yields the last known set with state `stale`.
   */
  readonly endpoints$: Observable<EndpointSet>;

  constructor(
    readonly options: ServiceClientOptions,
    private readonly deps: ServiceClientDeps,
  ) {
    this.service = options.name;
    this.strategy = deps.strategy.name;
    this.current = EndpointSet.initial(options.name);
    this.pool = new ChannelPool(options);
    this.random = deps.random ?? Math.random;
    this.retry =
      options.retry !== undefined
        ? resolveRetryOptions(options.retry, `clients.${options.name}.retry`)
        : (deps.retry ?? resolveRetryOptions(undefined));
    this.budget = new RetryBudget(this.retry.budget);
    this.endpoints$ = this.sets.asObservable();
    const zone = options.zone;
    // registry set -> health overlay (checks, ejections, panic) -> zone preference -> picker.
    // Zone preference comes after health, so a zone whose endpoints all fail falls back to the others.
    this.overlay = new HealthOverlay({
      service: this.service,
      settings: deps.health?.settings ?? NO_HEALTH,
      checkers: deps.health?.checkers ?? healthCheckerPool,
      logger: deps.logger,
      serve: (set) => this.accept(zone ? preferZone(set, zone) : set),
      emit: (event) => this.emit(event),
    });
    let lastRaw: EndpointSet | undefined;
    this.subscription = deps.registry.watch(deps.query.query).subscribe({
      next: (set) => {
        lastRaw = set;
        this.observeRaw(set);
        this.overlay.update(set);
      },
      // Registries never error by contract; if one does, keep serving what we have.
      error: (error: unknown) => {
        const message = (error as Error)?.message ?? String(error);
        deps.logger.error(`watch of '${this.service}' failed: ${message}; serving the last known set`);
        const stale = (lastRaw ?? EndpointSet.initial(this.service)).stale(`watch failed: ${message}`);
        this.observeRaw(stale);
        this.overlay.update(stale);
      },
    });
  }

  /** The latest snapshot (revision 0 and no endpoints before the registry first answers). */
  snapshot(): EndpointSet {
    return this.current;
  }

  /**
   * Resolves once at least `minEndpoints` endpoints are known; rejects with
   * {@link NoEndpointsError} after `timeoutMs`.
   *
   * @example
   * await client.ready({ minEndpoints: 2, timeoutMs: 5_000 });
   */
  async ready(options: ReadyOptions = {}): Promise<void> {
    const min = options.minEndpoints ?? 1;
    const timeoutMs = options.timeoutMs ?? this.options.readyTimeoutMs ?? 10_000;
    if (this.current.size >= min) return;
    try {
      await firstValueFrom(
        this.sets.pipe(
          filter((set) => set.size >= min),
          timeout({ first: timeoutMs }),
        ),
      );
    } catch (error) {
      if (this.closed) throw new ClosedError(`client for '${this.service}' was closed`);
      throw new NoEndpointsError(
        this.service,
        this.reason(),
        `waited ${timeoutMs} ms for ${min} endpoint(s), have ${this.current.size}`,
      );
    }
  }

  /**
   * Picks an endpoint with the client's strategy. `key` feeds consistent
   * hashing. Throws {@link NoEndpointsError} saying whether the registry is
   * unreachable or the service has zero instances.
   */
  pick(context?: PickContext): Endpoint {
    const endpoint = this.pickUncounted(context);
    this.recordPick(endpoint);
    return endpoint;
  }

  /**
   * Counts a pick made for this client elsewhere (the grpc LB policy), for
   * the picks metric. O(1), allocation-free once the endpoint was seen.
   */
  recordPick(endpoint: Endpoint): void {
    let record = this.picks.get(endpoint.key);
    if (record === undefined) this.picks.set(endpoint.key, (record = newActivity(endpoint.address)));
    record.count++;
    record.lastMinute.add();
  }

  /** Picks so far per endpoint address (endpoints still known). */
  pickCounts(): Map<string, number> {
    const out = new Map<string, number>();
    for (const { address, count } of this.picks.values()) out.set(address, (out.get(address) ?? 0) + count);
    return out;
  }

  /**
   * Feeds one call's end into passive outlier detection: a gRPC status code
   * or error (UNAVAILABLE, DEADLINE_EXCEEDED and connection errors count
   * against the endpoint; application codes prove it answered), or an
   * already classified outcome. ServiceClient.call() and the grpc LB policy
   * call it; code that calls endpoints by other means may too.
   *
   * @example
   * client.reportCallOutcome(endpoint, error ?? grpc.status.OK);
   */
  reportCallOutcome(endpoint: Endpoint, result: CallOutcome | number | Error | null | undefined): void {
    const outcome = result === 'success' || result === 'failure' || result === 'neutral' ? result : callOutcome(result);
    if (outcome === 'failure') {
      let record = this.picks.get(endpoint.key);
      if (record === undefined) this.picks.set(endpoint.key, (record = newActivity(endpoint.address)));
      record.failures.add();
    }
    this.overlay.recordOutcome(endpoint, outcome);
  }

  /** The query this client watches (namespace, version, tags, zone). */
  get query(): Readonly<DiscoveryQuery> {
    return { ...this.deps.query.query, zone: this.options.zone };
  }

  /**
   * Every endpoint the registry knows for this client (served or not), with
   * its health and recent activity: what the admin view shows.
   */
  describeEndpoints(): EndpointReport[] {
    const known = this.overlay.known() ?? this.current;
    const served = this.current;
    return known.endpoints.map((endpoint) => {
      const health = this.overlay.describe(endpoint);
      const activity = this.picks.get(endpoint.key);
      const load = this.loads.peek(endpoint.key);
      return {
        endpoint,
        served: served.has(endpoint.key),
        health: health.state,
        detail: health.detail,
        inFlight: load?.inFlight ?? 0,
        ewmaMs: load && load.ewmaMs > 0 ? load.ewmaMs : undefined,
        picksLastMinute: activity?.lastMinute.total() ?? 0,
        failuresLastMinute: activity?.failures.total() ?? 0,
      };
    });
  }

  /** Known / healthy / unhealthy / ejected / served counts and panic mode, as of now. */
  get healthStatus(): ServiceHealth {
    return this.overlay.status;
  }

  private pickUncounted(context?: PickContext): Endpoint {
    const endpoint = this.picker.pick(context);
    if (endpoint === undefined) throw new NoEndpointsError(this.service, this.reason(), this.current.reason);
    return endpoint;
  }

  /**
   * A cached grpc-js Channel to a picked endpoint, waiting (up to the
   * client's `readyTimeoutMs`) for the first endpoint when none is known yet.
   *
   * @example
   * const stub = new GreeterClient('unused', credentials, { channelOverride: await client.getChannel() });
   */
  async getChannel(context?: PickContext): Promise<grpc.Channel> {
    if (this.closed) throw new ClosedError(`client for '${this.service}' was closed`);
    if (this.current.size === 0) await this.ready();
    return this.pool.get(this.pick(context), this.current);
  }

  /**
   * Asks the registry for an early re-read (DNS re-resolution, ...): the
   * grpc layer calls it when a connection to an endpoint fails.
   */
  refreshEndpoints(): boolean {
    return this.deps.registry.refresh?.(this.service) ?? false;
  }

  /** The retry policy this client uses (and hands grpc-js for `discovery:///` channels). */
  get retryPolicy(): ResolvedRetryOptions {
    return this.retry;
  }

  /** The strategy pickers are built with. */
  get balancingStrategy(): BalancingStrategy {
    return this.deps.strategy;
  }

  /**
   * A grpc-js stub for `serviceName` (e.g. `Greeter` or `greeter.Greeter`)
   * over ONE balanced channel to `discovery:///<service>`: calls are spread
   * per call by the client's strategy, retried by gRPC's retry policy, and
   * follow endpoint changes. Needs the `proto` option (or pass a client constructor).
   *
   * @example
   * const greeter = client.getService<GreeterClient>('Greeter');
   * greeter.sayHello({ name: 'x' }, (err, reply) => ...);
   */
  getService<T = grpc.Client>(service: string | grpc.ServiceClientConstructor): T {
    if (this.closed) throw new ClosedError(`client for '${this.service}' was closed`);
    const Ctor = typeof service === 'string' ? this.findServiceConstructor(service) : service;
    let stub = this.stubs.get(Ctor);
    if (!stub) {
      stub = new Ctor(
        this.balancedTarget,
        this.options.credentials ?? grpc.credentials.createInsecure(),
        this.options.channelOptions ?? {},
      );
      this.stubs.set(Ctor, stub);
    }
    return stub as T;
  }

  /** grpc-js target of the balanced channel (`discovery://<discovery-id>/<service>`). */
  get balancedTarget(): string {
    return this.deps.balancedTarget ?? `discovery:///${this.service}`;
  }

  /**
   * Runs `fn` against a picked endpoint's channel, retrying retryable
   * failures (by default UNAVAILABLE only: the call never reached the
   * application) on a different endpoint with exponential backoff and full
   * jitter, within `maxAttempts`, the overall deadline and the retry budget.
   *
   * @example
   * const reply = await client.call(({ channel, deadline }) => sayHello(channel, { name }, deadline), { key: userId });
   */
  async call<T>(fn: (attempt: CallAttempt) => Promise<T>, options: CallOptions = {}): Promise<T> {
    const retry = options.retry !== undefined ? resolveRetryOptions(options.retry, 'call.retry') : this.retry;
    const deadline = options.timeoutMs !== undefined ? new Date(Date.now() + options.timeoutMs) : undefined;
    const context: PickContext = { key: options.key };
    const tried = new Set<string>();
    for (let attempt = 1; ; attempt++) {
      if (this.current.size === 0) await this.ready();
      let endpoint = this.pickUncounted(context);
      // Prefer an endpoint this call has not failed on yet.
      for (let i = 0; i < 4 && tried.has(endpoint.key) && tried.size < this.current.size; i++)
        endpoint = this.pickUncounted(context.key ? {} : context);
      this.recordPick(endpoint);
      const channel = this.pool.get(endpoint, this.current);
      const load = this.loads.load(endpoint);
      const started = performance.now();
      onCallStart(load);
      try {
        const result = await fn({ channel, endpoint, deadline, attempt });
        const now = performance.now();
        onCallEnd(load, now - started, now);
        this.budget.onSuccess();
        this.reportCallOutcome(endpoint, 'success');
        return result;
      } catch (error) {
        const now = performance.now();
        onCallEnd(load, now - started, now);
        this.reportCallOutcome(endpoint, callOutcome(error));
        const retryable = isRetryable(error, retry.retryableStatusCodes);
        if (retryable) this.budget.onFailure();
        tried.add(endpoint.key);
        const delay = backoffDelay(attempt - 1, {
          initialMs: retry.initialBackoffMs,
          maxMs: retry.maxBackoffMs,
          factor: retry.backoffMultiplier,
          random: this.random,
        });
        const outOfTime = deadline !== undefined && Date.now() + delay >= deadline.getTime();
        if (!retryable || attempt >= retry.maxAttempts || outOfTime || !this.budget.canRetry() || this.closed)
          throw error;
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
  }

  /** The shared in-flight / latency records the load-aware strategies read. */
  get loadTracker(): LoadTracker {
    return this.loads;
  }

  /** Stops watching and closes every channel. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.subscription.unsubscribe();
    this.overlay.close();
    this.events.complete();
    this.pool.close();
    for (const stub of this.stubs.values()) stub.close();
    this.stubs.clear();
    this.sets.complete();
    if (this.deps.ownsRegistry) await this.deps.registry.close();
  }

  private findServiceConstructor(name: string): grpc.ServiceClientConstructor {
    if (!this.grpcObject) {
      const proto = this.options.proto;
      if (proto?.grpcObject) this.grpcObject = proto.grpcObject;
      else if (proto?.path) {
        // @grpc/proto-loader is an optional peer: loaded only when a proto path is given.
        const loader = createRequire(import.meta.url)('@grpc/proto-loader') as typeof import('@grpc/proto-loader');
        const definition = loader.loadSync(proto.path, {
          keepCase: true,
          longs: String,
          enums: String,
          defaults: true,
          oneofs: true,
          ...proto.loaderOptions,
        });
        this.grpcObject = grpc.loadPackageDefinition(definition);
      } else {
        throw new DiscoveryError(
          `getService('${name}') on client '${this.service}' needs the 'proto' option ({ path } or { grpcObject }) or a client constructor`,
        );
      }
    }
    let found = this.constructors.get(name);
    if (!found) {
      found = findService(this.grpcObject, name);
      if (!found) throw new DiscoveryError(`service '${name}' not found in the proto of client '${this.service}'`);
      this.constructors.set(name, found);
    }
    return found;
  }

  private accept(set: EndpointSet): void {
    if (this.closed) return;
    const previous = this.current;
    this.current = set;
    if (set.endpoints !== previous.endpoints || this.picker === EMPTY_PICKER) {
      try {
        this.picker =
          set.size === 0
            ? EMPTY_PICKER
            : this.deps.strategy.build(
                // A plain copy: pickers index it on every call, and frozen arrays index slower in V8.
                set.endpoints.slice(),
                { loads: this.loads, random: this.random, previous: this.picker },
              );
      } catch (error) {
        // A strategy that refuses this set (e.g. bad weights) keeps the previous picker.
        this.deps.logger.error(
          `strategy '${this.strategy}' rejected the endpoints of '${this.service}': ${(error as Error).message}`,
        );
      }
      this.loads.retain(set.endpoints);
      this.pool.sync(set);
    }
    if (set.state !== previous.state) {
      const text = `service '${this.service}': endpoint set ${set.state}${set.reason ? ` (${set.reason})` : ''}, ${set.size} endpoint(s)`;
      if (set.state === 'stale') this.deps.logger.warn(text);
      else this.deps.logger.log(text);
    }
    this.sets.next(set);
  }

  /** Registry-side facts of a raw snapshot: watch lag, and registry errors (a set turning stale). */
  private observeRaw(set: EndpointSet): void {
    if (this.closed) return;
    if (set.state === 'stale' && this.rawState !== 'stale') {
      this.emit({
        type: 'registry-error',
        service: this.service,
        backend: this.deps.registry.backend,
        reason: set.reason ?? 'registry unreachable',
        at: Date.now(),
      });
    }
    this.rawState = set.state;
    // Pick counts live as long as the registry knows the endpoint, so one leaving the served set for a while (unhealthy, ejected) keeps its count.
    if (this.picks.size > 0 && set.resolved) {
      for (const key of this.picks.keys()) if (!set.has(key)) this.picks.delete(key);
    }
    if (set.state !== 'stale')
      this.emit({
        type: 'watch-lag',
        service: this.service,
        lagMs: Math.max(0, Date.now() - set.updatedAt),
        at: Date.now(),
      });
  }

  private emit(event: DiscoveryEvent): void {
    if (this.closed) return;
    this.events.next(event);
    this.deps.health?.emit?.(event);
  }

  private reason(): NoEndpointsReason {
    const set = this.current;
    if (set.state === 'stale') return 'unreachable';
    if (!set.resolved) return 'pending';
    if (set.state === 'empty') return 'empty';
    return 'filtered';
  }
}

const EMPTY_PICKER: Picker = { pick: () => undefined };

/** One endpoint as the admin view shows it. */
export interface EndpointReport {
  endpoint: Endpoint;
  /** In the set the picker uses right now. */
  served: boolean;
  health: 'healthy' | 'unhealthy' | 'ejected';
  /** Why it is unhealthy or ejected (and until when). */
  detail: string | undefined;
  inFlight: number;
  ewmaMs: number | undefined;
  picksLastMinute: number;
  failuresLastMinute: number;
}

function newActivity(address: string) {
  return { address, count: 0, lastMinute: new MinuteCounter(), failures: new MinuteCounter() };
}

const STATUS_BY_CODE = new Map<number, string>(
  Object.entries(grpc.status)
    .filter(([, v]) => typeof v === 'number')
    .map(([k, v]) => [v as number, k]),
);
const CONNECTION_ERRORS = new Set(['ECONNREFUSED', 'ECONNRESET', 'EHOSTUNREACH', 'ENETUNREACH', 'EPIPE']);

function isRetryable(error: unknown, codes: readonly string[]): boolean {
  const e = error as { code?: unknown };
  if (typeof e?.code === 'number') return codes.includes(STATUS_BY_CODE.get(e.code) ?? '');
  // A refused connection never reached the application: as safe as UNAVAILABLE.
  if (typeof e?.code === 'string') return CONNECTION_ERRORS.has(e.code) && codes.includes('UNAVAILABLE');
  return false;
}

function findService(root: grpc.GrpcObject, name: string): grpc.ServiceClientConstructor | undefined {
  const direct = name
    .split('.')
    .reduce<unknown>((node, part) => (node as Record<string, unknown> | undefined)?.[part], root);
  if (typeof direct === 'function' && 'service' in direct) return direct as grpc.ServiceClientConstructor;
  for (const value of Object.values(root)) {
    if (typeof value === 'function' && 'service' in value && value.serviceName === name) return value;
    if (value && typeof value === 'object' && !('format' in value)) {
      const inner = findService(value, name);
      if (inner) return inner;
    }
  }
  return undefined;
}

function preferZone(set: EndpointSet, zone: string): EndpointSet {
  for (const e of set.endpoints) if (e.zone === zone) return set.filter((x) => x.zone === zone);
  return set;
}
