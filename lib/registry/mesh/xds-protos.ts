import { dirname, join } from 'node:path';
import type { MethodDefinition, PackageDefinition } from '@grpc/proto-loader';
import { DiscoveryError } from '../../core/errors.js';
import { importOptionalPeer, resolveOptionalPeer } from '../../core/optional-peer.js';
import type { XdsNode } from './mesh.schema.js';

/** Type URL of a CDS resource. */
export const CLUSTER_TYPE_URL = 'type.googleapis.com/envoy.config.cluster.v3.Cluster';
/** Type URL of an EDS resource. */
export const ENDPOINT_TYPE_URL = 'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment';
/** Type URL of the optional wrapper some servers put around SotW resources. */
export const RESOURCE_WRAPPER_TYPE_URL = 'type.googleapis.com/envoy.service.discovery.v3.Resource';
/** Messages inside a ClusterLoadAssignment, decoded one by one when only some endpoints changed. */
export const LB_ENDPOINT_TYPE_URL = 'type.googleapis.com/envoy.config.endpoint.v3.LbEndpoint';
export const LOCALITY_TYPE_URL = 'type.googleapis.com/envoy.config.core.v3.Locality';

/** The part of `google.protobuf.Any` we read. */
export interface AnyMessage {
  type_url: string;
  value: Buffer;
}

/** `envoy.config.core.v3.Node`, as sent in the first request of a stream. */
export type NodeMessage = XdsNode;

/** `envoy.service.discovery.v3.DiscoveryRequest` (the fields a SotW client sets). */
export interface DiscoveryRequestMessage {
  version_info: string;
  node?: NodeMessage;
  resource_names: string[];
  type_url: string;
  response_nonce: string;
  error_detail?: { code: number; message: string };
}

/** `envoy.service.discovery.v3.DiscoveryResponse` (the fields a SotW client reads). */
export interface DiscoveryResponseMessage {
  version_info: string;
  resources: AnyMessage[];
  type_url: string;
  nonce: string;
}

/** What the ADS client needs from the envoy protos. */
export interface XdsProtos {
  /** `AggregatedDiscoveryService/StreamAggregatedResources`, with its (de)serialisers. */
  readonly ads: MethodDefinition<DiscoveryRequestMessage, DiscoveryResponseMessage>;
  /** Decodes the bytes of one resource of `typeUrl`; undefined for a type it does not know. */
  decoder(typeUrl: string): ((bytes: Buffer) => unknown) | undefined;
}

/** Files loaded for data mode; their imports come along. */
const PROTO_FILES = [
  'envoy/service/discovery/v3/ads.proto',
  'envoy/config/cluster/v3/cluster.proto',
  'envoy/config/endpoint/v3/endpoint.proto',
];

/** Where the envoy / xds protos live inside the `@grpc/grpc-js-xds` package. */
const INCLUDE_DIRS = ['deps/envoy-api', 'deps/xds', 'deps/googleapis', 'deps/protoc-gen-validate'];

/** Options shared by every load: snake_case fields and string enums, as in the envoy docs. */
export const XDS_PROTO_OPTIONS = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
} as const;

/** How the mesh backend names itself in a missing-package error. */
const FEATURE = "backend 'mesh'";

let cached: Promise<XdsProtos> | undefined;

/**
 * The include folders of the envoy/xds protos shipped inside
 * `@grpc/grpc-js-xds` (resolved through the package's own location, so any
 * install layout works). Throws MissingPeerDependencyError when the
 * package is not installed (`resolve` is substitutable for tests).
 *
 * @example
 * loadSync('envoy/config/listener/v3/listener.proto', { includeDirs: xdsProtoIncludeDirs() });
 */
export function xdsProtoIncludeDirs(resolve?: (specifier: string) => string): string[] {
  const root = dirname(resolveOptionalPeer('@grpc/grpc-js-xds', FEATURE, 'package.json', resolve));
  return INCLUDE_DIRS.map((dir) => join(root, dir));
}

/**
 * Loads `@grpc/proto-loader`, or throws MissingPeerDependencyError.
 *
 * @example
 * const protoLoader = await loadProtoLoader();
 */
export function loadProtoLoader(
  importer: () => Promise<typeof import('@grpc/proto-loader')> = () => import('@grpc/proto-loader'),
): Promise<typeof import('@grpc/proto-loader')> {
  return importOptionalPeer('@grpc/proto-loader', FEATURE, importer);
}

/**
 * Loads (once per process) the ADS service and the Cluster /
 * ClusterLoadAssignment messages with `@grpc/proto-loader` (>= 0.8, whose
 * message definitions carry their own decoders).
 *
 * @example
 * const protos = await loadXdsProtos(); const decode = protos.decoder(CLUSTER_TYPE_URL);
 */
export function loadXdsProtos(): Promise<XdsProtos> {
  cached ??= load().catch((error: unknown) => {
    cached = undefined;
    throw error;
  });
  return cached;
}

async function load(): Promise<XdsProtos> {
  const includeDirs = xdsProtoIncludeDirs();
  const protoLoader = await loadProtoLoader();
  const definition: PackageDefinition = protoLoader.loadSync(PROTO_FILES, { ...XDS_PROTO_OPTIONS, includeDirs });
  const service = definition['envoy.service.discovery.v3.AggregatedDiscoveryService'] as
    Record<string, MethodDefinition<object, object>> | undefined;
  const ads = service?.StreamAggregatedResources as unknown as XdsProtos['ads'] | undefined;
  if (!ads)
    throw new DiscoveryError(
      "The envoy protos inside @grpc/grpc-js-xds lack AggregatedDiscoveryService (too old for backend 'mesh'): npm install @grpc/grpc-js-xds@^1.14.0",
    );
  const decoders = new Map<string, (bytes: Buffer) => unknown>();
  for (const typeUrl of [
    CLUSTER_TYPE_URL,
    ENDPOINT_TYPE_URL,
    RESOURCE_WRAPPER_TYPE_URL,
    LB_ENDPOINT_TYPE_URL,
    LOCALITY_TYPE_URL,
  ]) {
    const message = definition[typeUrl.slice(typeUrl.indexOf('/') + 1)] as
      { deserialize?: (bytes: Buffer) => unknown } | undefined;
    if (typeof message?.deserialize !== 'function') {
      throw new DiscoveryError(
        "backend 'mesh' needs @grpc/proto-loader >= 0.8 (older versions cannot decode single messages): npm install @grpc/proto-loader@^0.8.0",
      );
    }
    decoders.set(typeUrl, message.deserialize);
  }
  return { ads, decoder: (typeUrl) => decoders.get(typeUrl) };
}
