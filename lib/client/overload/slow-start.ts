import type { EndpointSet, EndpointSetDiff } from '../../core/endpoint-set.js';
import type { Endpoint } from '../../core/endpoint.js';
import { advance, seedFrom, unitAt } from '../../balancing/picker-random.js';
import type { PickContext, Picker } from '../../balancing/picker.js';
import type { OverloadSettings } from '../../core/config/overload-options.js';

/** Re-picks at most this often to pass an endpoint that is still ramping. */
const MAX_REPICKS = 8;

/**
 * Envoy's slow start: an endpoint that joins the served set after the first
 * one (a new instance, or one back from ejection or failed health checks)
 * gets `max(min_weight, (t / window) ^ (1 / aggression))` of its share while
 * `t < window`. Endpoints of the client's first set are established: the
 * client started, not they.
 */
export class SlowStart {
  private readonly since = new Map<string, number>();
  private established = false;

  constructor(
    private readonly settings: OverloadSettings['slowStart'],
    private readonly now: () => number = () => performance.now(),
  ) {}

  get enabled(): boolean {
    return this.settings.windowMs > 0;
  }

  /** Endpoints ramping now. */
  get ramping(): number {
    return this.since.size;
  }

  /** Follows the served set: endpoints new to it start ramping. Costs what changed (`diff`, from previous to next). */
  observe(previous: EndpointSet, next: EndpointSet, diff: EndpointSetDiff = next.diffFrom(previous)): void {
    if (!this.enabled) return;
    if (!this.established) {
      if (next.resolved && next.size > 0) this.established = true;
      return;
    }
    const now = this.now();
    for (const endpoint of diff.added) this.since.set(endpoint.key, now);
    for (const endpoint of diff.removed) this.since.delete(endpoint.key);
  }

  /** The share of its full weight an endpoint gets now, in (0, 1]. */
  factor(key: string): number {
    const start = this.since.get(key);
    if (start === undefined) return 1;
    const { windowMs, aggression, minWeightPercent } = this.settings;
    const elapsed = this.now() - start;
    if (elapsed >= windowMs) {
      this.since.delete(key);
      return 1;
    }
    const ramp = Math.pow(Math.max(elapsed, 0) / windowMs, 1 / aggression);
    return Math.max(minWeightPercent / 100, ramp);
  }
}

/**
 * A picker that lets a ramping endpoint through with probability equal to
 * its slow-start factor, and otherwise picks again: the inner strategy keeps
 * its own order and load awareness, the newcomer gets its reduced share.
 * Keyed picks (consistent hashing) are left alone: a key must not move.
 * With nothing ramping a pick costs one size check.
 */
export class SlowStartPicker implements Picker {
  private state: number;

  constructor(
    private readonly inner: Picker,
    private readonly slowStart: SlowStart,
    random: () => number,
  ) {
    this.state = seedFrom(random);
  }

  pick(context?: PickContext): Endpoint | undefined {
    let endpoint = this.inner.pick(context);
    if (endpoint === undefined || this.slowStart.ramping === 0 || context?.key !== undefined) return endpoint;
    for (let i = 0; i < MAX_REPICKS; i++) {
      const factor = this.slowStart.factor(endpoint.key);
      if (factor >= 1) return endpoint;
      this.state = advance(this.state);
      if (unitAt(this.state) < factor) return endpoint;
      endpoint = this.inner.pick(context) ?? endpoint;
    }
    return endpoint;
  }
}
