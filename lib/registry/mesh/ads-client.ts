// One file of ~470 lines on purpose: the stream, the per-type ACK state,
// the resource timers and the batching of superseded responses are one
// state machine, each step touching all of them. What is separable lives
// beside it: decoding a response (xds-response.ts), reading one from its
// bytes (xds-wire.ts) and the per-type bookkeeping (xds-type-subscription.ts).
import * as grpc from '@grpc/grpc-js';
import { Backoff } from '../../core/backoff.js';
import type { DiscoveryLogger } from '../registry.interface.js';
import { ReachabilityTracker } from '../shared/reachability.js';
import { KeptBytes } from './kept-bytes.js';
import type { XdsServerTarget } from './mesh.schema.js';
import {
  RESOURCE_WRAPPER_TYPE_URL,
  type DiscoveryRequestMessage,
  type DiscoveryResponseMessage,
  type NodeMessage,
  type XdsProtos,
} from './xds-protos.js';
import type { XdsResourceType } from './xds-resource-type.js';
import { decodeResponse, type DecodedResponse } from './xds-response.js';
import { TypeSubscription, type ResourceWatcher } from './xds-type-subscription.js';
import { peekResourceName, peekResponse, supersededIn } from './xds-wire.js';

export type { ResourceWatcher } from './xds-type-subscription.js';

/** Tuning that has no configuration key (tests shorten it). */
export interface MeshTuning {
  /** Reconnect backoff of the ADS stream, ms. Default 500 .. 30 000. */
  backoffInitialMs?: number;
  backoffMaxMs?: number;
  /**
   * How long a subscribed resource may stay unanswered on a connected
   * stream before it counts as "does not exist" (gRPC's 15 s). Default 15 000.
   */
  resourceTimeoutMs?: number;
  /** Deadline of `reachability.probe()` while no stream is open, ms. Default 5 000. */
  probeTimeoutMs?: number;
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

/** What the client received and how much of it a later response made moot (diagnostics and tests). */
export interface AdsCounters {
  /** Responses received on any stream. */
  responses: number;
  /** Responses left undecoded: a later response received in the same batch carried every resource they held. */
  superseded: number;
}

/** Superseded responses of one type, by resource name, since the last applied response naming it. */
type Held = Map<string, DiscoveryResponseMessage[]>;

/**
 * switchyard's own xDS v3 client: one Aggregated Discovery Service stream
 * (state of the world) shared by every watch of a registry. It subscribes
 * to the resources watchers ask for, ACKs valid responses and NACKs invalid
 * ones (with `error_detail`, keeping the previous version), ignores types
 * and resources it never asked for, and reconnects with backoff,
 * re-subscribing everything on the new stream. The stream opens with the
 * first watch and closes with the last. Of responses that arrive together
 * (a control plane that got ahead), those a later one replaces entirely
 * are neither decoded nor ACKed (see `onResponses`).
 *
 * @example
 * const ads = new AdsClient({ server, node, protos, logger }); const stop = ads.watch(CLUSTER_RESOURCE, 'orders', watcher);
 */
export class AdsClient {
  private readonly types = new Map<string, TypeSubscription>();
  private readonly backoff: Backoff;
  private readonly resourceTimeoutMs: number;
  /** Whether the control plane answers: the ADS stream while one is open, a connection check otherwise. */
  readonly reachability = new ReachabilityTracker(() => this.checkControlPlane());
  private client: grpc.Client | undefined;
  private call: grpc.ClientDuplexStream<DiscoveryRequestMessage, Buffer> | undefined;
  private answered = false;
  private nodeSent = false;
  private reconnectTimer: NodeJS.Timeout | undefined;
  /** Set while the control plane is unreachable: the reason every watcher was told. */
  private unreachable: string | undefined;
  private closed = false;
  readonly counters: AdsCounters = { responses: 0, superseded: 0 };

  constructor(private readonly options: AdsClientOptions) {
    const tuning = options.tuning ?? {};
    this.backoff = new Backoff({ initialMs: tuning.backoffInitialMs ?? 500, maxMs: tuning.backoffMaxMs ?? 30_000 });
    this.resourceTimeoutMs = tuning.resourceTimeoutMs ?? DEFAULT_RESOURCE_TIMEOUT_MS;
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
    this.reachability.close();
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
    const { protos } = this.options;
    const client = this.channel();
    for (const sub of this.types.values()) sub.resetStream();
    // Responses arrive as bytes: what is read from them before any full
    // decode decides which ones a later response already replaced.
    const call = client.makeBidiStreamRequest(
      protos.ads.path,
      protos.ads.requestSerialize,
      (bytes: Buffer) => bytes,
      new grpc.Metadata(),
    );
    this.call = call;
    this.answered = false;
    this.nodeSent = false;
    // Responses received within one event-loop turn are handled together, once the turn's I/O is read.
    const inbox: Buffer[] = [];
    let scheduled = false;
    const drain = (): void => {
      scheduled = false;
      const batch = inbox.splice(0);
      if (this.call === call && batch.length > 0) this.onResponses(batch);
    };
    call.on('data', (bytes: Buffer) => {
      if (this.call !== call) return;
      inbox.push(bytes);
      if (!scheduled) {
        scheduled = true;
        setImmediate(drain);
      }
    });
    // The 'status' handler decides what an ended stream means; this one only keeps errors from being unhandled.
    call.on('error', () => undefined);
    call.on('status', (status: grpc.StatusObject) => {
      if (this.call !== call) return;
      drain(); // what arrived before the end is news as before
      this.onStreamEnd(status);
    });
    for (const sub of this.types.values()) if (sub.watchers.size > 0) this.sendRequest(sub);
  }

  private channel(): grpc.Client {
    const { server, tuning } = this.options;
    this.client ??= new grpc.Client(
      server.target,
      server.secure ? grpc.credentials.createSsl() : grpc.credentials.createInsecure(),
      {
        // Let the channel's own reconnects follow the same pace as the stream's.
        'grpc.initial_reconnect_backoff_ms': tuning?.backoffInitialMs ?? 500,
        'grpc.max_reconnect_backoff_ms': tuning?.backoffMaxMs ?? 30_000,
        // Notice a control plane that vanished without closing the connection; gRPC
        // servers refuse pings more often than every 5 minutes by default.
        'grpc.keepalive_time_ms': 330_000,
        'grpc.keepalive_timeout_ms': 20_000,
        // HTTP/2's default window (64 KiB) makes a response of a few MiB (EDS of 100
        // clusters x 1,000 endpoints) wait for a window update every 64 KiB. Envoy opens
        // 256 MiB; 8 MiB lets a large response arrive in one go. (grpc-js >= 1.13.)
        'grpc-node.flow_control_window': 8 * 1024 * 1024,
      },
    );
    return this.client;
  }

  /**
   * The probe: while a stream is open it is the truth (an outage it saw is
   * the answer); otherwise the channel must connect within the probe deadline.
   */
  private async checkControlPlane(): Promise<void> {
    if (this.unreachable !== undefined) throw new Error(this.unreachable);
    if (this.active) return;
    const timeoutMs = this.options.tuning?.probeTimeoutMs ?? 5_000;
    const client = this.channel();
    await new Promise<void>((resolve, reject) =>
      client.waitForReady(Date.now() + timeoutMs, (error) =>
        error
          ? reject(
              new Error(
                `registry unreachable: xDS control plane at ${this.options.server.display} (not connected within ${timeoutMs} ms)`,
              ),
            )
          : resolve(),
      ),
    );
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
    this.reachability.unreachable(reason);
    this.options.logger.warn(`mesh: ${reason}; serving the last known endpoints and retrying with backoff`);
    for (const sub of this.types.values()) {
      for (const watchers of [...sub.watchers.values()])
        for (const watcher of [...watchers]) watcher.onUnreachable(reason);
    }
  }

  /**
   * Handles the responses received in one turn, in order, except those a
   * later one in the batch replaces entirely (every resource they carry is
   * in a later response of the same type): those are neither decoded nor
   * ACKed (the control plane ignores an answer to any but its latest
   * nonce, and the later response's ACK names its newer version). Should
   * the later response not hold a valid copy of such a resource, the
   * newest valid skipped copy is applied before it, so the outcome is the
   * one of applying every response in order.
   */
  private onResponses(batch: Buffer[]): void {
    this.counters.responses += batch.length;
    const responses: Array<DiscoveryResponseMessage | undefined> = batch.map((bytes) => {
      try {
        return peekResponse(bytes) ?? this.options.protos.ads.responseDeserialize(bytes);
      } catch (error) {
        this.options.logger.error(`mesh: an xDS response does not decode, ignored: ${(error as Error).message}`);
        return undefined;
      }
    });
    const names = responses.map((response) => (response ? this.namesIn(response) : undefined));
    const superseded = supersededIn(
      responses.map((response, i) => ({ typeUrl: response?.type_url ?? '', names: names[i] })),
    );
    const held = new Map<string, Held>();
    responses.forEach((response, i) => {
      if (!response) return;
      if (superseded[i]) {
        this.counters.superseded++;
        let byName = held.get(response.type_url);
        if (!byName) held.set(response.type_url, (byName = new Map()));
        for (const name of names[i]!) {
          const list = byName.get(name);
          if (list) list.push(response);
          else byName.set(name, [response]);
        }
        return;
      }
      try {
        this.onResponse(response, held.get(response.type_url), names[i]);
      } catch (error) {
        this.options.logger.error(`mesh: handling an xDS response failed: ${(error as Error).stack ?? String(error)}`);
      }
    });
  }

  /** Names of the resources a response carries, read from their bytes; undefined when one cannot be told. */
  private namesIn(response: DiscoveryResponseMessage): string[] | undefined {
    const sub = this.types.get(response.type_url);
    if (!sub || !sub.sentOnStream) return undefined;
    const names: string[] = [];
    for (const any of response.resources ?? []) {
      const name = peekResourceName(any, sub.type.typeUrl, sub.type.nameField, RESOURCE_WRAPPER_TYPE_URL);
      if (name === undefined) return undefined;
      names.push(name);
    }
    return names;
  }

  /**
   * A resource `decoded` lacks a valid copy of, while skipped responses
   * carried it: the newest valid skipped copy becomes the current one,
   * as if those responses had been applied. Only the names this response
   * carries are settled; the others wait for the response that replaced them.
   */
  private recoverSkipped(sub: TypeSubscription, decoded: DecodedResponse, names: readonly string[], held: Held): void {
    for (const name of names) {
      const skipped = held.get(name);
      held.delete(name);
      if (!skipped || decoded.received.has(name)) continue;
      for (let i = skipped.length - 1; i >= 0; i--) {
        const wanted = (n: string): boolean => n === name && sub.watchers.has(n);
        const previousOf = (n: string): unknown => sub.cache.get(n)?.value;
        const copy = decodeResponse(skipped[i], sub.type, wanted, this.options.protos, previousOf).received.get(name);
        if (!copy) continue;
        this.applyResource(sub, name, copy);
        break;
      }
    }
  }

  private applyResource(sub: TypeSubscription, name: string, resource: { bytes: Buffer; value: unknown }): void {
    sub.clearTimer(name);
    sub.missing.delete(name);
    sub.authoritative.add(name);
    const previous = sub.cache.get(name);
    const unchanged = previous !== undefined && previous.kept.bytes.equals(resource.bytes);
    const kept = previous?.kept ?? new KeptBytes();
    if (!unchanged) kept.keep(resource.bytes);
    sub.cache.set(name, { kept, value: resource.value });
    if (unchanged) return;
    for (const watcher of [...(sub.watchers.get(name) ?? [])]) watcher.onResource(resource.value);
  }

  private onResponse(response: DiscoveryResponseMessage, held?: Held, names?: readonly string[]): void {
    if (!this.answered) {
      this.answered = true;
      this.backoff.reset();
      if (this.unreachable !== undefined)
        this.options.logger.log(`mesh: the xDS control plane at ${this.options.server.display} answers again`);
      this.unreachable = undefined;
      this.reachability.reachable();
    }
    const sub = this.types.get(response.type_url);
    if (!sub || !sub.sentOnStream) {
      // A type this client never asked for on this stream: ignored (neither ACKed nor NACKed).
      this.options.logger.debug?.(`mesh: ignoring an xDS response of unrequested type ${response.type_url}`);
      return;
    }
    const { type } = sub;
    const decoded = decodeResponse(
      response,
      type,
      (name) => sub.watchers.has(name),
      this.options.protos,
      (name) => sub.cache.get(name)?.value,
    );
    const { received, invalid, unnamed, errors } = decoded;
    if (held && names) this.recoverSkipped(sub, decoded, names, held);
    for (const name of invalid) sub.authoritative.add(name);
    // An invalid resource with no valid version before it: nothing usable exists, say so now.
    for (const name of invalid) if (!sub.cache.has(name) && !sub.missing.has(name)) this.markMissing(sub, name);

    for (const [name, resource] of received) this.applyResource(sub, name, resource);
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
