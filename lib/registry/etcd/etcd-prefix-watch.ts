// One prefix's read-then-watch state machine (paged reads at one revision,
// re-reads on doubt, diffs out); splitting it would split its invariants.
import type { IEvent, IKeyValue, Watcher } from 'etcd3';
import { Backoff } from '../../core/backoff.js';
import type { ServiceInstance } from '../../core/service-instance.js';
import type { DiscoveryLogger } from '../registry.interface.js';
import { abortableSleep } from '../shared/abortable-sleep.js';
import { describeError, type EtcdConnection } from './etcd-connection.js';
import type { EtcdKeyLayout } from './etcd-key-layout.js';

/**
 * What a prefix watch tells its listeners. `ok`: the cache is current (read
 * it with `instances()`); `stale`: etcd does not answer (the last read's
 * instances are kept); `refused`: etcd answered the read with an error, such
 * as permission denied on this prefix.
 */
export type PrefixWatchState =
  { kind: 'pending' } | { kind: 'ok' } | { kind: 'stale'; reason: string } | { kind: 'refused'; reason: string };

/**
 * What changed since the last notification: etcd key -> the instance it held
 * before (undefined: none). Read the instance it holds now with `instanceAt`.
 * A notification without changes (after a full read) means "read it all".
 */
export type PrefixChanges = ReadonlyMap<string, ServiceInstance | undefined>;

interface Entry {
  readonly instance: ServiceInstance;
  readonly modRevision: bigint;
}

/** Keys per page of a range read: a 10,000-instance prefix is ten replies, not one of 4 MB (grpc-js refuses those). */
const PAGE_KEYS = 1_000;

/** etcd's answer when a revision asked for was compacted meanwhile. */
const COMPACTED = /required revision has been compacted/;

/**
 * The instances under one key prefix (one service in one namespace, or one
 * of the roots the namespace reads), kept current from etcd and shared by
 * every `watch()` subscriber of that prefix.
 *
 * One range read at revision R (paged, through the connection's read
 * slots), then a watch from R+1 on the connection's one watch stream.
 * Whenever continuity is in doubt (the watch stream broke, the watcher was
 * cancelled because its revision was compacted, a read failed) the prefix is
 * read again at a new revision R' and the cache replaced, which yields every
 * change made meanwhile, removals included; watch events at or below the
 * last read revision are ignored, so replayed events never undo a read.
 *
 * The set goes `stale` when etcd is unreachable (the connection's
 * reachability, decided by a probe of every member), not when one request
 * timed out or one member's stream broke: etcd3 resumes the watch on another
 * member, and a watch that stays down longer than a probe round and a
 * request makes the set stale on its own. Re-reads after an outage start at
 * a random moment within a second and wait for a read slot, so a thousand
 * prefixes coming back never read at once. While etcd refuses the read the
 * state is `refused`, and the read is retried.
 *
 * @example
 * const watch = new PrefixWatch(connection, layout, 'default/services/orders/', 'orders', 'default', logger, (changes) => render(changes));
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
  /** Set while the watch stream is down: makes the set stale if it stays down. */
  private disconnectTimer: NodeJS.Timeout | undefined;
  private readonly backoff: Backoff;
  private readonly warned = new Map<string, string>();
  /** What changed since the last notification (etcd key -> instance before). */
  private changes = new Map<string, ServiceInstance | undefined>();
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
    /** Called after each change: with what changed, or without (after a full read: take it all). */
    private readonly onChange: (changes?: PrefixChanges) => void,
  ) {
    this.backoff = new Backoff({ initialMs: 100, maxMs: Math.max(1_000, connection.settings.probeIntervalMs) });
    this.releaseConnection = connection.acquire();
    this.statusSubscription = connection.reachability.state$.subscribe((state) => {
      if (!state.reachable) this.markStale(`registry unreachable: ${state.reason ?? 'no answer'}`);
      else if (this.needsRead) this.scheduleRead(true);
      else if (this.current.kind === 'stale') {
        // The watch never broke (only requests or a probe went unanswered): the cache is current.
        this.current = { kind: 'ok' };
        this.notify(true);
      }
    });
    this.read();
  }

  get state(): PrefixWatchState {
    return this.current;
  }

  /** Records cached (the prefix's instances). */
  get size(): number {
    return this.entries.size;
  }

  /** The instances cached now. */
  instances(): ServiceInstance[] {
    const out: ServiceInstance[] = [];
    for (const entry of this.entries.values()) out.push(entry.instance);
    return out;
  }

  /** The instance the etcd key holds now, if any. */
  instanceAt(key: string): ServiceInstance | undefined {
    return this.entries.get(key)?.instance;
  }

  /** A full read now, or after a random pause (`jitter`: after an outage, so prefixes spread out). */
  private scheduleRead(jitter: boolean): void {
    if (this.closed || this.reading) {
      if (this.reading) this.readAgain = true;
      return;
    }
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.read(), jitter ? Math.random() * RECOVERY_SPREAD_MS : 0);
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
          if (this.connection.isNoAnswer(error)) {
            // Stale only once etcd is found unreachable (the probe asks every member); until then, retry.
            if (!this.connection.reachability.current.reachable)
              this.markStale(`registry unreachable: ${describeError(error)}`);
          } else this.markRefused(describeError(error));
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

  /** Reads the prefix at one revision, a page at a time, and replaces the cache. */
  private async readOnce(): Promise<void> {
    const prefix = Buffer.from(this.prefix);
    const end = prefixEnd(prefix);
    const kvs: IKeyValue[] = [];
    let from = prefix;
    let revision: string | undefined;
    for (;;) {
      const start = from;
      const atRevision = revision;
      let page;
      try {
        page = await this.connection.reads.run(() =>
          this.connection.call('range', (options) =>
            this.connection.client.kv.range(
              { key: start, range_end: end, limit: PAGE_KEYS, ...(atRevision ? { revision: atRevision } : {}) },
              options,
            ),
          ),
        );
      } catch (error) {
        // Compacted between two pages: start over at the newest revision.
        if (atRevision !== undefined && COMPACTED.test(describeError(error))) {
          kvs.length = 0;
          from = prefix;
          revision = undefined;
          continue;
        }
        throw error;
      }
      if (this.closed) return;
      revision ??= page.header.revision;
      for (const kv of page.kvs) kvs.push(kv);
      if (!page.more || page.kvs.length === 0) break;
      from = Buffer.concat([page.kvs[page.kvs.length - 1].key, ZERO_BYTE]);
    }
    this.entries.clear();
    this.changes.clear();
    const seen = new Set<string>();
    for (const kv of kvs) {
      const key = kv.key.toString('utf8');
      seen.add(key);
      this.applyPut(kv, key);
    }
    for (const key of this.warned.keys()) if (!seen.has(key)) this.warned.delete(key);
    this.readRevision = BigInt(revision);
    const pending = this.buffered ?? [];
    this.buffered = undefined;
    for (const event of pending) this.applyEvent(event);
    this.current = { kind: 'ok' };
    this.ensureWatcher(this.readRevision + 1n);
    this.notify(true);
  }

  /** Tells the listeners: what changed, or (`full`) that they should take the whole cache. */
  private notify(full: boolean): void {
    const changes = this.changes;
    this.changes = new Map();
    this.onChange(full ? undefined : changes);
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
      // One member's stream broke: etcd3 reconnects (to another member in a cluster). The probe
      // decides whether etcd is gone; a stream that stays down makes the set stale on its own.
      this.connection.observe(error);
      if (this.disconnectTimer === undefined) {
        const reason = `etcd watch stream broken: ${describeError(error)}`;
        this.disconnectTimer = setTimeout(() => {
          this.disconnectTimer = undefined;
          this.markStale(reason);
        }, this.staleAfterMs());
      }
    });
    watcher.on('connected', () => {
      if (this.closed || this.watcher !== watcher) return;
      clearTimeout(this.disconnectTimer);
      this.disconnectTimer = undefined;
      this.connection.markReachable();
      // etcd3 replays from the watcher's last revision on reconnect, but a
      // read makes the cache right even if that replay was incomplete.
      if (this.needsRead || this.current.kind === 'stale') this.scheduleRead(true);
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
        this.current = { kind: 'ok' };
        this.notify(false);
      }
    });
  }

  /** How long a broken watch stream may stay down before the set is stale: a probe round and a request. */
  private staleAfterMs(): number {
    const { probeIntervalMs, requestTimeoutMs } = this.connection.settings;
    return probeIntervalMs + requestTimeoutMs;
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
    this.needsRead = true;
    this.scheduleRead(false);
  }

  /** Applies one watch event; true when the cache changed. */
  private applyEvent(event: IEvent): boolean {
    const kv = event.kv;
    if (BigInt(kv.mod_revision) <= this.readRevision) return false;
    const key = kv.key.toString('utf8');
    if (event.type === 'Delete') {
      this.warned.delete(key);
      this.noteChange(key);
      return this.entries.delete(key);
    }
    return this.applyPut(kv, key);
  }

  /** Remembers what `key` held before the first change since the last notification. */
  private noteChange(key: string): void {
    if (!this.changes.has(key)) this.changes.set(key, this.entries.get(key)?.instance);
  }

  private applyPut(kv: IKeyValue, key: string): boolean {
    this.noteChange(key);
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

  /** etcd answered the read with an error: logged once per streak of refusals. */
  private markRefused(why: string): void {
    if (this.closed) return;
    const reason = `etcd refused reading ${this.prefix}: ${why}`;
    if (this.current.kind === 'refused' && this.current.reason === reason) return;
    if (this.current.kind !== 'refused') this.logger.warn(`${reason}; retrying with backoff`);
    this.current = { kind: 'refused', reason };
    this.notify(true);
  }

  private markStale(reason: string): void {
    if (this.closed) return;
    if (this.current.kind === 'stale' && this.current.reason === reason) return;
    // Keep the first reason of an outage: one `stale` emission per outage.
    if (this.current.kind === 'stale') return;
    this.current = { kind: 'stale', reason };
    this.notify(true);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.retryTimer);
    clearTimeout(this.disconnectTimer);
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

/** Re-reads after an outage start within this long of each other (a random moment each). */
const RECOVERY_SPREAD_MS = 1_000;

const ZERO_BYTE = Buffer.from([0]);

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
