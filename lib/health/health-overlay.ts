// One cohesive state machine (checks, ejections, panic, the served chain of
// snapshots); its log and event texts make up much of its length.
import type { Subscription } from 'rxjs';
import type { Endpoint } from '../core/endpoint.js';
import { EndpointSet } from '../core/endpoint-set.js';
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
  /** One checker per address, and the keys of the known endpoints at that address. */
  private readonly checkers = new Map<
    string,
    { checker: EndpointHealthChecker; subscription: Subscription; keys: Set<string> }
  >();
  /** Known endpoints out of service now (failing checks win over an ejection), by key. */
  private readonly out = new Map<string, 'unhealthy' | 'ejected'>();
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

  /**
   * A new registry snapshot. Costs what changed since the previous one
   * (its diff), not the size of the set.
   */
  update(raw: EndpointSet): void {
    if (this.closed) return;
    const previous = this.raw;
    this.raw = raw;
    if (this.passThrough) {
      this.health = countAll(raw);
      this.publish(raw);
      return;
    }
    const diff = previous === undefined ? { added: raw.endpoints, removed: [], updated: [] } : raw.diffFrom(previous);
    const removed: string[] = [];
    for (const endpoint of diff.removed) {
      removed.push(endpoint.key);
      this.out.delete(endpoint.key);
      this.detector.forget(endpoint.key);
      this.releaseChecker(endpoint);
    }
    const changed: Endpoint[] = [];
    for (const endpoint of diff.added) {
      if (this.deps.settings.active.enabled) this.acquireChecker(endpoint);
      this.classify(endpoint);
      changed.push(endpoint);
    }
    // Same key, same address: the health stays; the served copy is replaced.
    for (const endpoint of diff.updated) changed.push(endpoint);
    this.recompute(changed, removed);
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

  /** Records whether a known endpoint is out of service now; returns true when that changed. */
  private classify(endpoint: Endpoint): boolean {
    const state = this.isFailingChecks(endpoint.address)
      ? 'unhealthy'
      : this.detector.isEjected(endpoint.key)
        ? 'ejected'
        : undefined;
    if (this.out.get(endpoint.key) === state) return false;
    if (state === undefined) this.out.delete(endpoint.key);
    else this.out.set(endpoint.key, state);
    return true;
  }

  private acquireChecker(endpoint: Endpoint): void {
    const existing = this.checkers.get(endpoint.address);
    if (existing) {
      existing.keys.add(endpoint.key);
      return;
    }
    const address = endpoint.address;
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
      this.reclassify([...(this.checkers.get(address)?.keys ?? [])]);
    });
    this.checkers.set(address, { checker, subscription, keys: new Set([endpoint.key]) });
  }

  private releaseChecker(endpoint: Endpoint): void {
    const entry = this.checkers.get(endpoint.address);
    if (!entry) return;
    entry.keys.delete(endpoint.key);
    if (entry.keys.size > 0) return;
    entry.subscription.unsubscribe();
    this.deps.checkers.release(entry.checker);
    this.checkers.delete(endpoint.address);
  }

  /** The health of these known endpoints may have changed (a check result, an ejection). */
  private reclassify(keys: readonly string[]): void {
    const raw = this.raw;
    if (!raw || this.closed) return;
    const changed: Endpoint[] = [];
    for (const key of keys) {
      const endpoint = raw.get(key);
      if (endpoint !== undefined && this.classify(endpoint)) changed.push(endpoint);
    }
    this.recompute(changed, []);
  }

  /**
   * Serves the known endpoints minus those out (or all of them in panic),
   * updating the served chain with what changed: `changed` endpoints are
   * (re)placed or taken out by their health, `removed` keys left.
   */
  private recompute(changed: readonly Endpoint[], removed: readonly string[]): void {
    const raw = this.raw;
    if (!raw || this.closed) return;
    let unhealthy = 0;
    for (const state of this.out.values()) if (state === 'unhealthy') unhealthy++;
    const total = raw.size;
    const healthy = total - this.out.size;
    const threshold = this.deps.settings.panicThreshold;
    const panic = threshold > 0 && total > 0 && healthy * 100 < threshold * total;
    const upserted: Endpoint[] = [];
    const taken: string[] = [...removed];
    if (panic !== this.panic) {
      this.panic = panic;
      this.reportPanic(panic, healthy, total, threshold);
      // Everything out of service comes in (panic) or goes out again.
      for (const key of this.out.keys()) {
        const endpoint = raw.get(key);
        if (endpoint === undefined) continue;
        if (panic) upserted.push(endpoint);
        else taken.push(key);
      }
    }
    for (const endpoint of changed) {
      if (panic || !this.out.has(endpoint.key)) upserted.push(endpoint);
      else taken.push(endpoint.key);
    }
    const servedCount = panic ? total : healthy;
    this.health = { total, healthy, unhealthy, ejected: this.out.size - unhealthy, served: servedCount, panic };
    this.publish(this.derive(raw, upserted, taken));
  }

  private reportPanic(panic: boolean, healthy: number, total: number, threshold: number): void {
    const share = total ? Math.round((healthy * 100) / total) : 0;
    if (panic) {
      this.deps.logger.warn(
        `service '${this.deps.service}': only ${healthy} of ${total} endpoint(s) healthy (${share}% < panic threshold ${threshold}%); balancing over all of them`,
      );
    } else {
      this.deps.logger.log(
        `service '${this.deps.service}': ${healthy} of ${total} endpoint(s) healthy again; panic mode over`,
      );
    }
    this.deps.emit({ type: 'panic', service: this.deps.service, active: panic, healthy, total, at: Date.now() });
  }

  /** The served snapshot after these changes: the previous one when nothing served changed. */
  private derive(raw: EndpointSet, upserted: readonly Endpoint[], removed: readonly string[]): EndpointSet {
    let chain = this.chain;
    if (!raw.resolved) {
      // No answer yet: nothing to filter, only the registry's state to follow.
      if (raw.state === 'stale') chain = chain.stale(raw.reason ?? 'registry unreachable');
      return (this.chain = chain);
    }
    // Every known endpoint out with panic off is an `ok` set with no endpoints:
    // `empty` would say "zero instances", which is not true.
    const emptyState = raw.size > 0 ? 'ok' : 'empty';
    if (upserted.length || removed.length) chain = chain.apply({ upserted, removed }, { emptyState });
    if (raw.state === 'stale') chain = chain.stale(raw.reason ?? 'registry unreachable');
    else if (chain.state === 'stale' || !chain.resolved || (chain.size === 0 && chain.state !== emptyState))
      chain = chain.apply({}, { emptyState });
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
    this.reclassify([key]);
  }

  private onReturned(key: string): void {
    if (this.closed) return;
    const address = this.raw?.get(key)?.address ?? key;
    this.deps.logger.log(`service '${this.deps.service}': ejection of ${address} ended; back in service`);
    this.deps.emit({ type: 'returned', service: this.deps.service, address, key, at: Date.now() });
    this.reclassify([key]);
  }
}

function countAll(set: EndpointSet): ServiceHealth {
  return { total: set.size, healthy: set.size, unhealthy: 0, ejected: 0, served: set.size, panic: false };
}
