import type { IEvent, IKeyValue, Watcher } from 'etcd3';
import { Backoff } from '../../core/backoff.js';
import type { ServiceInstance } from '../../core/service-instance.js';
import type { DiscoveryLogger } from '../registry.interface.js';
import { abortableSleep } from '../shared/abortable-sleep.js';
import { describeError, type EtcdConnection } from './etcd-connection.js';
import type { EtcdKeyLayout } from './etcd-key-layout.js';

/**
 * What a prefix watch tells its listeners. `stale`: etcd does not answer
 * (the last read's instances are kept); `refused`: etcd answered the read
 * with an error, such as permission denied on this prefix.
 */
export type PrefixWatchState =
  | { kind: 'pending' }
  | { kind: 'ok'; instances: readonly ServiceInstance[] }
  | { kind: 'stale'; reason: string }
  | { kind: 'refused'; reason: string };

interface Entry {
  readonly instance: ServiceInstance;
  readonly modRevision: bigint;
}

/**
 * The instances under one key prefix (one service in one namespace, or one
 * of the roots the namespace reads), kept current from etcd and shared by
 * every `watch()` subscriber of that prefix.
 *
 * One range read at revision R, then a watch from R+1. Whenever continuity
 * is in doubt (the watch stream broke, etcd stopped answering, the watcher
 * was cancelled because its revision was compacted) the prefix is read
 * again at a new revision R' and the cache replaced, which yields every
 * change made meanwhile, removals included; watch events at or below the
 * last read revision are ignored, so replayed events never undo a read.
 * While etcd is unreachable the state is `stale` and the cache is kept;
 * while it refuses the read the state is `refused`, and the read is retried.
 *
 * @example
 * const watch = new PrefixWatch(connection, layout, 'default/services/orders/', 'orders', 'default', logger, () => render(watch.state));
 */
export class PrefixWatch {
  private readonly entries = new Map<string, Entry>();
  /** Revision of the last full read; watch events at or below it are already in `entries`. */
  private readRevision = -1n;
  private current: PrefixWatchState = { kind: 'pending' };
  private watcher: Watcher | undefined;
  /** Events received while a read is in flight, applied after it (those above its revision). */
  private buffered: IEvent[] | undefined;
  private reading: Promise<void> | undefined;
  private readAgain = false;
  private needsRead = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private readonly backoff: Backoff;
  private readonly warned = new Map<string, string>();
  private closed = false;
  private readonly releaseConnection: () => void;
  private readonly statusSubscription: { unsubscribe(): void };

  constructor(
    private readonly connection: EtcdConnection,
    private readonly layout: EtcdKeyLayout,
    readonly prefix: string,
    readonly service: string,
    readonly namespace: string,
    private readonly logger: DiscoveryLogger,
    private readonly onChange: () => void,
  ) {
    this.backoff = new Backoff({ initialMs: 100, maxMs: Math.max(1_000, connection.settings.probeIntervalMs) });
    this.releaseConnection = connection.acquire();
    this.statusSubscription = connection.reachability.state$.subscribe((state) => {
      if (!state.reachable) this.markStale(`registry unreachable: ${state.reason ?? 'no answer'}`);
      else if (this.current.kind === 'stale' || this.needsRead) this.read();
    });
    this.read();
  }

  get state(): PrefixWatchState {
    return this.current;
  }

  /** Starts a full read unless one is running (then one more follows it). */
  private read(): void {
    if (this.closed) return;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    if (this.reading) {
      this.readAgain = true;
      return;
    }
    this.needsRead = false;
    this.buffered = [];
    this.reading = this.readOnce()
      .then(
        () => this.backoff.reset(),
        (error) => {
          if (this.closed) return;
          this.needsRead = true;
          if (this.connection.isNoAnswer(error)) this.markStale(`registry unreachable: ${describeError(error)}`);
          else this.markRefused(describeError(error));
          this.retryTimer = setTimeout(() => this.read(), this.backoff.next());
        },
      )
      .finally(() => {
        this.reading = undefined;
        this.buffered = undefined;
        if (this.readAgain && !this.closed) {
          this.readAgain = false;
          this.read();
        }
      });
  }

  private async readOnce(): Promise<void> {
    const key = Buffer.from(this.prefix);
    const response = await this.connection.call('range', (options) =>
      this.connection.client.kv.range({ key, range_end: prefixEnd(key) }, options),
    );
    if (this.closed) return;
    const revision = BigInt(response.header.revision);
    this.entries.clear();
    const seen = new Set<string>();
    for (const kv of response.kvs) {
      const key = kv.key.toString('utf8');
      seen.add(key);
      this.applyPut(kv, key);
    }
    for (const key of this.warned.keys()) if (!seen.has(key)) this.warned.delete(key);
    this.readRevision = revision;
    const pending = this.buffered ?? [];
    this.buffered = undefined;
    for (const event of pending) this.applyEvent(event);
    this.current = { kind: 'ok', instances: this.instances() };
    this.ensureWatcher(revision + 1n);
    this.onChange();
  }

  private ensureWatcher(fromRevision: bigint): void {
    if (this.watcher || this.closed) return;
    const watcher = this.connection.client.watch().prefix(this.prefix).startRevision(fromRevision.toString()).watcher();
    this.watcher = watcher;
    // Without an `error` listener a cancelled watcher crashes the process.
    watcher.on('error', (error: Error) => this.onWatcherError(watcher, error));
    watcher.on('disconnected', (error: Error) => {
      if (this.closed || this.watcher !== watcher) return;
      this.needsRead = true;
      this.connection.observe(error);
      this.markStale(`etcd watch stream broken: ${describeError(error)}`);
    });
    watcher.on('connected', () => {
      if (this.closed || this.watcher !== watcher) return;
      this.connection.markReachable();
      // etcd3 replays from the watcher's last revision on reconnect, but a
      // read makes the cache right even if that replay was incomplete.
      if (this.needsRead || this.current.kind === 'stale') this.read();
    });
    watcher.on('data', (response: { events: IEvent[] }) => {
      if (this.closed || this.watcher !== watcher) return;
      if (this.buffered) {
        this.buffered.push(...response.events);
        return;
      }
      let changed = false;
      for (const event of response.events) changed = this.applyEvent(event) || changed;
      if (changed && this.current.kind !== 'pending') {
        this.current = { kind: 'ok', instances: this.instances() };
        this.onChange();
      }
    });
  }

  /** The watcher was cancelled by etcd (compaction past its revision, permissions): read and watch anew. */
  private onWatcherError(watcher: Watcher, error: Error): void {
    // etcd3 has already detached a cancelled watcher; cancel() would wait
    // for a `connected` that never comes.
    if (this.watcher === watcher) this.watcher = undefined;
    if (this.closed) return;
    // etcd 3.4 gives no reason when the start revision was compacted away.
    const reason = describeError(error).replace(/^Watcher canceled:\s*/, '') || 'its start revision was compacted';
    this.logger.warn(`etcd watch on ${this.prefix} cancelled by etcd (${reason}); reading the prefix again`);
    this.read();
  }

  /** Applies one watch event; true when the cache changed. */
  private applyEvent(event: IEvent): boolean {
    const kv = event.kv;
    if (BigInt(kv.mod_revision) <= this.readRevision) return false;
    const key = kv.key.toString('utf8');
    if (event.type === 'Delete') {
      this.warned.delete(key);
      return this.entries.delete(key);
    }
    return this.applyPut(kv, key);
  }

  private applyPut(kv: IKeyValue, key: string): boolean {
    const had = this.entries.has(key);
    const modRevision = BigInt(kv.mod_revision);
    if (kv.value.length > this.connection.settings.maxValueBytes) {
      this.warnSkipped(
        key,
        `${kv.mod_revision}`,
        `value of ${kv.value.length} bytes exceeds the ${this.connection.settings.maxValueBytes}-byte limit`,
      );
      return this.entries.delete(key) || had;
    }
    const decoded = this.layout.decode(key, kv.value, this.service, this.namespace);
    if ('instance' in decoded) {
      this.warned.delete(key);
      this.entries.set(key, { instance: decoded.instance, modRevision });
      return true;
    }
    if ('skip' in decoded) this.warnSkipped(key, `${kv.mod_revision}`, decoded.skip);
    return this.entries.delete(key) || had;
  }

  /** Warns once per key and revision, so re-reads do not repeat it. */
  private warnSkipped(key: string, revision: string, why: string): void {
    if (this.warned.get(key) === revision) return;
    this.warned.set(key, revision);
    this.logger.warn(`Skipping etcd key ${key} (revision ${revision}): ${why}`);
  }

  private instances(): ServiceInstance[] {
    return [...this.entries.values()].map((e) => e.instance);
  }

  /** etcd answered the read with an error: logged once per streak of refusals. */
  private markRefused(why: string): void {
    if (this.closed) return;
    const reason = `etcd refused reading ${this.prefix}: ${why}`;
    if (this.current.kind === 'refused' && this.current.reason === reason) return;
    if (this.current.kind !== 'refused') this.logger.warn(`${reason}; retrying with backoff`);
    this.current = { kind: 'refused', reason };
    this.onChange();
  }

  private markStale(reason: string): void {
    if (this.closed) return;
    if (this.current.kind === 'stale' && this.current.reason === reason) return;
    // Keep the first reason of an outage: one `stale` emission per outage.
    if (this.current.kind === 'stale') return;
    this.current = { kind: 'stale', reason };
    this.onChange();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.retryTimer);
    this.statusSubscription.unsubscribe();
    this.releaseConnection();
    const watcher = this.watcher;
    this.watcher = undefined;
    if (watcher) {
      // cancel() waits for etcd's confirmation; never longer than a request (and no timer outlives it).
      const cancelled = new AbortController();
      await Promise.race([
        watcher
          .cancel()
          .catch(() => undefined)
          .finally(() => cancelled.abort()),
        abortableSleep(this.connection.settings.requestTimeoutMs, cancelled.signal),
      ]);
    }
  }
}

/** The smallest key greater than every key starting with `prefix` (the `range_end` of a prefix read). */
export function prefixEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i] < 0xff) {
      end[i]++;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]);
}
