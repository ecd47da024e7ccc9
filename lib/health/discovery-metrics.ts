import type { Observable, Subscription } from 'rxjs';
import { requireOptionalPeer } from '../core/optional-peer.js';
import type * as Prom from 'prom-client';
import type { DiscoveryEvent } from './discovery-events.js';

/** What the metrics read (a Discovery fits). */
export interface MetricsSource {
  readonly events$: Observable<DiscoveryEvent>;
  /** Backend name, for registry labels. */
  readonly backendName: string;
  /** Picks so far per service and endpoint address (read at scrape time). */
  pickCounts(): Iterable<{ service: string; endpoint: string; count: number }>;
  /** The backend's reachability, when it reports one. */
  registryReachable(): boolean | undefined;
}

/** A prom-client Registry (typed loosely so prom-client stays an optional dependency). */
export interface PromRegistryLike {
  getSingleMetric(name: string): unknown;
  removeSingleMetric(name: string): void;
  metrics(): Promise<string>;
}

/** Options of {@link DiscoveryMetrics.attach}. */
export interface DiscoveryMetricsOptions {
  /** Default: prom-client's global registry. */
  register?: PromRegistryLike;
  /** Metric name prefix. Default `switchyard_`. */
  prefix?: string;
}

/** The metrics (names without the prefix) and what they count. */
export const DISCOVERY_METRICS = {
  endpoints: 'known endpoints per service by health state (healthy, unhealthy, ejected)',
  endpoints_served: 'endpoints calls are balanced over, per service',
  endpoint_set_stale: '1 while a service is served from the last known set (registry unreachable)',
  panic_mode: '1 while a service is in panic mode (balancing over all known endpoints)',
  panic_total: 'times a service entered panic mode',
  picks_total: 'endpoints picked for calls, per service and endpoint',
  ejections_total: 'outlier ejections, per service and endpoint',
  health_checks_total: 'active health checks, per endpoint, kind and result (success, failure)',
  registry_errors_total: 'times a service could not be read from the registry (its set turned stale)',
  registry_reachable: '1 when the backend reports itself reachable, 0 when not',
  watch_lag_seconds: 'time from the backend building a snapshot to the client serving it',
  registration_state: "1 for the current state of the app's own registration, 0 for the others",
} as const;

type Metrics = {
  endpoints: Prom.Gauge<'service' | 'state'>;
  served: Prom.Gauge<'service'>;
  stale: Prom.Gauge<'service'>;
  panic: Prom.Gauge<'service'>;
  panicTotal: Prom.Counter<'service'>;
  picks: Prom.Counter<'service' | 'endpoint'>;
  ejections: Prom.Counter<'service' | 'endpoint'>;
  checks: Prom.Counter<'endpoint' | 'kind' | 'result'>;
  registryErrors: Prom.Counter<'service' | 'backend'>;
  reachable: Prom.Gauge<'backend'>;
  watchLag: Prom.Histogram<'service'>;
  registration: Prom.Gauge<'service' | 'instance' | 'state'>;
};

const REGISTRATION_STATES = ['unregistered', 'registering', 'registered', 'lost', 'deregistered', 'failed'];

/** Metric objects shared by every source attached to one registry and prefix. */
class MetricsHub {
  readonly sources = new Set<MetricsSource>();
  readonly metrics: Metrics;
  private readonly names: string[] = [];

  constructor(
    prom: typeof Prom,
    private readonly register: PromRegistryLike,
    prefix: string,
  ) {
    const registers = [register as Prom.Registry];
    const sources = this.sources;
    const name = (n: keyof typeof DISCOVERY_METRICS) => {
      const full = `${prefix}${n}`;
      // A metric left behind by someone else would make prom-client throw: take its place.
      if (register.getSingleMetric(full)) register.removeSingleMetric(full);
      this.names.push(full);
      return { name: full, help: DISCOVERY_METRICS[n], registers };
    };
    this.metrics = {
      endpoints: new prom.Gauge({ ...name('endpoints'), labelNames: ['service', 'state'] }),
      served: new prom.Gauge({ ...name('endpoints_served'), labelNames: ['service'] }),
      stale: new prom.Gauge({ ...name('endpoint_set_stale'), labelNames: ['service'] }),
      panic: new prom.Gauge({ ...name('panic_mode'), labelNames: ['service'] }),
      panicTotal: new prom.Counter({ ...name('panic_total'), labelNames: ['service'] }),
      picks: new prom.Counter({
        ...name('picks_total'),
        labelNames: ['service', 'endpoint'],
        // Picks are counted by the clients (no per-call metric update); read them at scrape time.
        collect() {
          this.reset();
          const totals = new Map<string, { service: string; endpoint: string; count: number }>();
          for (const source of sources) {
            for (const entry of source.pickCounts()) {
              const key = `${entry.service}\u0000${entry.endpoint}`;
              const known = totals.get(key);
              if (known) known.count += entry.count;
              else totals.set(key, { ...entry });
            }
          }
          for (const { service, endpoint, count } of totals.values()) this.inc({ service, endpoint }, count);
        },
      }),
      ejections: new prom.Counter({ ...name('ejections_total'), labelNames: ['service', 'endpoint'] }),
      checks: new prom.Counter({ ...name('health_checks_total'), labelNames: ['endpoint', 'kind', 'result'] }),
      registryErrors: new prom.Counter({ ...name('registry_errors_total'), labelNames: ['service', 'backend'] }),
      reachable: new prom.Gauge({
        ...name('registry_reachable'),
        labelNames: ['backend'],
        collect() {
          this.reset();
          for (const source of sources) {
            const reachable = source.registryReachable();
            if (reachable !== undefined) this.set({ backend: source.backendName }, reachable ? 1 : 0);
          }
        },
      }),
      watchLag: new prom.Histogram({
        ...name('watch_lag_seconds'),
        labelNames: ['service'],
        buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
      }),
      registration: new prom.Gauge({ ...name('registration_state'), labelNames: ['service', 'instance', 'state'] }),
    };
  }

  /** Folds one event into the metrics. */
  record(event: DiscoveryEvent, source: MetricsSource): void {
    const m = this.metrics;
    switch (event.type) {
      case 'endpoints':
        m.endpoints.set({ service: event.service, state: 'healthy' }, event.healthy);
        m.endpoints.set({ service: event.service, state: 'unhealthy' }, event.unhealthy);
        m.endpoints.set({ service: event.service, state: 'ejected' }, event.ejected);
        m.served.set({ service: event.service }, event.served);
        m.stale.set({ service: event.service }, event.state === 'stale' ? 1 : 0);
        m.panic.set({ service: event.service }, event.panic ? 1 : 0);
        break;
      case 'panic':
        if (event.active) m.panicTotal.inc({ service: event.service });
        break;
      case 'ejected':
        m.ejections.inc({ service: event.service, endpoint: event.address });
        break;
      case 'health-check':
        m.checks.inc({ endpoint: event.address, kind: event.kind, result: event.ok ? 'success' : 'failure' });
        break;
      case 'registry-error':
        m.registryErrors.inc({ service: event.service, backend: event.backend || source.backendName });
        break;
      case 'watch-lag':
        m.watchLag.observe({ service: event.service }, Math.max(0, event.lagMs) / 1000);
        break;
      case 'registration':
        for (const state of REGISTRATION_STATES)
          m.registration.set(
            { service: event.service, instance: event.instance, state },
            state === event.state ? 1 : 0,
          );
        break;
      default:
        break;
    }
  }

  close(): void {
    for (const name of this.names) {
      if (this.register.getSingleMetric(name)) this.register.removeSingleMetric(name);
    }
  }
}

const hubs = new WeakMap<object, Map<string, MetricsHub>>();

/**
 * Prometheus metrics of one (or more) Discovery, through the optional
 * `prom-client` package (loaded only when metrics are asked for). Several
 * sources attached to the same registry and prefix share the metrics.
 *
 * @example
 * const metrics = DiscoveryMetrics.attach(discovery); // then serve `await register.metrics()` at /metrics
 */
export class DiscoveryMetrics {
  private readonly subscription: Subscription;
  private closed = false;

  private constructor(
    private readonly hub: MetricsHub,
    private readonly hubKey: { register: PromRegistryLike; prefix: string },
    readonly source: MetricsSource,
  ) {
    hub.sources.add(source);
    this.subscription = source.events$.subscribe((event) => hub.record(event, source));
  }

  /** Starts recording `source`'s events into prom-client metrics. Throws when prom-client is not installed. */
  static attach(source: MetricsSource, options: DiscoveryMetricsOptions = {}): DiscoveryMetrics {
    const prom = loadPromClient();
    const register = options.register ?? prom.register;
    const prefix = options.prefix ?? 'switchyard_';
    let byPrefix = hubs.get(register);
    if (!byPrefix) hubs.set(register, (byPrefix = new Map()));
    let hub = byPrefix.get(prefix);
    if (!hub) byPrefix.set(prefix, (hub = new MetricsHub(prom, register, prefix)));
    return new DiscoveryMetrics(hub, { register, prefix }, source);
  }

  /** The registry the metrics live in. */
  get register(): PromRegistryLike {
    return this.hubKey.register;
  }

  /** Stops recording; the last source of a registry removes the metrics from it. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.subscription.unsubscribe();
    this.hub.sources.delete(this.source);
    if (this.hub.sources.size === 0) {
      this.hub.close();
      hubs.get(this.hubKey.register)?.delete(this.hubKey.prefix);
    }
  }
}

function loadPromClient(): typeof Prom {
  // Optional peer: only users who ask for metrics need it installed.
  return requireOptionalPeer<typeof Prom>('prom-client', 'metrics');
}
