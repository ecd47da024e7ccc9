import type { KeptBytes } from './kept-bytes.js';
import type { XdsResourceType } from './xds-resource-type.js';

/** What a subscriber of one resource hears. */
export interface ResourceWatcher<T> {
  /** A new valid version (or the current one, replayed to a new watcher). */
  onResource(resource: T): void;
  /** The control plane says the resource does not exist (absent from a full-state response, or never sent). */
  onDoesNotExist(): void;
  /** The stream broke; fresh data follows once it is back. */
  onUnreachable(reason: string): void;
}

/** Per type URL: who wants which resource, what this stream delivered, and the ACK state. */
export class TypeSubscription {
  readonly watchers = new Map<string, Set<ResourceWatcher<unknown>>>();
  /** Valid resources received on the current stream, with their bytes (a copy) to skip identical resends. */
  readonly cache = new Map<string, { kept: KeptBytes; value: unknown }>();
  /** Resources the control plane said (or showed, by silence) do not exist, on the current stream. */
  readonly missing = new Set<string>();
  readonly timers = new Map<string, NodeJS.Timeout>();
  /** Names sent in a request on the current stream. */
  readonly requested = new Set<string>();
  /**
   * Names whose absence from a full-state response means "deleted": those
   * the stream has seen, and those of the type's first request on the
   * stream. A name added later may meet a response the server built before
   * it read the new subscription; for those, only the resource timer decides.
   */
  readonly authoritative = new Set<string>();
  /** Last accepted version and last nonce seen, on the current stream. */
  version = '';
  nonce = '';
  sentOnStream = false;

  constructor(readonly type: XdsResourceType<unknown>) {}

  forget(name: string): void {
    this.cache.delete(name);
    this.missing.delete(name);
    this.requested.delete(name);
    this.authoritative.delete(name);
    this.clearTimer(name);
  }

  clearTimer(name: string): void {
    const timer = this.timers.get(name);
    if (timer) clearTimeout(timer);
    this.timers.delete(name);
  }

  resetStream(): void {
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    this.cache.clear();
    this.missing.clear();
    this.requested.clear();
    this.authoritative.clear();
    this.version = '';
    this.nonce = '';
    this.sentOnStream = false;
  }
}
