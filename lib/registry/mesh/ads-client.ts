import * as grpc from '@grpc/grpc-js';
import { BehaviorSubject, distinctUntilChanged, type Observable } from 'rxjs';
import { Backoff } from '../../core/backoff.js';
import type { DiscoveryLogger } from '../registry.interface.js';
import type { MeshTuning, XdsServerTarget } from './mesh-settings.js';
import { XdsResourceError } from './xds-load-assignment.js';
import {
  RESOURCE_WRAPPER_TYPE_URL,
  type AnyMessage,
  type DiscoveryRequestMessage,
  type DiscoveryResponseMessage,
  type NodeMessage,
  type XdsProtos,
} from './xds-protos.js';
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

/** Reachability of the control plane, as the health layer reads it. */
export interface AdsConnectionState {
  /** Undefined until the first stream answered or failed. */
  readonly reachable: boolean | undefined;
  /** For `reachable === false`: `registry unreachable: ...`. */
  readonly reason?: string;
  readonly since: number;
}

export interface AdsClientOptions {
  server: XdsServerTarget;
  node: NodeMessage;
  protos: XdsProtos;
  logger: DiscoveryLogger;
  tuning?: MeshTuning;
}

const INVALID_ARGUMENT = 3;
const DEFAULT_RESOURCE_TIMEOUT_MS = 15_000;

/** Per type URL: who wants which resource, what this stream delivered, and the ACK state. */
class TypeSubscription {
  readonly watchers = new Map<string, Set<ResourceWatcher<unknown>>>();
  /** Valid resources received on the current stream, with their bytes to skip identical resends. */
  readonly cache = new Map<string, { bytes: Buffer; value: unknown }>();
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

/**
 * switchyard's own xDS v3 client: one Aggregated Discovery Service stream
 * (state of the world) shared by every watch of a registry. It subscribes
 * to the resources watchers ask for, ACKs valid responses and NACKs invalid
 * ones (with `error_detail`, keeping the previous version), ignores types
 * and resources it never asked for, and reconnects with backoff,
 * re-subscribing everything on the new stream. The stream opens with the
 * first watch and closes with the last.
 *
 * @example
 * const ads = new AdsClient({ server, node, protos, logger }); const stop = ads.watch(CLUSTER_RESOURCE, 'orders', watcher);
 */
export class AdsClient {
  private readonly types = new Map<string, TypeSubscription>();
  private readonly backoff: Backoff;
  private readonly resourceTimeoutMs: number;
  private readonly state = new BehaviorSubject<AdsConnectionState>({ reachable: undefined, since: Date.now() });
  /** Reachability changes (replays the current state on subscribe). */
  readonly connectionState$: Observable<AdsConnectionState> = this.state.pipe(
    distinctUntilChanged((a, b) => a.reachable === b.reachable && a.reason === b.reason),
  );
  private client: grpc.Client | undefined;
  private call: grpc.ClientDuplexStream<DiscoveryRequestMessage, DiscoveryResponseMessage> | undefined;
  private answered = false;
  private nodeSent = false;
  private reconnectTimer: NodeJS.Timeout | undefined;
  /** Set while the control plane is unreachable: the reason every watcher was told. */
  private unreachable: string | undefined;
  private closed = false;

  constructor(private readonly options: AdsClientOptions) {
    const tuning = options.tuning ?? {};
    this.backoff = new Backoff({ initialMs: tuning.backoffInitialMs ?? 500, maxMs: tuning.backoffMaxMs ?? 30_000 });
    this.resourceTimeoutMs = tuning.resourceTimeoutMs ?? DEFAULT_RESOURCE_TIMEOUT_MS;
  }

  get connectionState(): AdsConnectionState {
    return this.state.value;
  }

  /** True while a stream is open or being retried. */
  get active(): boolean {
    return this.call !== undefined || this.reconnectTimer !== undefined;
  }

  /**
   * Subscribes `watcher` to resource `name` of `type`; returns the
   * unsubscribe function. What is already known (a resource received on the
   * current stream, its absence, or an outage) is replayed at once.
   */
  watch<T>(type: XdsResourceType<T>, name: string, watcher: ResourceWatcher<T>): () => void {
    if (this.closed) return () => undefined;
    let sub = this.types.get(type.typeUrl);
    if (!sub) this.types.set(type.typeUrl, (sub = new TypeSubscription(type)));
    let watchers = sub.watchers.get(name);
    const isNew = watchers === undefined;
    if (!watchers) sub.watchers.set(name, (watchers = new Set()));
    const generic = watcher as ResourceWatcher<unknown>;
    watchers.add(generic);
    if (this.unreachable !== undefined) generic.onUnreachable(this.unreachable);
    else if (sub.cache.has(name)) generic.onResource(sub.cache.get(name)!.value);
    else if (sub.missing.has(name)) generic.onDoesNotExist();
    if (isNew) {
      if (this.call) this.sendRequest(sub);
      else if (!this.reconnectTimer) this.startStream();
    }
    const owner = sub;
    return () => this.unwatch(owner, name, generic);
  }

  /** Ends the stream, the channel and every timer; idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.stopStream();
    this.types.clear();
    this.client?.close();
    this.client = undefined;
    this.state.complete();
  }

  private unwatch(sub: TypeSubscription, name: string, watcher: ResourceWatcher<unknown>): void {
    const watchers = sub.watchers.get(name);
    if (!watchers?.delete(watcher) || watchers.size > 0) return;
    sub.watchers.delete(name);
    sub.forget(name);
    if (this.closed) return;
    if (![...this.types.values()].some((s) => s.watchers.size > 0)) {
      // Nobody watches anything: no stream to keep open (a new watch reopens it).
      this.stopStream();
      this.unreachable = undefined;
      return;
    }
    if (this.call && sub.sentOnStream) this.sendRequest(sub);
  }

  private startStream(): void {
    this.reconnectTimer = undefined;
    if (this.closed) return;
    const { server, protos } = this.options;
    this.client ??= new grpc.Client(
      server.target,
      server.secure ? grpc.credentials.createSsl() : grpc.credentials.createInsecure(),
      {
        // Let the channel's own reconnects follow the same pace as the stream's.
        'grpc.initial_reconnect_backoff_ms': this.options.tuning?.backoffInitialMs ?? 500,
        'grpc.max_reconnect_backoff_ms': this.options.tuning?.backoffMaxMs ?? 30_000,
        // Notice a control plane that vanished without closing the connection; gRPC
        // servers refuse pings more often than every 5 minutes by default.
        'grpc.keepalive_time_ms': 330_000,
        'grpc.keepalive_timeout_ms': 20_000,
      },
    );
    for (const sub of this.types.values()) sub.resetStream();
    const call = this.client.makeBidiStreamRequest(
      protos.ads.path,
      protos.ads.requestSerialize,
      protos.ads.responseDeserialize,
      new grpc.Metadata(),
    );
    this.call = call;
    this.answered = false;
    this.nodeSent = false;
    call.on('data', (response: DiscoveryResponseMessage) => {
      if (this.call !== call) return;
      try {
        this.onResponse(response);
      } catch (error) {
        this.options.logger.error(`mesh: handling an xDS response failed: ${(error as Error).stack ?? String(error)}`);
      }
    });
    // The 'status' handler decides what an ended stream means; this one only keeps errors from being unhandled.
    call.on('error', () => undefined);
    call.on('status', (status: grpc.StatusObject) => {
      if (this.call !== call) return;
      this.onStreamEnd(status);
    });
    for (const sub of this.types.values()) if (sub.watchers.size > 0) this.sendRequest(sub);
  }

  private stopStream(): void {
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    const call = this.call;
    this.call = undefined;
    for (const sub of this.types.values()) sub.resetStream();
    call?.cancel();
  }

  private onStreamEnd(status: grpc.StatusObject): void {
    this.call = undefined;
    for (const sub of this.types.values()) for (const timer of sub.timers.values()) clearTimeout(timer);
    const detail = `${grpc.status[status.code] ?? status.code}: ${status.details || 'stream ended'}`;
    // A control plane may end a healthy stream on purpose (rebalancing, max
    // connection age): reconnect without calling it an outage; the next failure is one.
    if (status.code !== grpc.status.OK || !this.answered) {
      this.markUnreachable(`registry unreachable: xDS control plane at ${this.options.server.display} (${detail})`);
    } else {
      this.options.logger.log(`mesh: the xDS control plane ended the stream (${detail}); reconnecting`);
    }
    this.reconnectTimer = setTimeout(() => this.startStream(), this.backoff.next());
  }

  private markUnreachable(reason: string): void {
    if (this.unreachable !== undefined) return;
    this.unreachable = reason;
    this.state.next({ reachable: false, reason, since: Date.now() });
    this.options.logger.warn(`mesh: ${reason}; serving the last known endpoints and retrying with backoff`);
    for (const sub of this.types.values()) {
      for (const watchers of [...sub.watchers.values()])
        for (const watcher of [...watchers]) watcher.onUnreachable(reason);
    }
  }

  private onResponse(response: DiscoveryResponseMessage): void {
    if (!this.answered) {
      this.answered = true;
      this.backoff.reset();
      if (this.unreachable !== undefined)
        this.options.logger.log(`mesh: the xDS control plane at ${this.options.server.display} answers again`);
      this.unreachable = undefined;
      if (this.state.value.reachable !== true) this.state.next({ reachable: true, since: Date.now() });
    }
    const sub = this.types.get(response.type_url);
    if (!sub || !sub.sentOnStream) {
      // A type this client never asked for on this stream: ignored (neither ACKed nor NACKed).
      this.options.logger.debug?.(`mesh: ignoring an xDS response of unrequested type ${response.type_url}`);
      return;
    }
    const { type } = sub;
    const errors: string[] = [];
    const received = new Map<string, { bytes: Buffer; value: unknown }>();
    const invalid = new Set<string>();
    let unnamed = false;
    (response.resources ?? []).forEach((wrapped, i) => {
      const any = this.unwrap(wrapped, i, errors);
      if (!any) {
        unnamed = true;
        return;
      }
      if (any.type_url !== type.typeUrl) {
        errors.push(`resources[${i}]: a ${any.type_url} resource in a ${type.typeUrl} response`);
        unnamed = true;
        return;
      }
      let message: unknown;
      try {
        message = this.options.protos.decoder(type.typeUrl)!(any.value);
      } catch (error) {
        errors.push(`resources[${i}]: not a valid ${type.label} resource (${(error as Error).message})`);
        unnamed = true;
        return;
      }
      const name = type.nameOf(message);
      if (!sub.watchers.has(name)) return; // never asked for: ignored
      if (received.has(name) || invalid.has(name)) {
        errors.push(`${type.label} resource '${name}' appears twice`);
        return;
      }
      try {
        received.set(name, { bytes: any.value, value: type.parse(message) });
      } catch (error) {
        if (!(error instanceof XdsResourceError)) throw error;
        invalid.add(name);
        sub.authoritative.add(name);
        errors.push(`${type.label} resource '${name}': ${error.message}`);
      }
    });
    // An invalid resource with no valid version before it: nothing usable exists, say so now.
    for (const name of invalid) if (!sub.cache.has(name) && !sub.missing.has(name)) this.markMissing(sub, name);

    for (const [name, resource] of received) {
      sub.clearTimer(name);
      sub.missing.delete(name);
      sub.authoritative.add(name);
      const previous = sub.cache.get(name);
      sub.cache.set(name, resource);
      if (previous && previous.bytes.equals(resource.bytes)) continue;
      for (const watcher of [...(sub.watchers.get(name) ?? [])]) watcher.onResource(resource.value);
    }
    // Full-state types list every existing subscribed resource; absence is deletion
    // (unless an undecodable entry might have been the one missing).
    if (type.fullState && !unnamed) {
      for (const name of [...sub.watchers.keys()]) {
        if (received.has(name) || invalid.has(name) || sub.missing.has(name) || !sub.authoritative.has(name)) continue;
        this.markMissing(sub, name);
      }
    }

    sub.nonce = response.nonce;
    if (errors.length === 0) {
      sub.version = response.version_info;
      this.sendRequest(sub);
    } else {
      const message = errors.join('; ');
      this.options.logger.warn(
        `mesh: rejected ${type.label} version '${response.version_info}' (NACK), keeping the previous version: ${message}`,
      );
      this.sendRequest(sub, { code: INVALID_ARGUMENT, message });
    }
  }

  /** Unwraps `envoy.service.discovery.v3.Resource` envelopes; undefined (with an error noted) when that fails. */
  private unwrap(any: AnyMessage, index: number, errors: string[]): AnyMessage | undefined {
    if (any.type_url !== RESOURCE_WRAPPER_TYPE_URL) return any;
    try {
      const wrapper = this.options.protos.decoder(RESOURCE_WRAPPER_TYPE_URL)!(any.value) as {
        resource?: AnyMessage | null;
      };
      if (wrapper.resource) return wrapper.resource;
      errors.push(`resources[${index}]: an empty Resource wrapper`);
    } catch (error) {
      errors.push(`resources[${index}]: not a valid Resource wrapper (${(error as Error).message})`);
    }
    return undefined;
  }

  private markMissing(sub: TypeSubscription, name: string): void {
    sub.clearTimer(name);
    sub.cache.delete(name);
    sub.missing.add(name);
    for (const watcher of [...(sub.watchers.get(name) ?? [])]) watcher.onDoesNotExist();
  }

  private sendRequest(sub: TypeSubscription, errorDetail?: { code: number; message: string }): void {
    const call = this.call;
    if (!call) return;
    const names = [...sub.watchers.keys()];
    // An empty list in the first request of a type would mean "everything" (wildcard): send none then.
    if (names.length === 0 && !sub.sentOnStream) return;
    const request: DiscoveryRequestMessage = {
      version_info: sub.version,
      resource_names: names,
      type_url: sub.type.typeUrl,
      response_nonce: sub.nonce,
      ...(this.nodeSent ? {} : { node: this.options.node }),
      ...(errorDetail ? { error_detail: errorDetail } : {}),
    };
    this.nodeSent = true;
    for (const name of names) {
      if (!sub.sentOnStream) sub.authoritative.add(name);
      sub.requested.add(name);
    }
    sub.sentOnStream = true;
    call.write(request);
    for (const name of names) {
      if (sub.cache.has(name) || sub.missing.has(name) || sub.timers.has(name)) continue;
      sub.timers.set(
        name,
        setTimeout(() => this.onResourceTimeout(sub, name), this.resourceTimeoutMs),
      );
    }
  }

  /** A subscribed resource the control plane never sent: absent, as gRPC decides after 15 s. */
  private onResourceTimeout(sub: TypeSubscription, name: string): void {
    sub.timers.delete(name);
    if (!this.call || !sub.watchers.has(name) || sub.cache.has(name) || sub.missing.has(name)) return;
    if (this.client?.getChannel().getConnectivityState(false) !== grpc.connectivityState.READY) {
      // Not connected: silence says nothing about the resource; wait another round.
      sub.timers.set(
        name,
        setTimeout(() => this.onResourceTimeout(sub, name), this.resourceTimeoutMs),
      );
      return;
    }
    this.options.logger.warn(
      `mesh: the xDS control plane sent no ${sub.type.label} resource '${name}' within ${this.resourceTimeoutMs} ms; treating it as absent`,
    );
    this.markMissing(sub, name);
  }
}
