import type { Subscription } from 'rxjs';
import type { Endpoint } from '../core/endpoint.js';
import type { DiscoveryEvent } from './discovery-events.js';
import {
  healthCheckerPool,
  type ActiveCheckSettings,
  type EndpointHealthChecker,
  type HealthCheckerPool,
} from './endpoint-health-checker.js';
import type { CheckerSource } from './health-overlay.js';

/**
 * One Discovery's share of the process-wide checker pool: its clients
 * acquire checkers through it, and it reports each check once on the
 * Discovery's event stream however many of its clients use that endpoint.
 *
 * @example
 * const leases = new CheckerLeases((event) => bus.next(event)); const checker = leases.acquire(endpoint, settings);
 */
export class CheckerLeases implements CheckerSource {
  private readonly held = new Map<EndpointHealthChecker, { refs: number; subscription: Subscription }>();

  constructor(
    private readonly emit: (event: DiscoveryEvent) => void,
    private readonly pool: HealthCheckerPool = healthCheckerPool,
  ) {}

  acquire(endpoint: Endpoint, settings: ActiveCheckSettings): EndpointHealthChecker {
    const checker = this.pool.acquire(endpoint, settings);
    const entry = this.held.get(checker);
    if (entry) {
      entry.refs++;
      // The pool counted this acquisition too; one pool reference per Discovery is enough.
      this.pool.release(checker);
      return checker;
    }
    const subscription = checker.results$.subscribe((r) =>
      this.emit({
        type: 'health-check',
        address: r.address,
        kind: r.kind,
        ok: r.ok,
        healthy: r.healthy,
        changed: r.changed,
        detail: r.detail,
        durationMs: r.durationMs,
        at: r.at,
      }),
    );
    this.held.set(checker, { refs: 1, subscription });
    return checker;
  }

  release(checker: EndpointHealthChecker): void {
    const entry = this.held.get(checker);
    if (!entry || --entry.refs > 0) return;
    entry.subscription.unsubscribe();
    this.held.delete(checker);
    this.pool.release(checker);
  }

  /** Releases everything still held. */
  close(): void {
    for (const [checker, entry] of this.held) {
      entry.subscription.unsubscribe();
      this.pool.release(checker);
    }
    this.held.clear();
  }
}
