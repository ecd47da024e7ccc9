import { Observable } from 'rxjs';
import type { EndpointSet } from '../../core/endpoint-set.js';
import { EndpointSetPublisher } from './endpoint-set-publisher.js';

/** Starts feeding one publisher; returns what stops it (timers, streams, subscriptions). */
export type WatchStarter = (publisher: EndpointSetPublisher) => (() => void) | void;

interface OpenWatch {
  readonly publisher: EndpointSetPublisher;
  stop(): void;
}

/**
 * The watch streams a registry has open. Each subscription to a stream gets
 * its own {@link EndpointSetPublisher}, fed by the backend's `start`
 * function; unsubscribing stops it, and `close()` stops and completes every
 * stream at once (what `Registry.close()` promises).
 *
 * @example
 * watch(query) { return this.watches.stream(query.service, (publisher) => { const w = new ServiceWatch(publisher); w.start(); return () => w.stop(); }); }
 */
export class EndpointWatches {
  private readonly open = new Set<OpenWatch>();
  private closed = false;

  /** True after `close()`: new subscriptions complete at once. */
  get isClosed(): boolean {
    return this.closed;
  }

  /** How many streams are subscribed now. */
  get size(): number {
    return this.open.size;
  }

  /** A cold stream of `service`'s endpoint sets, fed by `start` for each subscriber. */
  stream(service: string, start: WatchStarter): Observable<EndpointSet> {
    return new Observable<EndpointSet>((subscriber) => {
      if (this.closed) {
        subscriber.complete();
        return undefined;
      }
      const publisher = new EndpointSetPublisher(service);
      const feed: { stop?: () => void; stopped: boolean } = { stopped: false };
      const entry: OpenWatch = {
        publisher,
        stop: () => {
          if (feed.stopped) return;
          feed.stopped = true;
          this.open.delete(entry);
          feed.stop?.();
        },
      };
      this.open.add(entry);
      const subscription = publisher.sets$.subscribe(subscriber);
      feed.stop = start(publisher) ?? undefined;
      // `start` may have found the registry closing meanwhile.
      if (feed.stopped) feed.stop?.();
      return () => {
        entry.stop();
        publisher.close();
        subscription.unsubscribe();
      };
    });
  }

  /** Stops every open stream and completes it. Idempotent. */
  close(): void {
    this.closed = true;
    for (const entry of [...this.open]) {
      entry.stop();
      entry.publisher.close();
    }
  }
}
