import { endpointOf, sameInstance, type Endpoint } from './endpoint.js';
import type { ServiceInstance } from './service-instance.js';

/**
 * `ok`: the registry answered and the set is current (possibly after
 * filtering). `stale`: the registry is unreachable; the last known good set
 * is served. `empty`: the registry says the service has zero instances.
 */
export type EndpointSetState = 'ok' | 'stale' | 'empty';

/** What changed from the previous snapshot. */
export interface EndpointSetDiff {
  readonly added: readonly Endpoint[];
  readonly removed: readonly Endpoint[];
  readonly updated: readonly Endpoint[];
}

const NO_DIFF: EndpointSetDiff = Object.freeze({ added: [], removed: [], updated: [] });

/**
 * An immutable snapshot of a service's endpoints. Each change yields a new
 * snapshot with a higher `revision` and the `diff` against its predecessor.
 *
 * @example
 * client.endpoints$.subscribe((set) => console.log(set.revision, set.state, set.endpoints.map((e) => e.address)));
 */
export class EndpointSet {
  private readonly byKey: ReadonlyMap<string, Endpoint>;

  private constructor(
    readonly service: string,
    readonly revision: number,
    readonly state: EndpointSetState,
    readonly endpoints: readonly Endpoint[],
    readonly diff: EndpointSetDiff,
    /** For `stale`: why the registry is considered unreachable. */
    readonly reason: string | undefined,
    /** False only for the placeholder served before the registry first answered. */
    readonly resolved: boolean,
    readonly updatedAt: number,
  ) {
    this.byKey = new Map(endpoints.map((e) => [e.key, e]));
    Object.freeze(this);
  }

  /** The placeholder before any answer: revision 0, no endpoints. */
  static initial(service: string): EndpointSet {
    return new EndpointSet(service, 0, 'empty', Object.freeze([]), NO_DIFF, undefined, false, Date.now());
  }

  /** Builds a first snapshot directly from instances (revision 1). */
  static of(service: string, instances: readonly ServiceInstance[]): EndpointSet {
    return EndpointSet.initial(service).next(instances);
  }

  get size(): number {
    return this.endpoints.length;
  }

  get(key: string): Endpoint | undefined {
    return this.byKey.get(key);
  }

  has(key: string): boolean {
    return this.byKey.has(key);
  }

  /** The instances behind the endpoints. */
  get instances(): ServiceInstance[] {
    return this.endpoints.map((e) => e.instance);
  }

  /**
   * The snapshot after the registry answered with `instances`. Returns
   * `this` when nothing changed, so callers can skip emitting.
   */
  next(instances: readonly ServiceInstance[]): EndpointSet {
    const endpoints: Endpoint[] = [];
    const added: Endpoint[] = [];
    const updated: Endpoint[] = [];
    const seen = new Set<string>();
    for (const instance of instances) {
      const fresh = endpointOf(instance);
      if (seen.has(fresh.key)) continue;
      seen.add(fresh.key);
      const old = this.byKey.get(fresh.key);
      if (!old) {
        added.push(fresh);
        endpoints.push(fresh);
      } else if (!sameInstance(old.instance, instance)) {
        updated.push(fresh);
        endpoints.push(fresh);
      } else {
        endpoints.push(old);
      }
    }
    const removed = this.endpoints.filter((e) => !seen.has(e.key));
    const state: EndpointSetState = endpoints.length === 0 ? 'empty' : 'ok';
    if (this.resolved && state === this.state && !added.length && !removed.length && !updated.length) {
      return this;
    }
    endpoints.sort(byKey);
    return new EndpointSet(
      this.service,
      this.revision + 1,
      state,
      Object.freeze(endpoints),
      Object.freeze({ added: Object.freeze(added), removed: Object.freeze(removed), updated: Object.freeze(updated) }),
      undefined,
      true,
      Date.now(),
    );
  }

  /** The same endpoints, marked stale because the registry is unreachable. */
  stale(reason: string): EndpointSet {
    if (this.state === 'stale' && this.reason === reason) return this;
    return new EndpointSet(
      this.service,
      this.revision + 1,
      'stale',
      this.endpoints,
      NO_DIFF,
      reason,
      this.resolved,
      Date.now(),
    );
  }

  /** A filtered view (same revision and state, unless everything was filtered out). */
  filter(keep: (endpoint: Endpoint) => boolean): EndpointSet {
    const kept = this.endpoints.filter(keep);
    if (kept.length === this.endpoints.length) return this;
    return new EndpointSet(
      this.service,
      this.revision,
      this.state,
      Object.freeze(kept),
      Object.freeze({
        added: this.diff.added.filter(keep),
        removed: this.diff.removed,
        updated: this.diff.updated.filter(keep),
      }),
      this.reason,
      this.resolved,
      this.updatedAt,
    );
  }
}

function byKey(a: Endpoint, b: Endpoint): number {
  return a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
}
