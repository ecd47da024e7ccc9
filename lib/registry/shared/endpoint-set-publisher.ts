import { Observable, Subject } from 'rxjs';
import { endpointOf } from '../../core/endpoint.js';
import { EndpointSet } from '../../core/endpoint-set.js';
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
    return this.emit(this.current.next(instances));
  }

  /**
   * Publishes what changed, for backends that know it (a watch event): the
   * instances that joined or changed, and the endpoint keys
   * (`endpointKeyOf`) that left. Costs what changed, not the whole set.
   * Returns true when a new set was emitted.
   */
  publishChanges(upserted: readonly ServiceInstance[], removed: readonly string[]): boolean {
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
