// One file of ~780 lines on purpose: the benchmark loads it as a single
// module (bench/support/xds-fixture.mjs transpiles exactly this file and
// xds-resources.ts), the table, the per-stream subscriptions and the write
// gate that coalesces changes are one state machine, and the
// ClusterLoadAssignment encoder (~300 lines) is its send path. Moving that
// encoder to a module of its own needs that module added to the fixture's
// list.
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
 * costs nothing; a ClusterLoadAssignment is encoded in the turn after it
 * was set, while the streams wait for their clients' answers, so the next
 * response goes out without waiting for its encoding.
 */
interface TableEntry {
  plain?: Record<string, unknown>;
  any?: AnyResource;
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

type Serialize = (value: object) => Buffer;

function serializer(messageName: string): Serialize {
  const message = protos()[messageName] as { serialize?: Serialize } | undefined;
  if (!message?.serialize) throw new Error(`unknown xDS message ${messageName}`);
  return message.serialize;
}

/** What tells apart LbEndpoints of the shape `loadAssignment` builds for an address. */
interface AddressKey {
  port: number;
  host: string;
  health: string;
  hostname: string | undefined;
}

/** An encoded LbEndpoint, its key, and how many clusters' latest assignments hold it. */
interface CachedLbEndpoint {
  bytes: Buffer;
  users: number;
  /** Its address key, or `valueKey`'s spelling of an LbEndpoint of another shape. */
  key: AddressKey | string;
}

interface LocalityParts {
  head: Uint8Array | undefined;
  lbEndpoints: Uint8Array[];
  tail: Uint8Array;
  size: number;
}

/**
 * Encodes ClusterLoadAssignments byte for byte as `encodeResource` does,
 * at a cost that follows what changed: each LbEndpoint is encoded once and
 * its bytes kept under an exact key of its plain object; the message around
 * them is assembled by hand (protobufjs writes a message's fields in number
 * order, each on its own, so field 1 + field 2s + the rest, each from the
 * normal encoder, is the same bytes). The scale benchmark re-sends clusters
 * of 1,000 endpoints of which a few changed; encoding each whole took
 * protobufjs half a millisecond to more and bounded how fast changes went
 * out. The cache holds only LbEndpoints some cluster's latest encoded
 * assignment uses (`forget` a cluster that is gone). Anything unusual (no
 * array where one belongs, an LbEndpoint that is not a plain object) takes
 * the normal encoder, so errors stay protobufjs's.
 *
 * @example
 * const encoder = new LoadAssignmentEncoder(); const any = encoder.encode(loadAssignment('orders', localities));
 */
export class LoadAssignmentEncoder {
  /**
   * LbEndpoints of the address shape by port, then host (a number and a
   * short string to hash: cheaper than building and hashing one key string
   * of all four); those at one address differ in health or hostname, a list
   * of one or two.
   */
  private readonly byAddress = new Map<number, Map<string, CachedLbEndpoint[]>>();
  private addressed = 0;
  /** LbEndpoints of any other shape, by `valueKey`. */
  private readonly bySpelling = new Map<string, CachedLbEndpoint>();
  /**
   * Address-only LbEndpoints frozen at every level, by identity: they cannot
   * change, so a caller that keeps its objects (a control plane keeps its
   * endpoints) skips the checks and lookups by value; a cached entry dropped
   * since (no cluster held it) is looked up by value again.
   */
  private readonly frozen = new WeakMap<object, CachedLbEndpoint>();
  /** By cluster name: the cached LbEndpoints its latest encoded assignment uses. */
  private readonly holders = new Map<string, CachedLbEndpoint[]>();
  private readonly assignment = serializer('envoy.config.endpoint.v3.ClusterLoadAssignment');
  private readonly locality = serializer('envoy.config.endpoint.v3.LocalityLbEndpoints');
  private readonly lbEndpoint = serializer('envoy.config.endpoint.v3.LbEndpoint');

  /** LbEndpoints held, for tests of the bound. */
  get cachedEndpoints(): number {
    return this.addressed + this.bySpelling.size;
  }

  encode(resource: Record<string, unknown>): AnyResource {
    const localities = resource.endpoints;
    if (!Array.isArray(localities) || !localities.every(isSplittableLocality))
      return encodeResource(ENDPOINT_TYPE, resource);
    const used: CachedLbEndpoint[] = [];
    try {
      const value = this.assemble(resource, localities, used);
      this.hold(typeof resource.cluster_name === 'string' ? resource.cluster_name : '', used);
      return { type_url: ENDPOINT_TYPE, value };
    } catch (error) {
      this.release(used); // what protobufjs rejected holds nothing
      throw error;
    }
  }

  /** Drops what `clusterName`'s last assignment held (the cluster is gone or sent as raw bytes). */
  forget(clusterName: string): void {
    this.hold(clusterName, []);
  }

  /** The message, written once into a buffer of its size: field 1, field 2s by hand, then the rest. */
  private assemble(
    resource: Record<string, unknown>,
    localities: Record<string, unknown>[],
    used: CachedLbEndpoint[],
  ): Buffer {
    const { cluster_name, endpoints: _endpoints, ...rest } = resource;
    const head = cluster_name === undefined ? undefined : this.assignment({ cluster_name });
    const tail = this.assignment(rest); // policy (4), named_endpoints (5)
    const parts = localities.map((locality) => this.localityParts(locality, used));
    let size = (head?.length ?? 0) + tail.length;
    for (const part of parts) size += 1 + varintLength(part.size) + part.size;
    const message = Buffer.allocUnsafe(size);
    let at = head ? copy(head, message, 0) : 0;
    for (const part of parts) {
      at = writeTag(message, at, 2, part.size);
      if (part.head) at = copy(part.head, message, at);
      for (const bytes of part.lbEndpoints) at = copy(bytes, message, writeTag(message, at, 2, bytes.length));
      at = copy(part.tail, message, at);
    }
    copy(tail, message, at);
    return message;
  }

  /** A LocalityLbEndpoints in pieces: locality (1), the LbEndpoints (2), the rest (3 and up), and its size. */
  private localityParts(locality: Record<string, unknown>, used: CachedLbEndpoint[]): LocalityParts {
    const { locality: where, lb_endpoints, ...rest } = locality;
    const head = where === undefined ? undefined : this.locality({ locality: where });
    const lbEndpoints = ((lb_endpoints ?? []) as Record<string, unknown>[]).map((lbEndpoint) =>
      this.lbEndpointBytes(lbEndpoint, used),
    );
    const tail = this.locality(rest);
    let size = (head?.length ?? 0) + tail.length;
    for (const bytes of lbEndpoints) size += 1 + varintLength(bytes.length) + bytes.length;
    return { head, lbEndpoints, tail, size };
  }

  private lbEndpointBytes(lbEndpoint: Record<string, unknown>, used: CachedLbEndpoint[]): Buffer {
    let cached = this.frozen.get(lbEndpoint);
    if (cached !== undefined && cached.users > 0) {
      cached.users++;
      used.push(cached);
      return cached.bytes;
    }
    cached = undefined;
    const socket = addressOnly(lbEndpoint);
    if (socket) {
      // A Map takes -0 for 0: both encode as port 0 (a uint32). An undefined hostname is not encoded, as an absent one.
      const health = lbEndpoint.health_status as string;
      const hostname = (lbEndpoint.endpoint as Record<string, unknown>).hostname as string | undefined;
      const variants = this.byAddress.get(socket.port_value)?.get(socket.address);
      if (variants)
        for (const variant of variants) {
          const key = variant.key as AddressKey;
          if (key.health === health && key.hostname === hostname) cached = variant;
        }
      cached ??= this.add({
        bytes: this.lbEndpoint(lbEndpoint),
        users: 0,
        key: { port: socket.port_value, host: socket.address, health, hostname },
      });
      if (frozenAddressOnly(lbEndpoint)) this.frozen.set(lbEndpoint, cached);
    } else {
      const spelling = valueKey(lbEndpoint);
      if (spelling === undefined) return this.lbEndpoint(lbEndpoint);
      cached =
        this.bySpelling.get(spelling) ?? this.add({ bytes: this.lbEndpoint(lbEndpoint), users: 0, key: spelling });
    }
    cached.users++;
    used.push(cached);
    return cached.bytes;
  }

  private add(cached: CachedLbEndpoint): CachedLbEndpoint {
    const key = cached.key;
    if (typeof key === 'string') {
      this.bySpelling.set(key, cached);
      return cached;
    }
    let hosts = this.byAddress.get(key.port);
    if (!hosts) this.byAddress.set(key.port, (hosts = new Map()));
    const variants = hosts.get(key.host);
    if (variants) variants.push(cached);
    else hosts.set(key.host, [cached]);
    this.addressed++;
    return cached;
  }

  private drop(cached: CachedLbEndpoint): void {
    const key = cached.key;
    if (typeof key === 'string') {
      this.bySpelling.delete(key);
      return;
    }
    const hosts = this.byAddress.get(key.port)!;
    const variants = hosts.get(key.host)!;
    if (variants.length > 1) variants.splice(variants.indexOf(cached), 1);
    else if (hosts.delete(key.host) && hosts.size === 0) this.byAddress.delete(key.port);
    this.addressed--;
  }

  /** Counts `used` as the cluster's, releases what it held before, and drops LbEndpoints no cluster holds. */
  private hold(clusterName: string, used: CachedLbEndpoint[]): void {
    const before = this.holders.get(clusterName);
    if (used.length > 0) this.holders.set(clusterName, used);
    else this.holders.delete(clusterName);
    if (before) this.release(before);
  }

  private release(held: CachedLbEndpoint[]): void {
    for (const cached of held) if (--cached.users === 0) this.drop(cached);
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && value.constructor === Object;
}

function isSplittableLocality(locality: unknown): locality is Record<string, unknown> {
  if (!isPlainObject(locality)) return false;
  const lbEndpoints = locality.lb_endpoints;
  return lbEndpoints === undefined || (Array.isArray(lbEndpoints) && lbEndpoints.every(isPlainObject));
}

/** Copies `bytes` into `target` at `at`; returns where they end. A loop beats `set` for LbEndpoint-sized pieces. */
function copy(bytes: Uint8Array, target: Uint8Array, at: number): number {
  if (bytes.length > 64) {
    target.set(bytes, at);
    return at + bytes.length;
  }
  for (let i = 0; i < bytes.length; i++) target[at++] = bytes[i];
  return at;
}

function varintLength(value: number): number {
  let length = 1;
  for (; value > 0x7f; value >>>= 7) length++;
  return length;
}

/** Writes the tag (wire type 2) and length of a length-delimited field; returns where its bytes go. */
function writeTag(buffer: Buffer, at: number, field: number, length: number): number {
  buffer[at++] = (field << 3) | 2;
  for (; length > 0x7f; length >>>= 7) buffer[at++] = (length & 0x7f) | 0x80;
  buffer[at++] = length;
  return at;
}

/**
 * The socket address of `{ endpoint: { address: { socket_address }, hostname? }, health_status }`
 * with nothing else in it, as `loadAssignment` builds for an address; its
 * key is those values. Other LbEndpoints are keyed by `valueKey`, which
 * spells out any plain value (and refuses others: class instances,
 * functions, bigints, whose encoding a key could not promise).
 */
function addressOnly(lbEndpoint: Record<string, unknown>): { address: string; port_value: number } | undefined {
  const endpoint = lbEndpoint.endpoint as Record<string, unknown> | undefined;
  if (!isPlainObject(endpoint) || typeof lbEndpoint.health_status !== 'string') return undefined;
  if (!hasOnly(lbEndpoint, 'endpoint', 'health_status')) return undefined;
  const address = endpoint.address as Record<string, unknown> | undefined;
  const hostname = endpoint.hostname;
  if (!isPlainObject(address) || (hostname !== undefined && typeof hostname !== 'string')) return undefined;
  if (!hasOnly(endpoint, 'address', 'hostname')) return undefined;
  const socket = address.socket_address as Record<string, unknown> | undefined;
  if (!isPlainObject(socket) || !hasOnly(address, 'socket_address')) return undefined;
  if (typeof socket.address !== 'string' || typeof socket.port_value !== 'number') return undefined;
  if (!hasOnly(socket, 'address', 'port_value')) return undefined;
  return socket as { address: string; port_value: number };
}

/** An LbEndpoint `addressOnly` accepted, frozen at each of its four levels (its leaves are strings and numbers). */
function frozenAddressOnly(lbEndpoint: Record<string, unknown>): boolean {
  const endpoint = lbEndpoint.endpoint as Record<string, unknown>;
  const address = endpoint.address as Record<string, unknown>;
  return (
    Object.isFrozen(lbEndpoint) &&
    Object.isFrozen(endpoint) &&
    Object.isFrozen(address) &&
    Object.isFrozen(address.socket_address)
  );
}

function hasOnly(object: Record<string, unknown>, name: string, other?: string): boolean {
  for (const key in object) if (key !== name && key !== other) return false;
  return true;
}

/** An exact spelling of a plain value: strings and names carry their length, so no two values share one. */
function valueKey(value: unknown): string | undefined {
  switch (typeof value) {
    case 'string':
      return `s${value.length}:${value}`;
    case 'number':
      return Object.is(value, -0) ? 'n-0;' : `n${value};`;
    case 'boolean':
      return value ? 'T' : 'F';
    case 'undefined':
      return 'U';
    case 'object': {
      if (value === null) return 'N';
      if (Array.isArray(value)) {
        let key = `[${value.length}`;
        for (const item of value) {
          const itemKey = valueKey(item);
          if (itemKey === undefined) return undefined;
          key += itemKey;
        }
        return `${key}]`;
      }
      if (!isPlainObject(value)) return undefined;
      let key = '{';
      for (const name in value) {
        const fieldKey = valueKey(value[name]);
        if (fieldKey === undefined) return undefined;
        key += `${name.length}:${name}${fieldKey}`;
      }
      return `${key}}`;
    }
    default:
      return undefined;
  }
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
  private readonly loadAssignments = new LoadAssignmentEncoder();
  /** ClusterLoadAssignments set in this turn, encoded in the next (see TableEntry). */
  private readonly toEncode = new Set<string>();
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
    if (typeUrl === ENDPOINT_TYPE) {
      if (this.toEncode.size === 0) setImmediate(() => this.encodeSet());
      this.toEncode.add(name);
    }
  }

  private encodeSet(): void {
    const table = this.table(ENDPOINT_TYPE);
    for (const name of this.toEncode) {
      const entry = table.get(name);
      try {
        if (entry) this.encoded(ENDPOINT_TYPE, entry);
      } catch {
        // Left to fail where it is sent, as before.
      }
    }
    this.toEncode.clear();
  }

  /** Adds or replaces a resource with exact bytes (for malformed resources) and pushes it. */
  setEncoded(typeUrl: string, name: string, any: AnyResource): void {
    this.table(typeUrl).set(name, { any });
    if (typeUrl === ENDPOINT_TYPE) this.loadAssignments.forget(name);
    this.changed(typeUrl, name);
  }

  /** Removes a resource and pushes the new state. */
  remove(typeUrl: string, name: string): void {
    if (typeUrl === ENDPOINT_TYPE) this.loadAssignments.forget(name);
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
              .map(([, entry]) => this.encoded(typeUrl, entry))
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

  /** The entry's Any, encoding it on first use (a ClusterLoadAssignment at the cost of what changed). */
  private encoded(typeUrl: string, entry: TableEntry): AnyResource {
    entry.any ??=
      typeUrl === ENDPOINT_TYPE ? this.loadAssignments.encode(entry.plain!) : encodeResource(typeUrl, entry.plain!);
    return entry.any;
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
        resources: names.map((n) => this.encoded(typeUrl, table.get(n)!)),
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
