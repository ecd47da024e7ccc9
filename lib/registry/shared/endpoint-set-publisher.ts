import { Observable, Subject } from 'rxjs';
import { endpointKeyOf, endpointOf } from '../../core/endpoint.js';
import { EndpointSet } from '../../core/endpoint-set.js';
import { instanceListChanges } from '../../core/instance-list-changes.js';
import type { ServiceInstance } from '../../core/service-instance.js';

/**
 * The endpoint sets of one watched query, as every backend publishes them:
 * instances become the next {@link EndpointSet} (diffed against the last),
 * an outage marks the last known good set `stale`, and nothing is emitted
 * when nothing changed. `sets$` replays the latest set to a late
 * subscriber and completes on `close()`.
 *
 * One stale emission per outage: while the set is stale, a new reason does
 * not emit again (the reason stays that of the outage's start).
 *
 * @example
 * const publisher = new EndpointSetPublisher('orders'); publisher.sets$.subscribe(render); publisher.publish(instances);
 */
export class EndpointSetPublisher {
  private current: EndpointSet;
  private published = false;
  private closed = false;
  /**
   * The list the current set was made of, when it was made of exactly that
   * list (a copy; no two of its instances share a key): the next list is
   * compared with it by position and identity first (publishReusing).
   */
  private lastList: readonly ServiceInstance[] | undefined;
  private readonly changes = new Subject<EndpointSet>();
  /** The latest set (once one was published), then each change; completes on close. */
  readonly sets$: Observable<EndpointSet>;

  constructor(readonly service: string) {
    this.current = EndpointSet.initial(service);
    this.sets$ = new Observable<EndpointSet>((subscriber) => {
      if (this.published) subscriber.next(this.current);
      if (this.closed) {
        subscriber.complete();
        return undefined;
      }
      return this.changes.subscribe(subscriber);
    });
  }

  /** The latest set: the unresolved placeholder until something was published. */
  get latest(): EndpointSet {
    return this.current;
  }

  /** True once a set was published. */
  get hasPublished(): boolean {
    return this.published;
  }

  /** Publishes what the registry answered; returns true when a new set was emitted. */
  publish(instances: readonly ServiceInstance[]): boolean {
    this.lastList = undefined;
    return this.emit(this.current.next(instances));
  }

  /**
   * Publishes what the registry answered, for backends that hand over the
   * same instance objects for what did not change, in the same order (the
   * mesh backend's ClusterLoadAssignments): the changes are found by
   * walking the last list and this one side by side, by identity, and only
   * they are applied; no key is built, no map filled (1 % churn of a
   * 1,000-endpoint assignment costs its ten changes). When that finds a
   * repeated key or too many changes, the list is diffed by key as
   * {@link publish} does. Returns true when a new set was emitted.
   */
  publishReusing(instances: readonly ServiceInstance[]): boolean {
    const next = this.nextByIdentity(instances) ?? this.current.next(instances);
    this.lastList = next.size === instances.length ? instances.slice() : undefined;
    return this.emit(next);
  }

  private nextByIdentity(instances: readonly ServiceInstance[]): EndpointSet | undefined {
    const last = this.lastList;
    if (last === undefined) return undefined;
    const changes = instanceListChanges(last, instances, Math.max(16, instances.length >> 2));
    if (changes === undefined) return undefined;
    const next = this.current.apply({
      upserted: changes.added.map((i) => endpointOf(i)),
      removed: changes.removed.map(endpointKeyOf),
    });
    // A size that differs from the list's means two instances share a key: the first wins, by key.
    return next.size === instances.length ? next : undefined;
  }

  /**
   * Publishes what changed, for backends that know it (a watch event): the
   * instances that joined or changed, and the endpoint keys
   * (`endpointKeyOf`) that left. Costs what changed, not the whole set.
   * Returns true when a new set was emitted.
   */
  publishChanges(upserted: readonly ServiceInstance[], removed: readonly string[]): boolean {
    this.lastList = undefined;
    return this.emit(this.current.apply({ upserted: upserted.map((i) => endpointOf(i)), removed }));
  }

  /**
   * Marks the last known good set stale (the registry did not answer);
   * returns true when this started an outage and was emitted.
   */
  publishStale(reason: string): boolean {
    if (this.published && this.current.state === 'stale') return false;
    return this.emit(this.current.stale(reason));
  }

  /** Completes `sets$`; later publications are ignored. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.changes.complete();
  }

  private emit(next: EndpointSet): boolean {
    if (this.closed || (next === this.current && this.published)) return false;
    this.current = next;
    this.published = true;
    this.changes.next(next);
    return true;
  }
}
