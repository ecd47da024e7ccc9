import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { parse as parseYaml } from 'yaml';
import { parseDiscoveryConfig } from '../core/config/load-discovery-config.js';
import type { ResolvedDiscoveryConfig } from '../core/config/resolve-discovery-config.js';
import { ConfigurationError } from '../core/errors.js';
import { numberOption, type CliOptions } from './cli-arguments.js';
import { UsageError } from './cli-errors.js';

/** The configuration a command runs with, and the secrets no output may show. */
export interface CliConfig {
  config: ResolvedDiscoveryConfig;
  /** Where it came from: the file name, or `command-line flags`. */
  source: string;
  /** Values to redact from every line printed (ACL token, etcd password). */
  secrets: string[];
}

type Doc = Record<string, unknown>;
type Format = 'toml' | 'json' | 'yaml';

/** Environment variables read for secrets, so they need not appear on a command line (visible in `ps`). */
export const ENV_TOKEN = 'SWITCHYARD_TOKEN';
export const ENV_CONSUL_TOKEN = 'CONSUL_HTTP_TOKEN';
export const ENV_PASSWORD = 'SWITCHYARD_PASSWORD';

/**
 * Builds the configuration from `-c <file>` (the module's own format) and
 * the registry flags, flags winning. A missing file is a {@link UsageError};
 * an invalid configuration a ConfigurationError naming the field.
 *
 * @example
 * const { config, secrets } = await loadCliConfig(options, process.env);
 */
export async function loadCliConfig(options: CliOptions, env: NodeJS.ProcessEnv = process.env): Promise<CliConfig> {
  let root: Doc = {};
  let section: Doc = root;
  let source = 'command-line flags';
  let fileText: { text: string; format: Format } | undefined;
  let fileError: ConfigurationError | undefined;
  if (options.config !== undefined) {
    source = options.config;
    const format = formatOf(options.config);
    if (!existsSync(options.config)) throw new UsageError(`config file not found: ${options.config}`);
    const text = await readFile(options.config, 'utf8').catch((error: NodeJS.ErrnoException) => {
      throw new UsageError(`cannot read config file ${options.config} (${error.code ?? error.message})`);
    });
    // The file alone first, so its own mistakes are reported as the file spells them (unless the flags complete
    // it: a backend's required keys, such as mesh's xds_server, may come from --url).
    try {
      parseDiscoveryConfig(text, format, source);
    } catch (error) {
      if (!(error instanceof ConfigurationError)) throw error;
      fileError = error;
    }
    fileText = { text, format };
    root = parseDocument(text, format);
    section = Object.hasOwn(root, 'discovery') ? (root.discovery as Doc) : root;
  }
  const secrets = new Set<string>();
  const changed = applyFlags(section, options, env, secrets);
  if (fileError && !changed) throw fileError;
  let config: ResolvedDiscoveryConfig;
  try {
    config =
      fileText && !changed
        ? parseDiscoveryConfig(fileText.text, fileText.format, source)
        : parseDiscoveryConfig(JSON.stringify(root), 'json', source);
  } catch (error) {
    throw fileError ?? error;
  }
  if (config.backend === 'consul' && config.backendConfig.token) secrets.add(config.backendConfig.token);
  if (config.backend === 'etcd' && config.backendConfig.auth) secrets.add(config.backendConfig.auth.password);
  return { config, source, secrets: [...secrets].filter((s) => s.length > 0) };
}

function formatOf(path: string): Format {
  const ext = extname(path).toLowerCase();
  if (ext === '.toml') return 'toml';
  if (ext === '.json') return 'json';
  if (ext === '.yaml' || ext === '.yml') return 'yaml';
  throw new UsageError(`config file ${path}: expected a name ending in .toml, .json, .yaml or .yml`);
}

function parseDocument(text: string, format: Format): Doc {
  const doc = format === 'toml' ? parseToml(text) : format === 'json' ? JSON.parse(text) : parseYaml(text);
  return structuredClone(doc) as Doc;
}

/** The key a document already uses for `snake` (snake_case or camelCase), else `snake`. */
function keyIn(doc: Doc, snake: string): string {
  const camel = snake.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
  return Object.hasOwn(doc, camel) && !Object.hasOwn(doc, snake) ? camel : snake;
}

function table(doc: Doc, snake: string): Doc {
  const key = keyIn(doc, snake);
  const value = doc[key];
  if (value && typeof value === 'object' && !Array.isArray(value)) return value as Doc;
  const fresh: Doc = {};
  doc[key] = fresh;
  return fresh;
}

function list(values: readonly string[] | undefined): string[] | undefined {
  if (!values || values.length === 0) return undefined;
  return values
    .flatMap((v) => v.split(','))
    .map((v) => v.trim())
    .filter(Boolean);
}

/** Writes the flags into the configuration document; returns true when anything changed. */
function applyFlags(section: Doc, options: CliOptions, env: NodeJS.ProcessEnv, secrets: Set<string>): boolean {
  let changed = false;
  const fileBackend = typeof section.backend === 'string' ? section.backend : undefined;
  if (options.backend !== undefined) {
    if (fileBackend !== undefined && fileBackend !== options.backend) {
      // Another backend: the file's backend_config belongs to the old one; only the service name carries over.
      const old = table(section, 'backend_config');
      const serviceKey = keyIn(old, 'service_type');
      delete section[keyIn(section, 'backend_config')];
      if (old[serviceKey] !== undefined) table(section, 'backend_config').service_type = old[serviceKey];
    }
    section.backend = options.backend;
    changed = true;
  }
  const backend =
    (options.backend ?? fileBackend ?? 'local') === 'xds' ? 'mesh' : (options.backend ?? fileBackend ?? 'local');
  const endpoints = list(options.endpoints);
  const addresses = list(options.addresses);
  const envToken = env[ENV_TOKEN] || undefined;
  const fallbackToken = env[ENV_CONSUL_TOKEN] || undefined;
  const password = options.password ?? (env[ENV_PASSWORD] || undefined);
  for (const secret of [options.token, envToken, fallbackToken, password]) if (secret) secrets.add(secret);

  const notFor = (flag: string, applies: string) =>
    new UsageError(
      `--${flag} applies to the ${applies} backend${applies.includes(' or ') ? 's' : ''}, and this configuration uses '${backend}'`,
    );
  const set = (key: string, value: unknown) => {
    const bc = table(section, 'backend_config');
    bc[keyIn(bc, key)] = value;
    changed = true;
  };

  if (options.dir !== undefined) {
    if (backend !== 'local') throw notFor('dir', 'local');
    set('dir', options.dir);
  }
  if (addresses) {
    if (backend !== 'static' && backend !== 'dns') throw notFor('addresses', 'static or dns');
    set('addresses', addresses);
  }
  if (options.token !== undefined && backend !== 'consul') throw notFor('token', 'consul');
  if ((options.user !== undefined || options.password !== undefined) && backend !== 'etcd')
    throw notFor(options.user !== undefined ? 'user' : 'password', 'etcd');
  switch (backend) {
    case 'etcd': {
      const urls = [...(endpoints ?? []), ...(options.url !== undefined ? [options.url] : [])];
      if (urls.length) set('endpoints', urls);
      if (options.user !== undefined || password !== undefined) {
        const bc = table(section, 'backend_config');
        const auth = table(bc, 'auth');
        const username = options.user ?? auth.username;
        if (typeof username !== 'string')
          throw new UsageError('an etcd password needs --user (or backend_config.auth.username in the configuration)');
        auth.username = username;
        if (password !== undefined) auth.password = password;
        else if (typeof auth.password !== 'string') auth.password = '';
        changed = true;
      }
      break;
    }
    case 'consul': {
      if (endpoints && endpoints.length > 1)
        throw new UsageError('consul talks to one agent: give one --url (or one --endpoints)');
      const url = options.url ?? endpoints?.[0];
      if (url !== undefined) set('url', url);
      const existing = table(section, 'backend_config');
      const fileToken = existing[keyIn(existing, 'token')];
      const token =
        options.token ?? envToken ?? (typeof fileToken === 'string' && fileToken ? undefined : fallbackToken);
      if (token !== undefined) set('token', token);
      break;
    }
    case 'mesh':
      if (endpoints) throw notFor('endpoints', 'etcd or consul');
      if (options.url !== undefined) set('xds_server', options.url);
      break;
    default:
      if (endpoints) throw notFor('endpoints', 'etcd or consul');
      if (options.url !== undefined) throw notFor('url', 'consul, etcd or mesh');
  }

  if (options.namespace !== undefined) {
    table(section, 'namespace').default = options.namespace;
    changed = true;
  }
  const ttl = numberOption(options.ttl, 'ttl');
  if (ttl !== undefined) {
    table(section, 'registration').ttl = ttl;
    changed = true;
  }
  return changed;
}

/** True for errors that mean "the configuration is wrong" (exit 2). */
export function isConfigurationProblem(error: unknown): boolean {
  return error instanceof ConfigurationError || error instanceof UsageError;
}
