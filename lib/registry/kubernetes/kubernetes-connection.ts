import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { ConfigurationError } from '../../core/errors.js';
import type { KubernetesSettings } from './kubernetes.schema.js';

/** Where and how to reach the API server, as resolved when the backend starts. */
export interface KubernetesConnection {
  readonly server: URL;
  readonly ca: Buffer | undefined;
  readonly cert: Buffer | undefined;
  readonly key: Buffer | undefined;
  readonly insecureSkipTlsVerify: boolean;
  readonly tlsServerName: string | undefined;
  /** The bearer token, read again on every call when it comes from a file (projected tokens rotate). */
  readonly token: () => Promise<string | undefined>;
  /** Where the token comes from, for messages (never the token). */
  readonly credentials: string;
  /** The namespace of a query that names none: settings, the pod's own, the context's, or `default`. */
  readonly namespace: string;
  /** One line for logs: how the connection was found. */
  readonly description: string;
}

const FIELD = 'backend_config';

/**
 * Resolves how to reach the API server from the settings: the pod's
 * service account, a kubeconfig context (token, token file or client
 * certificate, CA as file or data), or `api_server` with a token file.
 * Throws {@link ConfigurationError} naming the field and the file when
 * something cannot be read or is missing.
 *
 * @example
 * const connection = await resolveKubernetesConnection(settings); connection.server.href;
 */
export async function resolveKubernetesConnection(settings: KubernetesSettings): Promise<KubernetesConnection> {
  if (settings.mode === 'kubeconfig') return fromKubeconfig(settings);
  const server = settings.apiServer!;
  const tokenFile = settings.tokenFile;
  if (tokenFile !== undefined)
    await readText(tokenFile, `${FIELD}.token_file`, 'a readable service-account token file');
  const ca =
    settings.caFile === undefined
      ? undefined
      : await readBytes(settings.caFile, `${FIELD}.ca_file`, 'a readable PEM file of the cluster CA');
  let namespace = settings.namespace;
  if (namespace === undefined && settings.namespaceFile !== undefined) {
    namespace = (await readFile(settings.namespaceFile, 'utf8').catch(() => '')).trim() || undefined;
  }
  return {
    server: new URL(server),
    ca,
    cert: undefined,
    key: undefined,
    insecureSkipTlsVerify: false,
    tlsServerName: undefined,
    token: tokenFile === undefined ? async () => undefined : () => readToken(tokenFile),
    credentials: tokenFile === undefined ? 'no credentials' : `the token in ${tokenFile}`,
    namespace: namespace ?? 'default',
    description:
      settings.mode === 'in-cluster' ? `in-cluster service account (API server ${server})` : `API server ${server}`,
  };
}

type NamedEntry = Record<string, unknown> & { name?: unknown };

/** One kubeconfig file's relevant parts, with relative paths already made absolute. */
interface KubeconfigFile {
  path: string;
  currentContext: string | undefined;
  clusters: Map<string, Record<string, unknown>>;
  users: Map<string, Record<string, unknown>>;
  contexts: Map<string, Record<string, unknown>>;
}

async function fromKubeconfig(settings: KubernetesSettings): Promise<KubernetesConnection> {
  const field = settings.kubeconfigFromSettings ? `${FIELD}.kubeconfig` : 'KUBECONFIG';
  const files: KubeconfigFile[] = [];
  for (const path of settings.kubeconfigFiles) {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (error) {
      // kubectl skips missing files of $KUBECONFIG, but not the only one.
      if (settings.kubeconfigFiles.length > 1 && (error as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw ConfigurationError.single(
        field,
        path,
        `a readable kubeconfig file (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}); inside a pod, set KUBERNETES_SERVICE_HOST or in_cluster = true`,
      );
    }
    files.push(parseKubeconfig(path, text, field));
  }
  // Merged like kubectl: the first file that names an entry wins.
  const pick = <K extends 'clusters' | 'users' | 'contexts'>(kind: K, name: string) =>
    files.find((f) => f[kind].has(name))?.[kind].get(name);
  const contextName = settings.context ?? files.find((f) => f.currentContext)?.currentContext;
  const where = files.map((f) => f.path).join(', ') || settings.kubeconfigFiles.join(', ');
  if (!contextName) {
    throw ConfigurationError.single(
      settings.context !== undefined ? `${FIELD}.context` : field,
      where,
      'a kubeconfig with a current-context, or backend_config.context naming one',
    );
  }
  const context = pick('contexts', contextName);
  if (!context) {
    const known = files.flatMap((f) => [...f.contexts.keys()]);
    throw ConfigurationError.single(
      `${FIELD}.context`,
      contextName,
      `a context of ${where} (it has: ${known.join(', ') || 'none'})`,
    );
  }
  const clusterName = typeof context.cluster === 'string' ? context.cluster : '';
  const cluster = pick('clusters', clusterName);
  if (!cluster || typeof cluster.server !== 'string') {
    throw ConfigurationError.single(
      field,
      where,
      `a cluster '${clusterName}' with a server URL (used by context '${contextName}')`,
    );
  }
  const userName = typeof context.user === 'string' ? context.user : '';
  const user = pick('users', userName) ?? {};
  const unsupported = ['exec', 'auth-provider'].find((k) => user[k] !== undefined);
  if (unsupported) {
    throw ConfigurationError.single(
      field,
      where,
      `user '${userName}' authenticates with ${unsupported === 'exec' ? 'an exec credential plugin' : 'an auth-provider'}, which the kubernetes backend does not run: give that user a token, tokenFile or client certificate (or run in the cluster with a service account)`,
    );
  }
  const ca = await pemOf(cluster, 'certificate-authority', field);
  const cert = await pemOf(user, 'client-certificate', field);
  const key = await pemOf(user, 'client-key', field);
  if ((cert === undefined) !== (key === undefined)) {
    throw ConfigurationError.single(field, where, `user '${userName}': a client certificate and its key together`);
  }
  const inlineToken = typeof user.token === 'string' ? user.token : undefined;
  const tokenFile = settings.tokenFile ?? (typeof user.tokenFile === 'string' ? user.tokenFile : undefined);
  if (tokenFile !== undefined) await readText(tokenFile, field, `a readable token file for user '${userName}'`);
  const server = settings.apiServer ?? cluster.server;
  return {
    server: new URL(server),
    ca:
      settings.caFile !== undefined ? await readBytes(settings.caFile, `${FIELD}.ca_file`, 'a readable PEM file') : ca,
    cert,
    key,
    insecureSkipTlsVerify: cluster['insecure-skip-tls-verify'] === true,
    tlsServerName: typeof cluster['tls-server-name'] === 'string' ? cluster['tls-server-name'] : undefined,
    token: tokenFile !== undefined ? () => readToken(tokenFile) : async () => (inlineToken ? inlineToken : undefined),
    credentials:
      tokenFile !== undefined
        ? `the token in ${tokenFile}`
        : inlineToken
          ? `the token of user '${userName}'`
          : cert
            ? `the client certificate of user '${userName}'`
            : `user '${userName}' (no credentials)`,
    namespace: settings.namespace ?? (typeof context.namespace === 'string' ? context.namespace : 'default'),
    description: `kubeconfig ${where}, context '${contextName}' (API server ${server})`,
  };
}

function parseKubeconfig(path: string, text: string, field: string): KubeconfigFile {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (error) {
    throw ConfigurationError.single(field, path, `a kubeconfig in YAML or JSON (${(error as Error).message})`);
  }
  const root = (doc ?? {}) as Record<string, unknown>;
  const base = dirname(path);
  const entries = (list: unknown, inner: string): Map<string, Record<string, unknown>> => {
    const map = new Map<string, Record<string, unknown>>();
    for (const entry of Array.isArray(list) ? (list as NamedEntry[]) : []) {
      if (typeof entry?.name !== 'string' || map.has(entry.name)) continue;
      const body = { ...((entry[inner] ?? {}) as Record<string, unknown>) };
      // Paths in a kubeconfig are relative to the file that holds them.
      for (const key of ['certificate-authority', 'client-certificate', 'client-key', 'tokenFile']) {
        if (typeof body[key] === 'string' && !isAbsolute(body[key])) body[key] = resolve(base, body[key]);
      }
      map.set(entry.name, body);
    }
    return map;
  };
  return {
    path,
    currentContext: typeof root['current-context'] === 'string' ? root['current-context'] || undefined : undefined,
    clusters: entries(root.clusters, 'cluster'),
    users: entries(root.users, 'user'),
    contexts: entries(root.contexts, 'context'),
  };
}

/** `<name>-data` (base64 PEM) or `<name>` (a file). */
async function pemOf(entry: Record<string, unknown>, name: string, field: string): Promise<Buffer | undefined> {
  const data = entry[`${name}-data`];
  if (typeof data === 'string' && data.length > 0) return Buffer.from(data, 'base64');
  const file = entry[name];
  if (typeof file === 'string' && file.length > 0) return readBytes(file, field, `a readable ${name} file`);
  return undefined;
}

async function readBytes(path: string, field: string, expected: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (error) {
    throw ConfigurationError.single(
      field,
      path,
      `${expected} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`,
    );
  }
}

async function readText(path: string, field: string, expected: string): Promise<string> {
  return (await readBytes(path, field, expected)).toString('utf8');
}

async function readToken(path: string): Promise<string | undefined> {
  // A failed read (mid-rotation) is answered by the server with 401 and retried.
  return (await readFile(path, 'utf8').catch(() => '')).trim() || undefined;
}
