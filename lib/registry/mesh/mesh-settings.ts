import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import type { ResolvedDiscoveryConfig } from '../../core/config/resolve-discovery-config.js';
import { formatAddress, parseAddress } from '../../core/address.js';
import { ConfigurationError, type ConfigIssue } from '../../core/errors.js';
import type { NodeMessage } from './xds-protos.js';

/** Cluster name asked for when no `cluster_template` is given: the service name itself. */
export const DEFAULT_CLUSTER_TEMPLATE = '{service}';
/** Placeholders a cluster template may use. */
const TEMPLATE_PLACEHOLDERS = new Set(['service', 'namespace']);
const FIELD = 'backend_config';

/** Where the ADS client connects: a gRPC target plus the transport security. */
export interface XdsServerTarget {
  /** A gRPC target: `host:port`, `dns:///host:port`, `unix:///path`, ... */
  readonly target: string;
  /** TLS with the system's root certificates. */
  readonly secure: boolean;
  /** How logs and errors name the server. */
  readonly display: string;
}

/** The subset of gRPC's bootstrap file (GRPC_XDS_BOOTSTRAP) read here. */
export interface XdsBootstrap {
  xds_servers?: Array<{ server_uri?: unknown; channel_creds?: Array<{ type?: unknown }>; server_features?: unknown }>;
  node?: { id?: unknown; cluster?: unknown; locality?: unknown; metadata?: unknown };
  [key: string]: unknown;
}

/** Where the bootstrap came from, for delegate mode (grpc-js-xds reads its own). */
export type BootstrapSource =
  | { kind: 'file'; path: string; origin: 'backend_config.bootstrap' | 'GRPC_XDS_BOOTSTRAP' }
  | { kind: 'inline'; json: string; origin: 'GRPC_XDS_BOOTSTRAP_CONFIG' }
  | undefined;

/** The `mesh` backend's options after validation. */
export interface MeshSettings {
  mode: 'data' | 'delegate';
  server: XdsServerTarget;
  /** Sent in the first request of every ADS stream. */
  node: NodeMessage;
  clusterTemplate: string;
  bootstrap: BootstrapSource;
}

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
}

const SERVER_EXPECTATION =
  'an xDS server as "http://host:port" (plaintext), "https://host:port" (TLS), "host:port", or a gRPC target such as "dns:///host:port" or "unix:///path"';

/**
 * Validates the `mesh` section (and the bootstrap file it names) and fills
 * defaults. Throws one {@link ConfigurationError} listing every problem,
 * naming the field (`backend_config.xds_server`) or the bootstrap file.
 *
 * @example
 * const settings = resolveMeshSettings(config); // config from loadDiscoveryConfig('mesh.toml')
 */
export function resolveMeshSettings(
  config: Pick<ResolvedDiscoveryConfig, 'backendConfig'>,
  env: NodeJS.ProcessEnv = process.env,
): MeshSettings {
  const raw = (config.backendConfig ?? {}) as Record<string, unknown>;
  const issues: ConfigIssue[] = [];
  const issue = (path: string, value: unknown, message: string) =>
    issues.push({ path: `${FIELD}.${path}`, value, message });

  const mode = raw.mode === undefined ? 'data' : raw.mode;
  if (mode !== 'data' && mode !== 'delegate') issue('mode', raw.mode, 'one of "data", "delegate"');

  // The bootstrap: named in the config, else gRPC's environment variables when no server is configured.
  let bootstrap: XdsBootstrap | undefined;
  let source: BootstrapSource;
  if (raw.bootstrap !== undefined) {
    if (typeof raw.bootstrap !== 'string' || raw.bootstrap.length === 0)
      issue('bootstrap', raw.bootstrap, 'the path of a bootstrap JSON file');
    else {
      source = { kind: 'file', path: raw.bootstrap, origin: 'backend_config.bootstrap' };
      bootstrap = readBootstrapFile(raw.bootstrap, `${FIELD}.bootstrap`);
    }
  } else if (raw.xdsServer === undefined && env.GRPC_XDS_BOOTSTRAP) {
    source = { kind: 'file', path: env.GRPC_XDS_BOOTSTRAP, origin: 'GRPC_XDS_BOOTSTRAP' };
    bootstrap = readBootstrapFile(env.GRPC_XDS_BOOTSTRAP, 'GRPC_XDS_BOOTSTRAP');
  } else if (raw.xdsServer === undefined && env.GRPC_XDS_BOOTSTRAP_CONFIG) {
    source = { kind: 'inline', json: env.GRPC_XDS_BOOTSTRAP_CONFIG, origin: 'GRPC_XDS_BOOTSTRAP_CONFIG' };
    bootstrap = parseBootstrap(env.GRPC_XDS_BOOTSTRAP_CONFIG, 'GRPC_XDS_BOOTSTRAP_CONFIG', 'GRPC_XDS_BOOTSTRAP_CONFIG');
  }
  const bootstrapName = source?.kind === 'file' ? source.path : 'GRPC_XDS_BOOTSTRAP_CONFIG';

  let server: XdsServerTarget | undefined;
  if (raw.xdsServer !== undefined) {
    server = parseXdsServer(raw.xdsServer);
    if (!server) issue('xds_server', raw.xdsServer, SERVER_EXPECTATION);
  } else if (bootstrap) {
    server = serverFromBootstrap(bootstrap, bootstrapName, issues);
  } else {
    issue(
      'xds_server',
      undefined,
      `${SERVER_EXPECTATION} (or backend_config.bootstrap naming a GRPC_XDS_BOOTSTRAP file)`,
    );
  }
  if (mode === 'delegate' && server?.secure && raw.xdsServer !== undefined) {
    issue(
      'xds_server',
      raw.xdsServer,
      'a plaintext server in delegate mode (grpc-js-xds speaks only insecure or google_default to the control plane; give a bootstrap file for anything else)',
    );
  }

  const node = nodeFrom(raw.nodeId, bootstrap?.node, bootstrapName, issue, issues);

  const clusterTemplate = raw.clusterTemplate ?? DEFAULT_CLUSTER_TEMPLATE;
  const problem = templateProblem(clusterTemplate);
  if (problem) issue('cluster_template', raw.clusterTemplate, problem);

  if (issues.length) throw new ConfigurationError(issues);
  return {
    mode: mode as MeshSettings['mode'],
    server: server!,
    node,
    clusterTemplate: clusterTemplate as string,
    bootstrap: source,
  };
}

/**
 * Parses `xds_server`; undefined when it is not one of the accepted forms.
 *
 * @example
 * parseXdsServer('http://127.0.0.1:18000'); // { target: '127.0.0.1:18000', secure: false, display: 'http://127.0.0.1:18000' }
 */
export function parseXdsServer(value: unknown): XdsServerTarget | undefined {
  if (typeof value !== 'string' || value.length === 0 || /\s/.test(value)) return undefined;
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(value)?.[1]?.toLowerCase();
  if (scheme === 'http' || scheme === 'https') {
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      return undefined;
    }
    if (!url.hostname || (url.pathname !== '' && url.pathname !== '/') || url.search || url.hash || url.username)
      return undefined;
    const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
    const port = url.port ? Number(url.port) : scheme === 'https' ? 443 : 80;
    return { target: formatAddress(host, port), secure: scheme === 'https', display: value };
  }
  if (scheme === 'dns' || scheme === 'ipv4' || scheme === 'ipv6') {
    const rest = value.slice(scheme.length + 1).replace(/^\/\/[^/]*\//, '');
    return rest.length > 0 ? { target: value, secure: false, display: value } : undefined;
  }
  if (scheme === 'unix' || scheme === 'unix-abstract') {
    return value.length > scheme.length + 1 ? { target: value, secure: false, display: value } : undefined;
  }
  try {
    const { host, port } = parseAddress(value, 'xds_server');
    return { target: formatAddress(host, port), secure: false, display: value };
  } catch {
    return undefined;
  }
}

/** The cluster name of a service: the template with `{service}` and `{namespace}` filled in. */
export function clusterNameFor(template: string, service: string, namespace: string): string {
  return template.replace(/\{service\}/g, service).replace(/\{namespace\}/g, namespace);
}

function readBootstrapFile(path: string, field: string): XdsBootstrap {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new ConfigurationError(
      [
        {
          path: field,
          value: path,
          message: `a readable bootstrap file (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`,
        },
      ],
      path,
    );
  }
  return parseBootstrap(text, field, path);
}

function parseBootstrap(text: string, field: string, source: string): XdsBootstrap {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new ConfigurationError(
      [
        {
          path: field,
          value: source,
          message: `a JSON bootstrap in gRPC's GRPC_XDS_BOOTSTRAP format; it does not parse: ${(error as Error).message}`,
        },
      ],
      source,
    );
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new ConfigurationError(
      [{ path: field, value: source, message: 'a JSON object with "xds_servers" and "node"' }],
      source,
    );
  }
  return parsed as XdsBootstrap;
}

function serverFromBootstrap(
  bootstrap: XdsBootstrap,
  file: string,
  issues: ConfigIssue[],
): XdsServerTarget | undefined {
  const servers = bootstrap.xds_servers;
  const at = (path: string, value: unknown, message: string) =>
    issues.push({ path: `${file}: ${path}`, value, message });
  if (!Array.isArray(servers) || servers.length === 0) {
    at('xds_servers', servers, 'a non-empty list of servers ({ "server_uri": ..., "channel_creds": [...] })');
    return undefined;
  }
  const first = servers[0];
  const parsed = parseXdsServer(first.server_uri);
  if (!parsed) {
    at('xds_servers[0].server_uri', first.server_uri, SERVER_EXPECTATION);
    return undefined;
  }
  const creds = Array.isArray(first.channel_creds) ? first.channel_creds : [];
  const types = creds.map((c) => c?.type);
  // gRPC uses the first credential type it supports; so do we.
  const chosen = types.find((t) => t === 'insecure' || t === 'tls');
  if (chosen === undefined) {
    at(
      'xds_servers[0].channel_creds',
      types,
      'a credential of type "insecure" or "tls" (others, such as google_default, need backend_config.mode = "delegate")',
    );
    return undefined;
  }
  return {
    ...parsed,
    secure: chosen === 'tls' || parsed.secure,
    display: `${String(first.server_uri)} (from ${file})`,
  };
}

function nodeFrom(
  nodeId: unknown,
  node: XdsBootstrap['node'],
  file: string,
  issue: (path: string, value: unknown, message: string) => void,
  issues: ConfigIssue[],
): NodeMessage {
  if (nodeId !== undefined && (typeof nodeId !== 'string' || nodeId.length === 0))
    issue('node_id', nodeId, 'a non-empty node id');
  const fromFile = node && typeof node === 'object' ? node : {};
  if (node !== undefined && (typeof node !== 'object' || node === null))
    issues.push({ path: `${file}: node`, value: node, message: 'an object' });
  const id =
    typeof nodeId === 'string' && nodeId
      ? nodeId
      : typeof fromFile.id === 'string' && fromFile.id
        ? fromFile.id
        : `switchyard-${hostname()}-${process.pid}`;
  const out: NodeMessage = { id, user_agent_name: 'switchyard', client_features: [] };
  if (typeof fromFile.cluster === 'string') out.cluster = fromFile.cluster;
  if (fromFile.locality && typeof fromFile.locality === 'object') {
    const l = fromFile.locality as Record<string, unknown>;
    out.locality = { region: str(l.region), zone: str(l.zone), sub_zone: str(l.sub_zone) };
  }
  if (fromFile.metadata !== undefined) {
    if (typeof fromFile.metadata !== 'object' || fromFile.metadata === null || Array.isArray(fromFile.metadata)) {
      issues.push({ path: `${file}: node.metadata`, value: fromFile.metadata, message: 'a JSON object' });
    } else out.metadata = toStruct(fromFile.metadata as Record<string, unknown>);
  }
  return out;
}

function str(value: unknown): string {
  return typeof value === 'string' ? value : '';
}

/**
 * JSON object -> google.protobuf.Struct. Both field spellings are set:
 * protobufjs's built-in Struct uses camelCase even when the envoy protos
 * are loaded with keepCase, and a serialiser ignores the spelling it lacks.
 */
function toStruct(object: Record<string, unknown>): { fields: Record<string, unknown> } {
  const fields: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(object)) fields[key] = toValue(value);
  return { fields };
}

function toValue(value: unknown): Record<string, unknown> {
  if (value === null || value === undefined) return { nullValue: 'NULL_VALUE', null_value: 'NULL_VALUE' };
  if (typeof value === 'string') return { stringValue: value, string_value: value };
  if (typeof value === 'number') return { numberValue: value, number_value: value };
  if (typeof value === 'boolean') return { boolValue: value, bool_value: value };
  if (Array.isArray(value)) {
    const list = { values: value.map(toValue) };
    return { listValue: list, list_value: list };
  }
  const struct = toStruct(value as Record<string, unknown>);
  return { structValue: struct, struct_value: struct };
}

function templateProblem(template: unknown): string | undefined {
  if (typeof template !== 'string' || template.length === 0)
    return 'a non-empty cluster name template such as "{service}" or "outbound|50051||{service}.{namespace}.svc.cluster.local"';
  if (!template.includes('{service}')) return 'a cluster name template containing "{service}"';
  for (const [, name] of template.matchAll(/\{([^{}]*)\}/g)) {
    if (!TEMPLATE_PLACEHOLDERS.has(name)) return `only the placeholders {service} and {namespace} (found {${name}})`;
  }
  return undefined;
}
