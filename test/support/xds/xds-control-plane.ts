// One file of ~480 lines on purpose: the benchmark loads it as a single
// module (bench/support/xds-fixture.mjs transpiles it on its own), and the
// table, the per-stream subscriptions and the write gate that coalesces
// changes are one state machine.
import * as grpc from '@grpc/grpc-js';
import { loadSync, type PackageDefinition } from '@grpc/proto-loader';
import { xdsProtoIncludeDirs } from '../../../lib/registry/mesh/xds-protos.js';
import { CLUSTER_TYPE, ENDPOINT_TYPE, FULL_STATE_TYPES, LISTENER_TYPE, ROUTE_TYPE } from './xds-resources.js';

/** An encoded google.protobuf.Any. */
export interface AnyResource {
  type_url: string;
  value: Buffer;
}

/**
 * A resource in the table: encoded when first sent (as go-control-plane
 * marshals at send time), so a version replaced before any stream took it
 * costs nothing.
 */
interface TableEntry {
  plain?: Record<string, unknown>;
  any?: AnyResource;
}

/** The entry's Any, encoding it on first use. */
function encoded(typeUrl: string, entry: TableEntry): AnyResource {
  entry.any ??= encodeResource(typeUrl, entry.plain!);
  return entry.any;
}

/** One DiscoveryRequest the control plane received, classified. */
export interface XdsRequestRecord {
  /** Which ADS stream (1, 2, ... in order of opening; a reconnect is a new stream). */
  stream: number;
  typeUrl: string;
  /** `subscribe`: first request of a type or new names; `ack` / `nack`: answer to the last response; `stale`: answer to an older nonce (ignored, as the protocol says). */
  kind: 'subscribe' | 'ack' | 'nack' | 'stale';
  versionInfo: string;
  nonce: string;
  resourceNames: string[];
  error?: { code: number; message: string };
  nodeId?: string;
  at: number;
}

/** One response the control plane sent. */
export interface XdsResponseRecord {
  stream: number;
  typeUrl: string;
  versionInfo: string;
  nonce: string;
  names: string[];
  at: number;
}

interface DiscoveryRequest {
  version_info: string;
  node: { id: string } | null;
  resource_names: string[];
  type_url: string;
  response_nonce: string;
  error_detail: { code: number; message: string } | null;
}

interface Subscription {
  /** `*`: a wildcard subscription (empty names in the first LDS/CDS request). */
  names: Set<string> | '*';
  lastNonce: string;
}

interface AdsStream {
  id: number;
  call: grpc.ServerDuplexStream<DiscoveryRequest, object>;
  subscriptions: Map<string, Subscription>;
  nodeId: string | undefined;
  /** Responses handed to the stream whose write has not completed (HTTP/2 flow control holds them). */
  writing: number;
  /** Types whose last response the client has not answered (ACK or NACK) yet. */
  awaiting: Set<string>;
  /** What changed while a write was under way, by type: the names to send, or every subscribed one. */
  pending: Map<string, Set<string> | 'all'>;
}

const PROTO_FILES = [
  'envoy/service/discovery/v3/ads.proto',
  'envoy/config/listener/v3/listener.proto',
  'envoy/config/route/v3/route.proto',
  'envoy/config/cluster/v3/cluster.proto',
  'envoy/config/endpoint/v3/endpoint.proto',
  'envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto',
  'envoy/extensions/filters/http/router/v3/router.proto',
];

let definition: PackageDefinition | undefined;

function protos(): PackageDefinition {
  // json: true lets nested Any fields be written as { '@type': ..., ...fields }.
  definition ??= loadSync(PROTO_FILES, {
    keepCase: true,
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
    json: true,
    includeDirs: xdsProtoIncludeDirs(),
  });
  return definition;
}

/**
 * Encodes a resource object (snake_case, see xds-resources.ts) as an Any of `typeUrl`.
 *
 * @example
 * const any = encodeResource(CLUSTER_TYPE, edsCluster('orders'));
 */
export function encodeResource(typeUrl: string, resource: object): AnyResource {
  const message = protos()[typeUrl.slice(typeUrl.indexOf('/') + 1)] as
    { serialize?: (value: object) => Buffer } | undefined;
  if (!message?.serialize) throw new Error(`unknown xDS resource type ${typeUrl}`);
  return { type_url: typeUrl, value: message.serialize(resource) };
}

/** Name of a resource object: `name`, or `cluster_name` for a ClusterLoadAssignment. */
function resourceName(typeUrl: string, resource: Record<string, unknown>): string {
  const name = typeUrl === ENDPOINT_TYPE ? resource.cluster_name : resource.name;
  if (typeof name !== 'string' || !name) throw new Error(`a ${typeUrl} resource needs a name`);
  return name;
}

/**
 * A small xDS v3 management server for tests: the Aggregated Discovery
 * Service (state of the world) on @grpc/grpc-js, on a free loopback port,
 * serving LDS, RDS, CDS and EDS from an in-memory table the test edits.
 * Every change is pushed to the streams subscribed to it; every request is
 * recorded and classified (subscribe / ACK / NACK / stale nonce) so tests
 * can assert on the protocol. `stop()` and `start()` restart it on the same
 * port, like a control plane rollout.
 *
 * Like go-control-plane and Istio, it does not queue a response per change
 * on a stream that cannot keep up: while a type's last response is not
 * answered yet (go-control-plane answers a type's next request, which is
 * the ACK), or a response is still being written (HTTP/2 flow control
 * holds it until the client reads), changes are only noted; then each
 * changed type is sent once, with the resources as they are then (the
 * newest assignment per cluster; every earlier one was never sent or
 * encoded).
 *
 * For the scale benchmark: `partialEds` pushes only the ClusterLoadAssignment
 * that changed (as Istio's incremental EDS does; EDS is not a full-state
 * type, so a response may carry a subset), where by default a change sends
 * every subscribed one; `keepRecords: false` keeps no request or response
 * log (a long run would otherwise hold every one).
 *
 * @example
 * const plane = await XdsControlPlane.start(); plane.set(CLUSTER_TYPE, 'orders', edsCluster('orders')); ... await plane.close();
 */
export class XdsControlPlane {
  readonly requests: XdsRequestRecord[] = [];
  readonly responses: XdsResponseRecord[] = [];
  private readonly resources = new Map<string, Map<string, TableEntry>>();
  private readonly versions = new Map<string, number>();
  private readonly streams = new Set<AdsStream>();
  private server: grpc.Server | undefined;
  private streamCount = 0;
  private nonceCount = 0;
  port = 0;
  private partialEds = false;
  private keepRecords = true;

  private constructor() {
    for (const type of [LISTENER_TYPE, ROUTE_TYPE, CLUSTER_TYPE, ENDPOINT_TYPE]) {
      this.resources.set(type, new Map());
      this.versions.set(type, 0);
    }
  }

  /** Starts a control plane on 127.0.0.1: on `port`, or on a free one. */
  static async start(
    options: { port?: number; partialEds?: boolean; keepRecords?: boolean } = {},
  ): Promise<XdsControlPlane> {
    const plane = new XdsControlPlane();
    plane.port = options.port ?? 0;
    plane.partialEds = options.partialEds ?? false;
    plane.keepRecords = options.keepRecords ?? true;
    await plane.start();
    return plane;
  }

  /** `127.0.0.1:<port>`, a gRPC target. */
  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** `http://127.0.0.1:<port>`, as `backend_config.xds_server` takes it. */
  get url(): string {
    return `http://${this.address}`;
  }

  get running(): boolean {
    return this.server !== undefined;
  }

  /** ADS streams currently open. */
  get openStreams(): number {
    return this.streams.size;
  }

  /** gRPC's bootstrap (GRPC_XDS_BOOTSTRAP format) pointing at this server. */
  bootstrap(nodeId = 'switchyard-test'): object {
    return {
      xds_servers: [{ server_uri: this.address, channel_creds: [{ type: 'insecure' }], server_features: ['xds_v3'] }],
      node: { id: nodeId, locality: { region: 'test' } },
    };
  }

  /** Starts serving (again, after `stop()`: on the same port). */
  async start(): Promise<void> {
    if (this.server) return;
    const server = new grpc.Server({ 'grpc.so_reuseport': 0 });
    const ads = protos()['envoy.service.discovery.v3.AggregatedDiscoveryService'] as unknown as grpc.ServiceDefinition;
    server.addService(ads, {
      StreamAggregatedResources: (call: grpc.ServerDuplexStream<DiscoveryRequest, object>) => this.onStream(call),
      DeltaAggregatedResources: (call: grpc.ServerDuplexStream<object, object>) => {
        call.emit('error', {
          code: grpc.status.UNIMPLEMENTED,
          details: 'the test control plane speaks state of the world only',
        });
      },
    });
    this.port = await new Promise<number>((resolve, reject) =>
      server.bindAsync(`127.0.0.1:${this.port}`, grpc.ServerCredentials.createInsecure(), (error, port) =>
        error ? reject(error) : resolve(port),
      ),
    );
    this.server = server;
  }

  /** Hard stop, like a crashed control plane: open streams are cut. The table is kept for `start()`. */
  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    this.streams.clear();
    server?.forceShutdown();
  }

  async close(): Promise<void> {
    await this.stop();
  }

  /** Adds or replaces a resource (encoded from a plain object) and pushes it to subscribers. */
  set(typeUrl: string, resource: Record<string, unknown>): void {
    const name = resourceName(typeUrl, resource);
    this.table(typeUrl).set(name, { plain: resource });
    this.changed(typeUrl, name);
  }

  /** Adds or replaces a resource with exact bytes (for malformed resources) and pushes it. */
  setEncoded(typeUrl: string, name: string, any: AnyResource): void {
    this.table(typeUrl).set(name, { any });
    this.changed(typeUrl, name);
  }

  /** Removes a resource and pushes the new state. */
  remove(typeUrl: string, name: string): void {
    if (this.table(typeUrl).delete(name)) this.changed(typeUrl, name);
  }

  /** Names of `typeUrl` some open stream subscribes to ('*' for a wildcard subscription). */
  subscribed(typeUrl: string): Set<string> {
    const names = new Set<string>();
    for (const stream of this.streams) {
      const sub = stream.subscriptions.get(typeUrl);
      if (sub === undefined) continue;
      if (sub.names === '*') names.add('*');
      else for (const name of sub.names) names.add(name);
    }
    return names;
  }

  /**
   * True when every open stream answered (ACK or NACK) the last response of
   * `typeUrl` it was sent: wait for it before pushing a change whose answer
   * a test inspects, or the answer may be a late ACK of the previous push.
   */
  settled(typeUrl: string): boolean {
    for (const stream of this.streams) {
      const sub = stream.subscriptions.get(typeUrl);
      if (!sub?.lastNonce) continue;
      const answered = this.requests.some(
        (r) => r.stream === stream.id && r.typeUrl === typeUrl && r.nonce === sub.lastNonce && r.kind !== 'stale',
      );
      if (!answered) return false;
    }
    return true;
  }

  /** Requests of one kind (and type), in order. */
  requestsOf(kind: XdsRequestRecord['kind'], typeUrl?: string): XdsRequestRecord[] {
    return this.requests.filter((r) => r.kind === kind && (typeUrl === undefined || r.typeUrl === typeUrl));
  }

  /**
   * Sends a response the clients did not ask for on every open stream: an
   * unknown type, or resources never subscribed (with `withSubscribed`, next
   * to the subscribed ones, so a full-state type deletes nothing). Returns
   * the nonces sent.
   */
  sendUnsolicited(
    typeUrl: string,
    resources: AnyResource[],
    options: { withSubscribed?: boolean; versionInfo?: string } = {},
  ): string[] {
    const nonces: string[] = [];
    for (const stream of this.streams) {
      const nonce = `n${++this.nonceCount}`;
      nonces.push(nonce);
      const sub = stream.subscriptions.get(typeUrl);
      const table = this.resources.get(typeUrl);
      const own =
        options.withSubscribed && sub && table
          ? [...table.entries()]
              .filter(([n]) => sub.names === '*' || sub.names.has(n))
              .map(([, entry]) => encoded(typeUrl, entry))
          : [];
      if (sub) sub.lastNonce = nonce;
      stream.call.write({
        version_info: options.versionInfo ?? 'unsolicited',
        resources: [...own, ...resources],
        type_url: typeUrl,
        nonce,
      });
    }
    return nonces;
  }

  private table(typeUrl: string): Map<string, TableEntry> {
    const table = this.resources.get(typeUrl);
    if (!table) throw new Error(`the test control plane does not serve ${typeUrl}`);
    return table;
  }

  private changed(typeUrl: string, name: string): void {
    this.versions.set(typeUrl, (this.versions.get(typeUrl) ?? 0) + 1);
    for (const stream of this.streams) {
      const sub = stream.subscriptions.get(typeUrl);
      if (!sub) continue;
      // Full-state types go to every subscriber (a deletion is news too); others only where named.
      if (FULL_STATE_TYPES.has(typeUrl) || sub.names === '*' || sub.names.has(name))
        this.respond(stream, typeUrl, this.partialEds && typeUrl === ENDPOINT_TYPE ? name : undefined);
    }
  }

  private onStream(call: grpc.ServerDuplexStream<DiscoveryRequest, object>): void {
    const stream: AdsStream = {
      id: ++this.streamCount,
      call,
      subscriptions: new Map(),
      nodeId: undefined,
      writing: 0,
      awaiting: new Set(),
      pending: new Map(),
    };
    this.streams.add(stream);
    const drop = () => this.streams.delete(stream);
    call.on('data', (request: DiscoveryRequest) => this.onRequest(stream, request));
    call.on('end', () => {
      drop();
      call.end();
    });
    call.on('error', drop);
    call.on('cancelled', drop);
  }

  private onRequest(stream: AdsStream, request: DiscoveryRequest): void {
    if (request.node?.id) stream.nodeId = request.node.id;
    const typeUrl = request.type_url;
    const previous = stream.subscriptions.get(typeUrl);
    const record: XdsRequestRecord = {
      stream: stream.id,
      typeUrl,
      kind: 'subscribe',
      versionInfo: request.version_info,
      nonce: request.response_nonce,
      resourceNames: [...request.resource_names],
      ...(request.error_detail
        ? { error: { code: request.error_detail.code, message: request.error_detail.message } }
        : {}),
      ...(stream.nodeId ? { nodeId: stream.nodeId } : {}),
      at: Date.now(),
    };
    if (previous && previous.lastNonce && request.response_nonce !== previous.lastNonce) {
      // An answer to an older response: the protocol says ignore it; a later ACK carries the names.
      record.kind = 'stale';
      if (this.keepRecords) this.requests.push(record);
      return;
    }
    if (previous && request.response_nonce) {
      record.kind = request.error_detail ? 'nack' : 'ack';
      stream.awaiting.delete(typeUrl);
    }
    if (this.keepRecords) this.requests.push(record);
    if (!this.resources.has(typeUrl)) return;
    const wildcard = !previous && request.resource_names.length === 0 && FULL_STATE_TYPES.has(typeUrl);
    const names: Set<string> | '*' = wildcard
      ? '*'
      : previous?.names === '*' && request.resource_names.length === 0
        ? '*'
        : new Set(request.resource_names);
    const changed = !previous || !sameNames(previous.names, names);
    stream.subscriptions.set(typeUrl, { names, lastNonce: previous?.lastNonce ?? '' });
    if (changed) this.respond(stream, typeUrl);
    this.flush(stream);
  }

  /**
   * Sends the stream its subscribed resources of `typeUrl` (only `only`,
   * those still there, when given), or notes them for `flush` while the
   * stream is still writing the previous response.
   */
  private respond(stream: AdsStream, typeUrl: string, only?: string | readonly string[]): void {
    if (stream.writing > 0 || stream.awaiting.has(typeUrl)) {
      const pending = stream.pending.get(typeUrl);
      if (only === undefined || pending === 'all') stream.pending.set(typeUrl, 'all');
      else {
        const names = pending ?? new Set<string>();
        for (const name of typeof only === 'string' ? [only] : only) names.add(name);
        stream.pending.set(typeUrl, names);
      }
      return;
    }
    const sub = stream.subscriptions.get(typeUrl)!;
    const table = this.table(typeUrl);
    const names =
      only !== undefined
        ? (typeof only === 'string' ? [only] : [...only]).filter((n) => table.has(n))
        : sub.names === '*'
          ? [...table.keys()]
          : [...sub.names].filter((n) => table.has(n));
    const nonce = `n${++this.nonceCount}`;
    const versionInfo = String(this.versions.get(typeUrl) ?? 0);
    sub.lastNonce = nonce;
    if (this.keepRecords)
      this.responses.push({ stream: stream.id, typeUrl, versionInfo, nonce, names, at: Date.now() });
    stream.writing++;
    stream.awaiting.add(typeUrl);
    stream.call.write(
      {
        version_info: versionInfo,
        resources: names.map((n) => encoded(typeUrl, table.get(n)!)),
        type_url: typeUrl,
        nonce,
      },
      () => {
        stream.writing--;
        if (stream.writing === 0) this.flush(stream);
      },
    );
  }

  /**
   * Sends what changed while the stream was busy, once per type, as it is
   * now: the types whose last response was answered, one write at a time.
   */
  private flush(stream: AdsStream): void {
    if (!this.streams.has(stream)) return;
    for (const [typeUrl, names] of [...stream.pending]) {
      if (stream.writing > 0) return; // the write's completion flushes again
      if (stream.awaiting.has(typeUrl)) continue; // its answer does
      stream.pending.delete(typeUrl);
      this.respond(stream, typeUrl, names === 'all' ? undefined : [...names]);
    }
  }
}

function sameNames(a: Set<string> | '*', b: Set<string> | '*'): boolean {
  if (a === '*' || b === '*') return a === b;
  return a.size === b.size && [...a].every((n) => b.has(n));
}
