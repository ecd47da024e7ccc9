// The public face of a service's client: each method is a short, documented
// delegate to the core (served endpoints, call handles, retries) or to a
// transport. Its length is its JSDoc; splitting it would scatter the API.
import type { Channel, Client, ServiceClientConstructor } from '@grpc/grpc-js';
import { filter, firstValueFrom, Subject, timeout, type Observable, type Subscription } from 'rxjs';
import { endpointVerdict, type CallOutcome } from '../core/call-outcome.js';
import type { CompiledQuery, DiscoveryQuery } from '../core/discovery-query.js';
import type { Endpoint } from '../core/endpoint.js';
import type { EndpointSet } from '../core/endpoint-set.js';
import { ClosedError, DiscoveryError, NoEndpointsError, type OverloadedError } from '../core/errors.js';
import { resolveOverload, type OverloadSettings } from '../core/config/overload-options.js';
import { Admission } from './overload/admission.js';
import { LatencyWindow } from './overload/latency-window.js';
import type { BalancingStrategy, EndpointLoad, PickContext, Picker } from '../balancing/picker.js';
import { onCallEnd, onCallStart } from '../balancing/endpoint-load.js';
import type { LoadTracker } from '../balancing/endpoint-load.js';
import type { DiscoveryEvent } from '../health/discovery-events.js';
import { healthCheckerPool } from '../health/endpoint-health-checker.js';
import type { CheckerSource, ServiceHealth } from '../health/health-overlay.js';
import { PASS_THROUGH_HEALTH, type HealthSettings } from '../health/health-settings.js';
import type { DiscoveryLogger, Registry } from '../registry/registry.interface.js';
import { CallHandle, type CallTracker } from './call-handle.js';
import type { CallOptions, HttpFetchInit, ReadyOptions, ServiceClientOptions } from './client-options.js';
import type { ClientProxy } from '@nestjs/microservices';
import type { Dispatcher } from 'undici';
import type {
  CallAttempt,
  ClientTransports,
  GrpcClientTransport,
  HttpClientTransport,
  TcpClientTransport,
} from './client-transports.js';
import { EndpointActivity } from './endpoint-activity.js';
import { EndpointAvoidance } from './endpoint-avoidance.js';
import { resolveRetryOptions, RetryBudget, type ResolvedRetryOptions } from './retry-policy.js';
import type { HedgingHost } from './overload/hedging.js';
import { ServedEndpoints } from './served-endpoints.js';

/** Internals a ServiceClient is built from; made by `Discovery.client()`. */
export interface ServiceClientDeps {
  registry: Registry;
  query: CompiledQuery;
  strategy: BalancingStrategy;
  logger: DiscoveryLogger;
  random?: () => number;
  /** The module-wide retry default. */
  retry?: ResolvedRetryOptions;
  /** Health overlay settings, checker source and event sink; none: the registry's sets are served as they are. */
  health?: { settings: HealthSettings; checkers?: CheckerSource; emit?: (event: DiscoveryEvent) => void };
  /** The transports this client can call through, each made on first use. */
  transports?: ClientTransports;
  /** Overload protection and tail-latency settings (the module's, with this client's own sections merged in). */
  overload?: OverloadSettings;
  /** This client's index for deterministic subsetting. */
  clientIndex?: number;
}

/**
 * The latency an overloaded answer (RESOURCE_EXHAUSTED, 429) counts as, ms:
 * peak-EWMA adopts it at once, so p2c_ewma sends the endpoint less until it
 * answers normally again (as Linkerd's balancer penalises overload).
 */
export const OVERLOAD_PENALTY_MS = 1_000;

/** Picks again this many times to avoid an endpoint a call already failed on. */
const REPICKS = 3;

/** One endpoint as the admin view shows it. */
export interface EndpointReport {
  endpoint: Endpoint;
  /** In the set the picker uses right now. */
  served: boolean;
  /**
   * `unhealthy`: failing active checks, or `healthy: false` in the registry;
   * `ejected`: by outlier detection; `drained`: weight 0 in the registry
   * (listed, never picked).
   */
  health: 'healthy' | 'unhealthy' | 'ejected' | 'drained';
  /** Why it is unhealthy, ejected (and until when) or drained. */
  detail: string | undefined;
  inFlight: number;
  ewmaMs: number | undefined;
  picksLastMinute: number;
  failuresLastMinute: number;
}

/**
 * A client for one service: an observable endpoint set, one picker for every
 * transport, load and outcome tracking, retries with a budget — and the
 * transports on top (a cached gRPC channel per endpoint, balanced stubs).
 * Safe to share: every method may be called concurrently.
 *
 * @example
 * constructor(@InjectServiceClient('orders') private readonly orders: ServiceClient) {}
 * const channel = await this.orders.getChannel({ key: customerId });
 */
export class ServiceClient implements HedgingHost, CallTracker {
  readonly service: string;
  readonly strategy: string;
  readonly random: () => number;
  readonly budget: RetryBudget;
  private readonly retry: ResolvedRetryOptions;
  private readonly served: ServedEndpoints;
  private readonly activity = new EndpointActivity();
  private readonly avoidance = new EndpointAvoidance();
  private readonly events = new Subject<DiscoveryEvent>();
  private readonly abort = new AbortController();
  private readonly activitySubscription: Subscription;
  private readonly admission: Admission;
  private readonly latencies = new LatencyWindow();
  /** Overload protection and tail-latency settings of this client. */
  readonly overload: OverloadSettings;
  private grpcTransport: GrpcClientTransport | undefined;
  private httpTransport: HttpClientTransport | undefined;
  private tcpTransport: TcpClientTransport | undefined;
  private closed = false;

  /**
   * Health, ejection, panic, registry-error and watch-lag events of this
   * service (see DiscoveryEvent); completes on close.
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
    this.random = deps.random ?? Math.random;
    this.retry =
      options.retry !== undefined
        ? resolveRetryOptions(options.retry, `clients.${options.name}.retry`)
        : (deps.retry ?? resolveRetryOptions(undefined));
    this.budget = new RetryBudget(this.retry.budget);
    this.overload = deps.overload ?? resolveOverload(undefined);
    this.served = new ServedEndpoints({
      service: options.name,
      registry: deps.registry,
      query: deps.query,
      locality: { zone: options.zone, region: options.region },
      overload: this.overload,
      clientIndex: deps.clientIndex ?? 0,
      strategy: deps.strategy,
      random: this.random,
      logger: deps.logger,
      health: deps.health?.settings ?? PASS_THROUGH_HEALTH,
      checkers: deps.health?.checkers ?? healthCheckerPool,
      emit: (event) => this.emit(event),
    });
    this.endpoints$ = this.served.sets$;
    this.admission = new Admission(options.name, this.overload, this.served.loads, this.random);
    this.activitySubscription = this.served.raw$.subscribe((set) => {
      this.activity.retain(set);
      this.avoidance.retain(set);
    });
  }

  /** The latest snapshot (revision 0 and no endpoints before the registry first answers). */
  snapshot(): EndpointSet {
    return this.served.snapshot;
  }

  /**
   * Resolves once at least `minEndpoints` endpoints are served; rejects with
   * {@link NoEndpointsError} after `timeoutMs`, saying how many are known,
   * served and wanted.
   *
   * @example
   * await client.ready({ minEndpoints: 2, timeoutMs: 5_000 });
   */
  async ready(options: ReadyOptions = {}): Promise<void> {
    const min = options.minEndpoints ?? 1;
    const timeoutMs = options.timeoutMs ?? this.options.readyTimeoutMs ?? 10_000;
    if (this.closed) throw new ClosedError(`client for '${this.service}' was closed`);
    if (this.served.snapshot.size >= min) return;
    try {
      await firstValueFrom(
        this.endpoints$.pipe(
          filter((set) => set.size >= min),
          timeout({ first: timeoutMs }),
        ),
      );
    } catch {
      if (this.closed) throw new ClosedError(`client for '${this.service}' was closed`);
      const served = this.served.snapshot.size;
      const known = this.served.known.size;
      const reason = served > 0 ? 'too-few' : this.served.reason();
      throw new NoEndpointsError(
        this.service,
        reason,
        `waited ${timeoutMs} ms for ${min} served endpoint(s): ${known} known, ${served} served`,
      );
    }
  }

  /**
   * Picks an endpoint with the client's strategy. `key` feeds consistent
   * hashing. Throws {@link NoEndpointsError} saying whether the registry is
   * unreachable or the service has zero instances.
   */
  pick(context?: PickContext): Endpoint {
    const endpoint = this.pickEndpoint(context);
    this.activity.picked(endpoint);
    return endpoint;
  }

  /**
   * A pick that is not counted as one (transports count the pick they use
   * through {@link startCall}). Throws {@link NoEndpointsError} when nothing is served.
   */
  pickEndpoint(context?: PickContext): Endpoint {
    const endpoint = this.served.pick(context);
    if (endpoint === undefined) {
      throw new NoEndpointsError(this.service, this.served.reason(), this.served.snapshot.reason);
    }
    if (this.avoidance.size === 0 || !this.avoidance.avoids(endpoint.key, Date.now())) return endpoint;
    return this.pickAround(endpoint, context);
  }

  /**
   * Stay away from an endpoint until `untilMs` (epoch ms): what a server's
   * `Retry-After` asks for. Picks go around it while others are served; it
   * is not ejected (an overload signal, not a failure).
   *
   * @example
   * client.avoidEndpoint(endpoint, Date.now() + retryAfterSeconds * 1_000);
   */
  avoidEndpoint(endpoint: Endpoint, untilMs: number): void {
    this.avoidance.avoid(endpoint.key, untilMs);
  }

  /** When an avoided endpoint may be picked again (undefined when it is not avoided). */
  avoidedUntil(endpoint: Endpoint): number | undefined {
    return this.avoidance.size === 0 ? undefined : this.avoidance.avoidedUntil(endpoint.key, Date.now());
  }

  /** A pick that goes around avoided endpoints, as pickAvoiding goes around failed ones. */
  private pickAround(avoided: Endpoint, context: PickContext | undefined): Endpoint {
    const now = Date.now();
    for (let i = 1; i <= REPICKS; i++) {
      const key = context?.key;
      const endpoint = this.served.pick(key === undefined ? context : { key: `${key}#avoid${i}` });
      if (endpoint !== undefined && !this.avoidance.avoids(endpoint.key, now)) return endpoint;
    }
    return this.served.snapshot.endpoints.find((e) => !this.avoidance.avoids(e.key, now)) ?? avoided;
  }

  /**
   * A pick that avoids endpoints this call already failed on, when others
   * are served: a keyless call picks again, a keyed one moves to derived
   * keys (`key#1`, `key#2` ...), so the same key always lands on the same
   * replacement — as the gRPC LB policy does.
   */
  pickAvoiding(context: PickContext, tried: ReadonlySet<string>): Endpoint {
    let endpoint = this.pickEndpoint(context);
    const endpoints = this.served.snapshot.endpoints;
    if (!tried.has(endpoint.key) || tried.size >= endpoints.length) return endpoint;
    for (let i = 1; i <= REPICKS; i++) {
      endpoint = this.pickEndpoint(context.key === undefined ? context : { key: `${context.key}#${i}` });
      if (!tried.has(endpoint.key)) return endpoint;
    }
    return endpoints.find((e) => !tried.has(e.key)) ?? endpoint;
  }

  /**
   * Starts a call on a picked endpoint: counts the pick and the call in
   * flight. The transport completes the returned handle with the outcome.
   *
   * @example
   * const call = client.startCall(client.pickEndpoint({ key })); ...; call.complete('success');
   */
  startCall(endpoint: Endpoint): CallHandle {
    const refusal = this.refusal(endpoint);
    if (refusal) throw refusal;
    return new CallHandle(endpoint, this);
  }

  /**
   * Why a new call to `endpoint` must not start now (circuit-breaker limits,
   * adaptive throttling), or undefined. `startCall` throws it; the gRPC LB
   * policy fails the pick with it.
   */
  refusal(endpoint: Endpoint): OverloadedError | undefined {
    return this.admission.refusal(endpoint, this.served.loads.load(endpoint));
  }

  /** @internal The start of a call, for transports that track calls without a handle per call. */
  callStarted(endpoint: Endpoint): EndpointLoad {
    this.activity.picked(endpoint);
    const load = this.served.loads.load(endpoint);
    onCallStart(load);
    return load;
  }

  /** @internal The end of a call started with {@link callStarted}. */
  callEnded(endpoint: Endpoint, load: EndpointLoad, latencyMs: number, outcome: CallOutcome): void {
    if (outcome === 'success') this.latencies.record(latencyMs);
    else if (outcome === 'overload' && latencyMs < OVERLOAD_PENALTY_MS) latencyMs = OVERLOAD_PENALTY_MS;
    onCallEnd(load, latencyMs, performance.now());
    this.admission.finished(outcome);
    this.callFinished(endpoint, outcome);
  }

  /** Feeds an outcome into outlier detection and the failure counters. */
  private callFinished(endpoint: Endpoint, outcome: CallOutcome): void {
    if (endpointVerdict(outcome) === 'failure') this.activity.failed(endpoint);
    this.served.recordOutcome(endpoint, outcome);
  }

  /**
   * Feeds the outcome of a call made by other means into outlier detection
   * and the failure counters.
   *
   * @example
   * client.reportCallOutcome(endpoint, 'connection-failure');
   */
  reportCallOutcome(endpoint: Endpoint, outcome: CallOutcome): void {
    this.callFinished(endpoint, outcome);
  }

  /** True when at least one endpoint is served. */
  hasEndpoints(): boolean {
    return this.served.snapshot.size > 0;
  }

  /** Endpoints served now. */
  servedCount(): number {
    return this.served.snapshot.size;
  }

  /** Waits for a first endpoint on behalf of a call, counted against circuit_breaker.max_pending. */
  async awaitEndpoints(): Promise<void> {
    this.admission.enterPending();
    try {
      await this.ready();
    } finally {
      this.admission.leavePending();
    }
  }

  /** How long a hedged call waits before its next attempt, ms (the fixed delay, or the p95 of recent latency). */
  hedgeDelayMs(): number | undefined {
    const delay = this.overload.hedging.delayMs;
    if (delay === 'p95') return this.latencies.percentile95();
    return delay > 0 ? delay : undefined;
  }

  /** The picker every transport of this client picks from. */
  get picker(): Picker {
    return this.served.picker;
  }

  /** The in-flight and latency records the load-aware strategies read. */
  get loads(): LoadTracker {
    return this.served.loads;
  }

  /** Aborted when the client closes. */
  get closing(): AbortSignal {
    return this.abort.signal;
  }

  /** Picks so far per endpoint address (endpoints still known). */
  pickCounts(): Map<string, number> {
    return this.activity.counts();
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
    const served = this.served.snapshot;
    return this.served.known.endpoints.map((endpoint) => {
      const health = this.served.describe(endpoint);
      const recent = this.activity.recent(endpoint.key);
      const load = this.served.loads.peek(endpoint.key);
      return {
        endpoint,
        served: served.has(endpoint.key),
        health: health.state,
        detail: health.detail,
        inFlight: load?.inFlight ?? 0,
        ewmaMs: load && load.ewmaMs > 0 ? load.ewmaMs : undefined,
        picksLastMinute: recent.picks,
        failuresLastMinute: recent.failures,
      };
    });
  }

  /** Known / healthy / unhealthy / ejected / served counts and panic mode, as of now. */
  get healthStatus(): ServiceHealth {
    return this.served.health;
  }

  /** Asks the registry for an early re-read (DNS re-resolution, ...) after a transport saw a connection fail. */
  refreshEndpoints(): boolean {
    return this.deps.registry.refresh?.(this.service) ?? false;
  }

  /** The retry policy this client uses (and hands grpc-js for `discovery:///` channels). */
  get retryPolicy(): ResolvedRetryOptions {
    return this.retry;
  }

  /** The strategy the picker is built with. */
  get balancingStrategy(): BalancingStrategy {
    return this.deps.strategy;
  }

  /**
   * A cached grpc-js Channel to a picked endpoint, waiting (up to the
   * client's `readyTimeoutMs`) for the first endpoint when none is known yet.
   *
   * @example
   * const stub = new GreeterClient('unused', credentials, { channelOverride: await client.getChannel() });
   */
  getChannel(context?: PickContext): Promise<Channel> {
    return this.grpc().getChannel(context);
  }

  /**
   * A grpc-js stub for `serviceName` (e.g. `Greeter` or `greeter.Greeter`)
   * over ONE balanced channel to `discovery:///<service>`: calls are spread
   * per call by the client's picker, retried by gRPC's retry policy, and
   * follow endpoint changes. Needs the `proto` option (or pass a client constructor).
   *
   * @example
   * const greeter = client.getService<GreeterClient>('Greeter');
   * greeter.sayHello({ name: 'x' }, (err, reply) => ...);
   */
  getService<T = Client>(service: string | ServiceClientConstructor): T {
    return this.grpc().getService<T>(service);
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
  call<T>(fn: (attempt: CallAttempt) => Promise<T>, options?: CallOptions): Promise<T> {
    return this.grpc().call(fn, options);
  }

  /**
   * HTTP: the platform's `fetch`, balanced per request over this service's
   * endpoints (an undici Pool per endpoint). Takes a path, or a URL whose
   * host is the service's name; retries what HTTP's rules allow (see
   * docs/transports/http.md). The consistent-hash key is `key`, or the
   * `x-hash-key` request header.
   *
   * @example
   * const res = await client.fetch('/api/orders/42', { key: customerId });
   */
  fetch(input: string | URL, init?: HttpFetchInit): Promise<Response> {
    try {
      return this.transport('http').fetch(input, init);
    } catch (error) {
      // A closed client or no HTTP transport: a rejection, as fetch reports everything.
      return Promise.reject(error instanceof Error ? error : new DiscoveryError(String(error)));
    }
  }

  /** @internal HTTP: one undici dispatch sent to this service (what `discovery.httpDispatcher()` routes here). */
  sendHttp(options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    return this.transport('http').send(options, handler);
  }

  /**
   * Nest's TCP transport: a ClientProxy balanced per `send()` / `emit()`.
   *
   * @example
   * const total = await firstValueFrom(client.proxy().send('orders.total', { id }));
   */
  proxy(): ClientProxy {
    return this.transport('tcp').proxy();
  }

  /** grpc-js target of the balanced channel (`discovery://<discovery-id>/<service>`). */
  get balancedTarget(): string {
    return this.grpc().balancedTarget;
  }

  /** Stops watching and closes every connection of every transport. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.abort.abort();
    this.activitySubscription.unsubscribe();
    this.served.close();
    this.grpcTransport?.close();
    await Promise.allSettled([this.httpTransport?.close(), this.tcpTransport?.close()]);
    this.events.complete();
  }

  /** True once `close()` was called. */
  get isClosed(): boolean {
    return this.closed;
  }

  private grpc(): GrpcClientTransport {
    if (this.closed) throw new ClosedError(`client for '${this.service}' was closed`);
    if (this.grpcTransport) return this.grpcTransport;
    const factory = this.deps.transports?.grpc;
    if (!factory) throw new DiscoveryError(`client '${this.service}' was made without the gRPC transport`);
    return (this.grpcTransport = factory(this));
  }

  private transport(kind: 'http'): HttpClientTransport;
  private transport(kind: 'tcp'): TcpClientTransport;
  private transport(kind: 'http' | 'tcp'): HttpClientTransport | TcpClientTransport {
    if (this.closed) throw new ClosedError(`client for '${this.service}' was closed`);
    if (kind === 'http') {
      const factory = this.deps.transports?.http;
      if (!factory) throw new DiscoveryError(`client '${this.service}' was made without the HTTP transport`);
      return (this.httpTransport ??= factory(this));
    }
    const factory = this.deps.transports?.tcp;
    if (!factory) throw new DiscoveryError(`client '${this.service}' was made without the TCP transport`);
    return (this.tcpTransport ??= factory(this));
  }

  private emit(event: DiscoveryEvent): void {
    if (this.closed) return;
    this.events.next(event);
    this.deps.health?.emit?.(event);
  }
}
