import { ReplaySubject, Subject, type Observable, type Subscription } from 'rxjs';
import type { CallOutcome } from '../core/call-outcome.js';
import type { CompiledQuery } from '../core/discovery-query.js';
import type { Endpoint } from '../core/endpoint.js';
import { EndpointSet } from '../core/endpoint-set.js';
import type { NoEndpointsReason } from '../core/errors.js';
import { EMPTY_PICKER } from '../balancing/empty-picker.js';
import { LoadTracker } from '../balancing/endpoint-load.js';
import type { BalancingStrategy, PickContext, Picker } from '../balancing/picker.js';
import type { DiscoveryEvent } from '../health/discovery-events.js';
import { HealthOverlay, type CheckerSource, type ServiceHealth } from '../health/health-overlay.js';
import type { HealthSettings } from '../health/health-settings.js';
import type { DiscoveryLogger, Registry } from '../registry/registry.interface.js';

/** What a ServedEndpoints is built from. */
export interface ServedEndpointsDeps {
  service: string;
  registry: Registry;
  query: CompiledQuery;
  /** Prefer endpoints in this zone (all zones when it has none). */
  zone: string | undefined;
  strategy: BalancingStrategy;
  random: () => number;
  logger: DiscoveryLogger;
  health: HealthSettings;
  checkers: CheckerSource;
  emit: (event: DiscoveryEvent) => void;
}

/**
 * The data flow of one client, one way: registry set → health overlay
 * (active checks, ejections, panic) → zone preference → picker. It keeps the
 * served snapshot, the picker built for it and the load records every
 * transport feeds, so every transport of a service balances through the
 * same picker and the same loads.
 */
export class ServedEndpoints {
  private readonly sets = new ReplaySubject<EndpointSet>(1);
  private current: EndpointSet;
  private currentPicker: Picker = EMPTY_PICKER;
  readonly loads = new LoadTracker();
  private readonly overlay: HealthOverlay;
  private readonly subscription: Subscription;
  private readonly departures = new Subject<EndpointSet>();
  private rawState: EndpointSet['state'] | undefined;
  private closed = false;

  /** Replays the current served set, then each change. */
  readonly sets$: Observable<EndpointSet> = this.sets.asObservable();

  constructor(private readonly deps: ServedEndpointsDeps) {
    this.current = EndpointSet.initial(deps.service);
    // Zone preference comes after health, so a zone whose endpoints all fail falls back to the others.
    this.overlay = new HealthOverlay({
      service: deps.service,
      settings: deps.health,
      checkers: deps.checkers,
      logger: deps.logger,
      serve: (set) => {
        const taking = withoutDraining(set);
        this.accept(deps.zone ? preferZone(taking, deps.zone) : taking);
      },
      emit: deps.emit,
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
        deps.logger.error(`watch of '${deps.service}' failed: ${message}; serving the last known set`);
        const stale = (lastRaw ?? EndpointSet.initial(deps.service)).stale(`watch failed: ${message}`);
        this.observeRaw(stale);
        this.overlay.update(stale);
      },
    });
  }

  /** The served snapshot now. */
  get snapshot(): EndpointSet {
    return this.current;
  }

  /** The picker of the served snapshot. */
  get picker(): Picker {
    return this.currentPicker;
  }

  /** Every endpoint the registry knows (served or not). */
  get known(): EndpointSet {
    return this.overlay.known() ?? this.current;
  }

  get health(): ServiceHealth {
    return this.overlay.status;
  }

  /** One pick; undefined when nothing is served. O(1) or O(log n), no allocation. */
  pick(context?: PickContext): Endpoint | undefined {
    return this.currentPicker.pick(context);
  }

  /** A call's outcome, for outlier detection. */
  recordOutcome(endpoint: Endpoint, outcome: CallOutcome): void {
    this.overlay.recordOutcome(endpoint, outcome);
  }

  describe(endpoint: Endpoint): { state: 'healthy' | 'unhealthy' | 'ejected'; detail: string | undefined } {
    return this.overlay.describe(endpoint);
  }

  /** Why nothing can be picked now. */
  reason(): NoEndpointsReason {
    const set = this.current;
    if (set.state === 'stale') return 'unreachable';
    if (!set.resolved) return 'pending';
    if (set.state === 'empty') return 'empty';
    return 'filtered';
  }

  /** Registry sets as they arrive, before health: used to forget per-endpoint activity of departed endpoints. */
  get raw$(): Observable<EndpointSet> {
    return this.departures.asObservable();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.subscription.unsubscribe();
    this.overlay.close();
    this.departures.complete();
    this.sets.complete();
  }

  private accept(set: EndpointSet): void {
    if (this.closed) return;
    const previous = this.current;
    this.current = set;
    if (set.endpoints !== previous.endpoints || this.currentPicker === EMPTY_PICKER) this.rebuild(set);
    if (set.state !== previous.state) {
      const text = `service '${this.deps.service}': endpoint set ${set.state}${set.reason ? ` (${set.reason})` : ''}, ${set.size} endpoint(s)`;
      if (set.state === 'stale') this.deps.logger.warn(text);
      else this.deps.logger.log(text);
    }
    this.sets.next(set);
  }

  private rebuild(set: EndpointSet): void {
    try {
      this.currentPicker =
        set.size === 0
          ? EMPTY_PICKER
          : this.deps.strategy.build(
              // A plain copy: pickers index it on every call, and frozen arrays index slower in V8.
              set.endpoints.slice(),
              { loads: this.loads, random: this.deps.random, previous: this.currentPicker },
            );
    } catch (error) {
      // A strategy that refuses this set (e.g. bad weights) keeps the previous picker.
      this.deps.logger.error(
        `strategy '${this.deps.strategy.name}' rejected the endpoints of '${this.deps.service}': ${(error as Error).message}`,
      );
    }
    this.loads.retain(set.endpoints);
  }

  /** Registry-side facts of a raw snapshot: watch lag, and registry errors (a set turning stale). */
  private observeRaw(set: EndpointSet): void {
    if (this.closed) return;
    const now = Date.now();
    if (set.state === 'stale' && this.rawState !== 'stale') {
      this.deps.emit({
        type: 'registry-error',
        service: this.deps.service,
        backend: this.deps.registry.backend,
        reason: set.reason ?? 'registry unreachable',
        at: now,
      });
    }
    this.rawState = set.state;
    if (set.resolved) this.departures.next(set);
    if (set.state !== 'stale') {
      this.deps.emit({
        type: 'watch-lag',
        service: this.deps.service,
        lagMs: Math.max(0, now - set.updatedAt),
        at: now,
      });
    }
  }
}

/**
 * Instances the registry lists as not healthy (a Kubernetes endpoint that is
 * terminating but still serving) stay known, so calls in flight on them
 * finish and are recorded, but take no new calls.
 */
function withoutDraining(set: EndpointSet): EndpointSet {
  for (const e of set.endpoints) if (!e.instance.healthy) return set.filter((x) => x.instance.healthy);
  return set;
}

function preferZone(set: EndpointSet, zone: string): EndpointSet {
  for (const e of set.endpoints) if (e.zone === zone) return set.filter((x) => x.zone === zone);
  return set;
}
