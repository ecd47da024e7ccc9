import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { MethodDefinition, PackageDefinition } from '@grpc/proto-loader';
import { DiscoveryError } from '../../core/errors.js';

/** Type URL of a CDS resource. */
export const CLUSTER_TYPE_URL = 'type.googleapis.com/envoy.config.cluster.v3.Cluster';
/** Type URL of an EDS resource. */
export const ENDPOINT_TYPE_URL = 'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment';
/** Type URL of the optional wrapper some servers put around SotW resources. */
export const RESOURCE_WRAPPER_TYPE_URL = 'type.googleapis.com/envoy.service.discovery.v3.Resource';

/** The part of `google.protobuf.Any` we read. */
export interface AnyMessage {
  type_url: string;
  value: Buffer;
}

/** `envoy.config.core.v3.Node`, as sent in the first request of a stream. */
export interface NodeMessage {
  id: string;
  cluster?: string;
  locality?: { region?: string; zone?: string; sub_zone?: string };
  metadata?: unknown;
  user_agent_name?: string;
  client_features?: string[];
}

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

/** Thrown when an optional peer dependency the mesh backend needs is missing or too old. */
export class MissingPeerDependencyError extends DiscoveryError {}

const require = createRequire(import.meta.url);
let cached: Promise<XdsProtos> | undefined;

/**
 * The include folders of the envoy/xds protos shipped inside
 * `@grpc/grpc-js-xds` (resolved through the package's own location, so any
 * install layout works). Throws {@link MissingPeerDependencyError} when the
 * package is not installed.
 *
 * @example
 * loadSync('envoy/config/listener/v3/listener.proto', { includeDirs: xdsProtoIncludeDirs() });
 */
export function xdsProtoIncludeDirs(): string[] {
  let packageJson: string;
  try {
    packageJson = require.resolve('@grpc/grpc-js-xds/package.json');
  } catch {
    throw new MissingPeerDependencyError(
      "The 'mesh' backend needs the optional peer dependency @grpc/grpc-js-xds (it ships the envoy xDS protos): npm install @grpc/grpc-js-xds",
    );
  }
  const root = dirname(packageJson);
  return INCLUDE_DIRS.map((dir) => join(root, dir));
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
  let protoLoader: typeof import('@grpc/proto-loader');
  try {
    protoLoader = await import('@grpc/proto-loader');
  } catch {
    throw new MissingPeerDependencyError(
      "The 'mesh' backend needs the optional peer dependency @grpc/proto-loader (>= 0.8): npm install @grpc/proto-loader",
    );
  }
  const definition: PackageDefinition = protoLoader.loadSync(PROTO_FILES, { ...XDS_PROTO_OPTIONS, includeDirs });
  const service = definition['envoy.service.discovery.v3.AggregatedDiscoveryService'] as
    Record<string, MethodDefinition<object, object>> | undefined;
  const ads = service?.StreamAggregatedResources as unknown as XdsProtos['ads'] | undefined;
  if (!ads)
    throw new MissingPeerDependencyError(
      'The envoy protos inside @grpc/grpc-js-xds lack AggregatedDiscoveryService; install @grpc/grpc-js-xds >= 1.8',
    );
  const decoders = new Map<string, (bytes: Buffer) => unknown>();
  for (const typeUrl of [CLUSTER_TYPE_URL, ENDPOINT_TYPE_URL, RESOURCE_WRAPPER_TYPE_URL]) {
    const message = definition[typeUrl.slice(typeUrl.indexOf('/') + 1)] as
      { deserialize?: (bytes: Buffer) => unknown } | undefined;
    if (typeof message?.deserialize !== 'function') {
      throw new MissingPeerDependencyError(
        "The 'mesh' backend needs @grpc/proto-loader >= 0.8 (older versions cannot decode single messages): npm install @grpc/proto-loader@^0.8",
      );
    }
    decoders.set(typeUrl, message.deserialize);
  }
  return { ads, decoder: (typeUrl) => decoders.get(typeUrl) };
}
