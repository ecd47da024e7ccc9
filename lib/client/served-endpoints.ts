// The chain from a registry snapshot to the picker for one client (subset,
// overlay, marks, levels, lazy rebuild): one owner, kept in one file.
import { ReplaySubject, Subject, type Observable, type Subscription } from 'rxjs';
import type { CallOutcome } from '../core/call-outcome.js';
import type { CompiledQuery } from '../core/discovery-query.js';
import type { Endpoint } from '../core/endpoint.js';
import { EndpointSet } from '../core/endpoint-set.js';
import type { NoEndpointsReason } from '../core/errors.js';
import { receivesTraffic } from '../core/service-instance.js';
import { EMPTY_PICKER } from '../balancing/empty-picker.js';
import { LoadTracker } from '../balancing/endpoint-load.js';
import type { BalancingStrategy, PickContext, Picker } from '../balancing/picker.js';
import type { DiscoveryEvent } from '../health/discovery-events.js';
import { HealthOverlay, type CheckerSource, type ServiceHealth } from '../health/health-overlay.js';
import type { HealthSettings } from '../health/health-settings.js';
import type { DiscoveryLogger, Registry } from '../registry/registry.interface.js';
import type { OverloadSettings } from '../core/config/overload-options.js';
import { SlowStart, SlowStartPicker } from './overload/slow-start.js';
import { priorityLoads, priorityOf, PriorityPicker, type Locality } from './priority-levels.js';
import { deterministicSubset } from './subsetting.js';
import { MAX_DEFER_MS, pickerRebuilds, type RebuildBudget } from './rebuild-budget.js';
import { clientUpdates } from './update-scheduler.js';

/** The set before any: what the first set's diff is taken against. */
const EMPTY_SET = EndpointSet.initial('');

/** What a ServedEndpoints is built from. */
export interface ServedEndpointsDeps {
  service: string;
  registry: Registry;
  query: CompiledQuery;
  /** Where the caller runs: endpoints in its zone (then region) are served first. */
  locality: Locality;
  /** Slow start, priority failover and subsetting settings (and the rest of overload protection). */
  overload: OverloadSettings;
  /** This client's index for deterministic subsetting. */
  clientIndex: number;
  strategy: BalancingStrategy;
  random: () => number;
  logger: DiscoveryLogger;
  health: HealthSettings;
  checkers: CheckerSource;
  emit: (event: DiscoveryEvent) => void;
  /** The rebuild budget (default the process-wide {@link pickerRebuilds}). */
  rebuilds?: RebuildBudget;
}

/** How an endpoint stands, as the admin view shows it. */
export interface EndpointStanding {
  /** `drained`: weight 0 in the registry; `unhealthy`: failing checks, or `healthy: false` in the registry. */
  state: 'healthy' | 'unhealthy' | 'ejected' | 'drained';
  detail: string | undefined;
}

/**
 * The data flow of one client, one way: registry set → subset (when
 * subsetting) → health overlay (active checks, ejections, panic) → registry
 * marks (weight 0 drains, `healthy: false`) → priority levels (zone, region
 * or a priority tag, spilling over as a level degrades) → picker (gated by
 * slow start). It keeps the served snapshot, the picker built for it and the
 * load records every transport feeds, so every transport of a service
 * balances through the same picker and the same loads.
 *
 * At scale (a gateway over 1,000 services that churn all day) a change costs
 * what changed: each step follows the snapshots' diffs; registry sets go
 * through the process-wide {@link clientUpdates} scheduler, so a burst is
 * spread over turns of the event loop (registry I/O runs between them) and a
 * service's queued update is replaced by its newer one; and the picker is
 * rebuilt lazily, on the first pick after a change, so a burst of changes
 * costs one rebuild and a service nobody calls costs none. While the
 * process's rebuild budget ({@link pickerRebuilds}) is spent, a changed
 * service keeps picking from its previous picker for up to a second: a pick
 * of an endpoint that left (or changed) rebuilds at once, so only newcomers
 * and weight changes wait.
 */
export class ServedEndpoints {
  private readonly sets = new ReplaySubject<EndpointSet>(1);
  private current: EndpointSet;
  private currentPicker: Picker = EMPTY_PICKER;
  /** The served set changed since the picker was built: rebuild on the next pick. */
  private pickerStale = false;
  /** When the picker went stale (on the rebuild budget's clock), and how long it may wait over budget. */
  private staleSince = 0;
  private maxWaitMs = MAX_DEFER_MS;
  /** What `picker` hands out: picks through {@link pick}, so transports get the same deferral and checks. */
  private readonly view: Picker = { pick: (context) => this.pick(context) };
  /** The overlay's latest set, and the keys in it the registry marks (weight 0, `healthy: false`). */
  private overlaySet: EndpointSet | undefined;
  private readonly marked = new Set<string>();
  readonly loads = new LoadTracker();
  private readonly overlay: HealthOverlay;
  private readonly subscription: Subscription;
  private readonly departures = new Subject<EndpointSet>();
  private readonly slowStart: SlowStart;
  private rawState: EndpointSet['state'] | undefined;
  private closed = false;
  private readonly rebuilds: RebuildBudget;

  /** Replays the current served set, then each change. */
  readonly sets$: Observable<EndpointSet> = this.sets.asObservable();

  constructor(private readonly deps: ServedEndpointsDeps) {
    this.current = EndpointSet.initial(deps.service);
    this.rebuilds = deps.rebuilds ?? pickerRebuilds;
    this.slowStart = new SlowStart(deps.overload.slowStart);
    // Priority levels come after health and the registry's marks, so a zone
    // whose endpoints fail or are drained spills over to the others. The marks
    // come after the overlay so that panic mode (which serves every known
    // endpoint) still never serves a drained one.
    this.overlay = new HealthOverlay({
      service: deps.service,
      settings: deps.health,
      checkers: deps.checkers,
      logger: deps.logger,
      serve: (set) => this.accept(this.withoutMarked(set)),
      emit: deps.emit,
    });
    const { size } = deps.overload.subsetting;
    let lastRaw: EndpointSet | undefined;
    this.subscription = deps.registry.watch(deps.query.query).subscribe({
      next: (raw) =>
        clientUpdates.submit(this, () => {
          if (this.closed) return;
          try {
            const set = size > 0 ? deterministicSubset(raw, size, deps.clientIndex) : raw;
            lastRaw = set;
            this.observeRaw(set);
            this.overlay.update(set);
          } catch (error) {
            deps.logger.error(
              `service '${deps.service}': updating the endpoint set failed: ${(error as Error).message}`,
            );
          }
        }),
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

  /** The picker of the served snapshot (each pick goes through {@link pick}). */
  get picker(): Picker {
    return this.view;
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
    if (!this.pickerStale) return this.currentPicker.pick(context);
    if (this.currentPicker === EMPTY_PICKER || this.rebuilds.due(this.staleSince, this.maxWaitMs)) {
      this.rebuild();
      return this.currentPicker.pick(context);
    }
    // Over budget: the previous picker, as long as what it picks is still served as it was.
    const endpoint = this.currentPicker.pick(context);
    if (endpoint !== undefined && this.current.get(endpoint.key) === endpoint) return endpoint;
    this.rebuild();
    return this.currentPicker.pick(context);
  }

  /** A call's outcome, for outlier detection. */
  recordOutcome(endpoint: Endpoint, outcome: CallOutcome): void {
    this.overlay.recordOutcome(endpoint, outcome);
  }

  /** How an endpoint stands: the registry's marks first, then the health overlay's view. */
  describe(endpoint: Endpoint): EndpointStanding {
    if (endpoint.weight === 0)
      return { state: 'drained', detail: 'weight 0 in the registry: listed, never picked until its weight rises' };
    if (!endpoint.instance.healthy)
      return { state: 'unhealthy', detail: 'the registry marks it healthy: false: listed, never picked' };
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
    clientUpdates.cancel(this);
    this.subscription.unsubscribe();
    this.overlay.close();
    this.departures.complete();
    this.sets.complete();
  }

  private accept(set: EndpointSet): void {
    if (this.closed) return;
    const previous = this.current;
    this.current = set;
    const diff = set.diffFrom(previous);
    this.slowStart.observe(previous, set, diff);
    // Departed endpoints' load records go, unless calls are still in flight on them.
    this.loads.forget(diff.removed);
    if ((set.endpoints !== previous.endpoints || this.currentPicker === EMPTY_PICKER) && !this.pickerStale) {
      this.pickerStale = true;
      this.staleSince = this.rebuilds.now();
      // Half to all of the longest wait: services that changed together do not rebuild together.
      this.maxWaitMs = MAX_DEFER_MS * (0.5 + 0.5 * this.deps.random());
    }
    if (set.state !== previous.state) {
      const text = `service '${this.deps.service}': endpoint set ${set.state}${set.reason ? ` (${set.reason})` : ''}, ${set.size} endpoint(s)`;
      if (set.state === 'stale') this.deps.logger.warn(text);
      else this.deps.logger.log(text);
    }
    this.sets.next(set);
  }

  private rebuild(): void {
    this.pickerStale = false;
    const set = this.current;
    const started = this.rebuilds.now();
    try {
      const picker = set.size === 0 ? EMPTY_PICKER : this.buildPicker(set);
      this.currentPicker =
        this.slowStart.enabled && picker !== EMPTY_PICKER
          ? new SlowStartPicker(picker, this.slowStart, this.deps.random)
          : picker;
    } catch (error) {
      // A strategy that refuses this set (e.g. bad weights) keeps the previous picker.
      this.deps.logger.error(
        `strategy '${this.deps.strategy.name}' rejected the endpoints of '${this.deps.service}': ${(error as Error).message}`,
      );
    } finally {
      this.rebuilds.spend(this.rebuilds.now() - started);
    }
  }

  /**
   * The endpoints the registry says may take traffic: weight above 0 (0 is a
   * drain marker) and not marked `healthy: false` (also a Kubernetes endpoint
   * that is terminating but still serving). The others stay known, so calls in
   * flight on them finish and are recorded, but they take no new calls. The
   * marked keys are followed through the overlay's diffs: a set with none
   * passes as it is, without a scan.
   */
  private withoutMarked(set: EndpointSet): EndpointSet {
    const diff = this.overlaySet === undefined ? set.diffFrom(EMPTY_SET) : set.diffFrom(this.overlaySet);
    this.overlaySet = set;
    for (const endpoint of diff.removed) this.marked.delete(endpoint.key);
    for (const endpoints of [diff.added, diff.updated]) {
      for (const endpoint of endpoints) {
        if (receivesTraffic(endpoint.instance)) this.marked.delete(endpoint.key);
        else this.marked.add(endpoint.key);
      }
    }
    return this.marked.size === 0 ? set : set.filter((x) => receivesTraffic(x.instance));
  }

  /** One picker over the served set, or one per priority level behind a PriorityPicker. */
  private buildPicker(set: EndpointSet): Picker {
    const { locality } = this.deps;
    const { tag, overprovisioningFactor } = this.deps.overload.priority;
    const levels = new Map<number, { served: Endpoint[]; total: number }>();
    for (const endpoint of this.known.endpoints) {
      // Drained and `healthy: false` instances are not capacity: they do not dilute their level's health.
      if (!receivesTraffic(endpoint.instance)) continue;
      const level = priorityOf(endpoint, locality, tag);
      const entry = levels.get(level) ?? { served: [], total: 0 };
      entry.total++;
      levels.set(level, entry);
    }
    for (const endpoint of set.endpoints) {
      const level = priorityOf(endpoint, locality, tag);
      const entry = levels.get(level) ?? { served: [], total: 0 };
      if (!levels.has(level)) levels.set(level, entry);
      entry.served.push(endpoint);
    }
    const context = { loads: this.loads, random: this.deps.random, previous: this.currentPicker };
    const ordered = [...levels.entries()].filter(([, l]) => l.served.length > 0).sort(([a], [b]) => a - b);
    // One level (the usual case): the strategy over every served endpoint. A plain copy: pickers index
    // it on every call, and frozen arrays index slower in V8 (Array.from: slice copies them one by one).
    if (ordered.length <= 1) return this.deps.strategy.build(Array.from(set.endpoints), context);
    const all = [...levels.entries()].sort(([a], [b]) => a - b);
    const loads = priorityLoads(
      all.map(([, l]) => ({ healthy: l.served.length, total: l.total })),
      overprovisioningFactor,
    );
    const pickers: Picker[] = [];
    const shares: number[] = [];
    all.forEach(([, level], i) => {
      if (level.served.length === 0 || loads[i] <= 0) return;
      pickers.push(this.deps.strategy.build(level.served, { ...context, previous: undefined }));
      shares.push(loads[i]);
    });
    if (pickers.length === 1) return pickers[0];
    const cumulative = new Float64Array(shares.length);
    let sum = 0;
    shares.forEach((share, i) => (cumulative[i] = sum += share));
    cumulative[cumulative.length - 1] = 1;
    return new PriorityPicker(pickers, cumulative, this.deps.random);
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
