import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { z } from 'zod';
import { formatAddress, parseAddress } from '../../core/address.js';
import type { BackendSchemaContext } from '../../core/config/backend-schema.js';
import { commonBackendFields, nonEmpty, reportIssue, reportIssueAt } from '../../core/config/config-fields.js';
import { ConfigurationError } from '../../core/errors.js';

// Loaded by core's configuration loader, so it imports only zod and core:
// core/config may import each registry/<backend>/<backend>.schema.ts and
// nothing else from registry/. That is also why the bootstrap reading
// (gRPC's GRPC_XDS_BOOTSTRAP format) lives here rather than in its own file.

/** Cluster name asked for when no `cluster_template` is given: the service name itself. */
export const DEFAULT_CLUSTER_TEMPLATE = '{service}';
const TEMPLATE_PLACEHOLDERS = new Set(['service', 'namespace']);

const SERVER_EXPECTATION =
  'an xDS server as "http://host:port" (plaintext), "https://host:port" (TLS), "host:port", or a gRPC target such as "dns:///host:port" or "unix:///path"';

/** Where the ADS client connects: a gRPC target plus the transport security. */
export interface XdsServerTarget {
  /** A gRPC target: `host:port`, `dns:///host:port`, `unix:///path`, ... */
  readonly target: string;
  /** TLS with the system's root certificates. */
  readonly secure: boolean;
  /** How logs and errors name the server. */
  readonly display: string;
}

/** `envoy.config.core.v3.Node`, as sent in the first request of every ADS stream. */
export interface XdsNode {
  id: string;
  cluster?: string;
  locality?: { region?: string; zone?: string; sub_zone?: string };
  metadata?: unknown;
  user_agent_name?: string;
  client_features?: string[];
}

/** The subset of gRPC's bootstrap file (GRPC_XDS_BOOTSTRAP) read here. */
interface XdsBootstrap {
  xds_servers?: Array<{ server_uri?: unknown; channel_creds?: Array<{ type?: unknown }>; server_features?: unknown }>;
  node?: { id?: unknown; cluster?: unknown; locality?: unknown; metadata?: unknown };
  [key: string]: unknown;
}

/** Where the bootstrap came from, for delegate mode (grpc-js-xds reads its own). */
export type BootstrapSource =
  | { kind: 'file'; path: string; origin: 'backend_config.bootstrap' | 'GRPC_XDS_BOOTSTRAP' }
  | { kind: 'inline'; json: string; origin: 'GRPC_XDS_BOOTSTRAP_CONFIG' }
  | undefined;

/**
 * `backend = "mesh"` (alias `xds`): validates `backend_config` (and the
 * bootstrap file it names, or gRPC's GRPC_XDS_BOOTSTRAP /
 * GRPC_XDS_BOOTSTRAP_CONFIG when no server is configured) and transforms it
 * into the backend's settings: the xDS server, the node sent to it, the
 * cluster name template.
 *
 * @example
 * meshConfigSchema(context).parse({ xdsServer: 'http://127.0.0.1:18000' }).server.target; // '127.0.0.1:18000'
 */
export const meshConfigSchema = (context: BackendSchemaContext) =>
  z
    .strictObject({
      ...commonBackendFields,
      xdsServer: nonEmpty.optional(),
      nodeId: nonEmpty.optional(),
      bootstrap: nonEmpty.optional(),
      clusterTemplate: nonEmpty.default(DEFAULT_CLUSTER_TEMPLATE),
      mode: z.enum(['data', 'delegate']).default('data'),
    })
    .transform((raw, ctx) => {
      const { env } = context;
      let bootstrap: XdsBootstrap | undefined;
      let source: BootstrapSource;
      if (raw.bootstrap !== undefined) {
        source = { kind: 'file', path: raw.bootstrap, origin: 'backend_config.bootstrap' };
        bootstrap = readBootstrapFile(raw.bootstrap, 'backend_config.bootstrap');
      } else if (raw.xdsServer === undefined && env.GRPC_XDS_BOOTSTRAP) {
        source = { kind: 'file', path: env.GRPC_XDS_BOOTSTRAP, origin: 'GRPC_XDS_BOOTSTRAP' };
        bootstrap = readBootstrapFile(env.GRPC_XDS_BOOTSTRAP, 'GRPC_XDS_BOOTSTRAP');
      } else if (raw.xdsServer === undefined && env.GRPC_XDS_BOOTSTRAP_CONFIG) {
        source = { kind: 'inline', json: env.GRPC_XDS_BOOTSTRAP_CONFIG, origin: 'GRPC_XDS_BOOTSTRAP_CONFIG' };
        bootstrap = parseBootstrap(
          env.GRPC_XDS_BOOTSTRAP_CONFIG,
          'GRPC_XDS_BOOTSTRAP_CONFIG',
          'GRPC_XDS_BOOTSTRAP_CONFIG',
        );
      }
      const bootstrapName = source?.kind === 'file' ? source.path : 'GRPC_XDS_BOOTSTRAP_CONFIG';
      const inBootstrap = (path: string, message: string, input: unknown) =>
        reportIssueAt(ctx, `${bootstrapName}: ${path}`, message, input);

      let server: XdsServerTarget | undefined;
      if (raw.xdsServer !== undefined) {
        server = parseXdsServer(raw.xdsServer);
        if (!server) reportIssue(ctx, ['xdsServer'], SERVER_EXPECTATION, raw.xdsServer);
      } else if (bootstrap) {
        server = serverFromBootstrap(bootstrap, bootstrapName, inBootstrap);
      } else {
        reportIssue(
          ctx,
          ['xdsServer'],
          `${SERVER_EXPECTATION} (or backend_config.bootstrap naming a GRPC_XDS_BOOTSTRAP file)`,
        );
      }
      if (raw.mode === 'delegate' && server?.secure && raw.xdsServer !== undefined) {
        reportIssue(
          ctx,
          ['xdsServer'],
          'a plaintext server in delegate mode (grpc-js-xds speaks only insecure or google_default to the control plane; give a bootstrap file for anything else)',
          raw.xdsServer,
        );
      }

      const node = nodeFrom(raw.nodeId, bootstrap?.node, inBootstrap);
      const problem = templateProblem(raw.clusterTemplate);
      if (problem) reportIssue(ctx, ['clusterTemplate'], problem, raw.clusterTemplate);

      return {
        serviceType: raw.serviceType,
        mode: raw.mode,
        // Only undefined when an issue was reported (and the parse fails).
        server: server!,
        node,
        clusterTemplate: raw.clusterTemplate,
        bootstrap: source,
      };
    });

/** The `mesh` backend's settings. */
export type MeshSettings = z.output<ReturnType<typeof meshConfigSchema>>;

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

/** An unusable bootstrap file stops the check at once: the issue names the file (the error's source). */
function readBootstrapFile(path: string, field: string): XdsBootstrap {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    throw new ConfigurationError([{ path: field, value: path, message: `a readable bootstrap file (${code})` }], path);
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

type BootstrapIssue = (path: string, message: string, input: unknown) => void;

function serverFromBootstrap(
  bootstrap: XdsBootstrap,
  file: string,
  issue: BootstrapIssue,
): XdsServerTarget | undefined {
  const servers = bootstrap.xds_servers;
  if (!Array.isArray(servers) || servers.length === 0) {
    issue('xds_servers', 'a non-empty list of servers ({ "server_uri": ..., "channel_creds": [...] })', servers);
    return undefined;
  }
  const first = servers[0];
  const parsed = parseXdsServer(first.server_uri);
  if (!parsed) {
    issue('xds_servers[0].server_uri', SERVER_EXPECTATION, first.server_uri);
    return undefined;
  }
  const types = (Array.isArray(first.channel_creds) ? first.channel_creds : []).map((c) => c?.type);
  // gRPC uses the first credential type it supports; so do we.
  const chosen = types.find((t) => t === 'insecure' || t === 'tls');
  if (chosen === undefined) {
    issue(
      'xds_servers[0].channel_creds',
      'a credential of type "insecure" or "tls" (others, such as google_default, need backend_config.mode = "delegate")',
      types,
    );
    return undefined;
  }
  return {
    ...parsed,
    secure: chosen === 'tls' || parsed.secure,
    display: `${String(first.server_uri)} (from ${file})`,
  };
}

function nodeFrom(nodeId: string | undefined, node: XdsBootstrap['node'], issue: BootstrapIssue): XdsNode {
  if (node !== undefined && (typeof node !== 'object' || node === null)) issue('node', 'an object', node);
  const fromFile = node && typeof node === 'object' ? node : {};
  const id =
    nodeId ??
    (typeof fromFile.id === 'string' && fromFile.id ? fromFile.id : `switchyard-${hostname()}-${process.pid}`);
  const out: XdsNode = { id, user_agent_name: 'switchyard', client_features: [] };
  if (typeof fromFile.cluster === 'string') out.cluster = fromFile.cluster;
  if (fromFile.locality && typeof fromFile.locality === 'object') {
    const l = fromFile.locality as Record<string, unknown>;
    out.locality = { region: text(l.region), zone: text(l.zone), sub_zone: text(l.sub_zone) };
  }
  if (fromFile.metadata !== undefined) {
    if (typeof fromFile.metadata !== 'object' || fromFile.metadata === null || Array.isArray(fromFile.metadata)) {
      issue('node.metadata', 'a JSON object', fromFile.metadata);
    } else out.metadata = toStruct(fromFile.metadata as Record<string, unknown>);
  }
  return out;
}

function text(value: unknown): string {
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

function templateProblem(template: string): string | undefined {
  if (!template.includes('{service}')) return 'a cluster name template containing "{service}"';
  for (const [, name] of template.matchAll(/\{([^{}]*)\}/g)) {
    if (!TEMPLATE_PLACEHOLDERS.has(name)) return `only the placeholders {service} and {namespace} (found {${name}})`;
  }
  return undefined;
}
