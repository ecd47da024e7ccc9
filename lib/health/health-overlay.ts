// One cohesive state machine (checks, ejections, panic, the served chain of
// snapshots); its log and event texts make up much of its length.
import type { Subscription } from 'rxjs';
import type { Endpoint } from '../core/endpoint.js';
import { EndpointSet, type EndpointSetState } from '../core/endpoint-set.js';
import type { DiscoveryLogger } from '../registry/registry.interface.js';
import type { DiscoveryEvent } from './discovery-events.js';
import type { ActiveCheckSettings, EndpointHealthChecker } from './endpoint-health-checker.js';
import type { HealthSettings } from './health-settings.js';
import { endpointVerdict, type CallOutcome } from '../core/call-outcome.js';
import { OutlierDetector } from './outlier-detector.js';

/** Where an overlay gets its (shared) checkers from. */
export interface CheckerSource {
  acquire(endpoint: Endpoint, settings: ActiveCheckSettings): EndpointHealthChecker;
  release(checker: EndpointHealthChecker): void;
}

/** What an overlay is built with. */
export interface HealthOverlayDeps {
  service: string;
  settings: HealthSettings;
  checkers: CheckerSource;
  logger: DiscoveryLogger;
  /** Receives the served set (called only when it changed). */
  serve: (set: EndpointSet) => void;
  emit: (event: DiscoveryEvent) => void;
}

/** Health of one service's known endpoints, as the overlay sees it now. */
export interface ServiceHealth {
  total: number;
  healthy: number;
  unhealthy: number;
  ejected: number;
  served: number;
  panic: boolean;
}

/**
 * Sits between a client's registry set and its picker: serves the known
 * endpoints minus those failing active checks or ejected by outlier
 * detection, or all of them in panic mode (healthy share below the panic
 * threshold). The result is still an EndpointSet; it gets a new revision
 * each time what is served changes, and nothing is emitted when a health
 * change does not change it, so pickers are rebuilt only on real changes.
 *
 * @example
 * const overlay = new HealthOverlay({ service: 'orders', settings, checkers: healthCheckerPool, logger, serve: (set) => accept(set), emit: () => {} });
 * registry.watch(query).subscribe((set) => overlay.update(set));
 */
export class HealthOverlay {
  private raw: EndpointSet | undefined;
  /** The chain of served snapshots: their own revisions and diffs. */
  private chain: EndpointSet;
  private served: EndpointSet | undefined;
  private readonly checkers = new Map<string, { checker: EndpointHealthChecker; subscription: Subscription }>();
  private readonly detector: OutlierDetector;
  private readonly passThrough: boolean;
  private panic = false;
  private closed = false;
  private health: ServiceHealth = { total: 0, healthy: 0, unhealthy: 0, ejected: 0, served: 0, panic: false };

  constructor(private readonly deps: HealthOverlayDeps) {
    this.chain = EndpointSet.initial(deps.service);
    const { settings } = deps;
    // With neither active checks nor outlier detection nothing can be unhealthy: serve the registry's sets as they are.
    this.passThrough = !settings.active.enabled && !settings.outlier.enabled;
    this.detector = new OutlierDetector(settings.outlier, {
      mayEject: () => this.mayEject(),
      ejected: (key, info) => this.onEjected(key, info),
      returned: (key) => this.onReturned(key),
    });
  }

  /** The latest health counts. */
  get status(): ServiceHealth {
    return this.health;
  }

  /** A new registry snapshot. */
  update(raw: EndpointSet): void {
    if (this.closed) return;
    this.raw = raw;
    if (this.passThrough) {
      this.health = countAll(raw);
      this.publish(raw);
      return;
    }
    if (this.deps.settings.active.enabled) this.syncCheckers(raw);
    this.detector.retain(new Set(raw.endpoints.map((e) => e.key)));
    this.recompute();
  }

  /** One call's outcome on `endpoint` (from every transport, through the client core). */
  recordOutcome(endpoint: Endpoint, outcome: CallOutcome): void {
    if (this.closed || !this.deps.settings.outlier.enabled) return;
    const verdict = endpointVerdict(outcome);
    // Ignore endpoints that already left (late answers of old calls).
    if (verdict === 'unknown' || !this.raw?.has(endpoint.key)) return;
    this.detector.record(endpoint.key, verdict);
  }

  /** The registry's latest set, before health filtering (undefined before the first). */
  known(): EndpointSet | undefined {
    return this.raw;
  }

  /** An endpoint's health as the overlay sees it, with the reason when it is out. */
  describe(endpoint: Endpoint): { state: 'healthy' | 'unhealthy' | 'ejected'; detail: string | undefined } {
    const ejection = this.detector.ejection(endpoint.key);
    if (ejection) {
      return {
        state: 'ejected',
        detail: `ejected after consecutive transport failures (ejection #${ejection.ejections}) until ${new Date(ejection.until).toISOString()}`,
      };
    }
    if (this.isFailingChecks(endpoint.address)) {
      return { state: 'unhealthy', detail: `failing ${this.deps.settings.active.kind} health checks` };
    }
    return { state: 'healthy', detail: undefined };
  }

  /** Is this endpoint ejected by outlier detection right now? */
  isEjected(key: string): boolean {
    return this.detector.isEjected(key);
  }

  /** Is this address failing its active checks? (false when checks are off) */
  isFailingChecks(address: string): boolean {
    const entry = this.checkers.get(address);
    return entry !== undefined && !entry.checker.healthy;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const { checker, subscription } of this.checkers.values()) {
      subscription.unsubscribe();
      this.deps.checkers.release(checker);
    }
    this.checkers.clear();
    this.detector.close();
  }

  private syncCheckers(raw: EndpointSet): void {
    const wanted = new Set<string>();
    for (const endpoint of raw.endpoints) {
      wanted.add(endpoint.address);
      if (this.checkers.has(endpoint.address)) continue;
      const checker = this.deps.checkers.acquire(endpoint, this.deps.settings.active);
      const subscription = checker.results$.subscribe((result) => {
        this.deps.emit({
          type: 'health-check',
          service: this.deps.service,
          address: result.address,
          kind: result.kind,
          ok: result.ok,
          healthy: result.healthy,
          changed: result.changed,
          detail: result.detail,
          durationMs: result.durationMs,
          at: result.at,
        });
        if (result.ok && result.detail)
          this.deps.logger.warn(`service '${this.deps.service}': ${result.address}: ${result.detail}`);
        if (!result.changed) return;
        if (result.healthy) {
          this.deps.logger.log(
            `service '${this.deps.service}': ${result.address} passed ${result.consecutiveSuccesses} health check(s) in a row; back in service`,
          );
        } else {
          this.deps.logger.warn(
            `service '${this.deps.service}': ${result.address} failed ${result.consecutiveFailures} health check(s) in a row (${result.detail ?? 'failed'}); taken out of service`,
          );
        }
        this.recompute();
      });
      this.checkers.set(endpoint.address, { checker, subscription });
    }
    for (const [address, entry] of this.checkers) {
      if (wanted.has(address)) continue;
      entry.subscription.unsubscribe();
      this.deps.checkers.release(entry.checker);
      this.checkers.delete(address);
    }
  }

  private recompute(): void {
    const raw = this.raw;
    if (!raw || this.closed) return;
    const healthy: Endpoint[] = [];
    let unhealthy = 0;
    let ejected = 0;
    for (const endpoint of raw.endpoints) {
      if (this.isFailingChecks(endpoint.address)) unhealthy++;
      else if (this.detector.isEjected(endpoint.key)) ejected++;
      else healthy.push(endpoint);
    }
    const total = raw.size;
    const threshold = this.deps.settings.panicThreshold;
    const panic = threshold > 0 && total > 0 && healthy.length * 100 < threshold * total;
    if (panic !== this.panic) {
      this.panic = panic;
      const share = total ? Math.round((healthy.length * 100) / total) : 0;
      if (panic) {
        this.deps.logger.warn(
          `service '${this.deps.service}': only ${healthy.length} of ${total} endpoint(s) healthy (${share}% < panic threshold ${threshold}%); balancing over all of them`,
        );
      } else {
        this.deps.logger.log(
          `service '${this.deps.service}': ${healthy.length} of ${total} endpoint(s) healthy again; panic mode over`,
        );
      }
      this.deps.emit({
        type: 'panic',
        service: this.deps.service,
        active: panic,
        healthy: healthy.length,
        total,
        at: Date.now(),
      });
    }
    const kept = panic ? raw.endpoints : healthy;
    this.health = { total, healthy: healthy.length, unhealthy, ejected, served: kept.length, panic };
    this.publish(this.derive(raw, kept));
  }

  /** The served snapshot for `kept` endpoints of `raw`: the previous one when nothing changed. */
  private derive(raw: EndpointSet, kept: readonly Endpoint[]): EndpointSet {
    let chain = this.chain;
    if (!raw.resolved) {
      // No answer yet: nothing to filter, only the registry's state to follow.
      if (raw.state === 'stale') chain = chain.stale(raw.reason ?? 'registry unreachable');
      return (this.chain = chain);
    }
    const state: EndpointSetState =
      raw.state === 'stale' ? 'stale' : kept.length > 0 ? 'ok' : raw.size > 0 ? 'ok' : 'empty';
    if (chain.resolved && sameServed(chain, kept, state, raw.reason)) return chain;
    if (kept.length === 0 && raw.size > 0) {
      // Every known endpoint is out and panic mode is off. EndpointSet.next([])
      // would say `empty` ("zero instances"), which is not true: build an `ok`
      // set with no endpoints instead, from a full snapshot filtered to
      // nothing. Going through `stale` first guarantees a new revision even
      // when the chain already held exactly these instances.
      chain = chain
        .stale('health overlay')
        .next(raw.instances)
        .filter(() => false);
    } else {
      chain = chain.next(kept.map((e) => e.instance));
    }
    if (raw.state === 'stale') chain = chain.stale(raw.reason ?? 'registry unreachable');
    return (this.chain = chain);
  }

  private publish(set: EndpointSet): void {
    if (set === this.served) return;
    this.served = set;
    if (this.passThrough) this.health = countAll(set);
    const h = this.health;
    this.deps.emit({
      type: 'endpoints',
      service: this.deps.service,
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
    this.deps.serve(set);
  }

  private mayEject(): boolean {
    const total = this.raw?.size ?? 0;
    // Strictly within the share: with 50 %, one of 2 or 3 endpoints, never the only one.
    return (this.detector.ejected + 1) * 100 <= this.deps.settings.outlier.maxEjectionPercent * total;
  }

  private onEjected(key: string, info: { consecutiveFailures: number; durationMs: number; ejections: number }): void {
    const address = this.raw?.get(key)?.address ?? key;
    this.deps.logger.warn(
      `service '${this.deps.service}': ${address} ejected for ${Math.round(info.durationMs / 1000)} s after ${info.consecutiveFailures} consecutive transport failures (ejection #${info.ejections})`,
    );
    this.deps.emit({ type: 'ejected', service: this.deps.service, address, key, ...info, at: Date.now() });
    this.recompute();
  }

  private onReturned(key: string): void {
    if (this.closed) return;
    const address = this.raw?.get(key)?.address ?? key;
    this.deps.logger.log(`service '${this.deps.service}': ejection of ${address} ended; back in service`);
    this.deps.emit({ type: 'returned', service: this.deps.service, address, key, at: Date.now() });
    this.recompute();
  }
}

function countAll(set: EndpointSet): ServiceHealth {
  return { total: set.size, healthy: set.size, unhealthy: 0, ejected: 0, served: set.size, panic: false };
}

function sameServed(
  chain: EndpointSet,
  kept: readonly Endpoint[],
  state: EndpointSetState,
  reason: string | undefined,
): boolean {
  if (chain.state !== state || chain.size !== kept.length) return false;
  if (state === 'stale' && chain.reason !== reason) return false;
  for (const endpoint of kept) {
    if (chain.get(endpoint.key)?.instance !== endpoint.instance) return false;
  }
  return true;
}
