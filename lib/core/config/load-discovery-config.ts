import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { parse as parseYaml } from 'yaml';
import { ConfigurationError } from '../errors.js';
import {
  resolveDiscoveryConfig,
  type PathNames,
  type ResolvedDiscoveryConfig,
  type ResolveOptions,
} from './resolve-discovery-config.js';

const MAX_DEPTH = 32;

/** Keys whose values are user maps: their own keys are data, never converted. */
const DATA_MAPS = new Set(['tags', 'custom', 'meta']);

/**
 * Converts snake_case keys to camelCase recursively, remembering the
 * original spelling of each path so errors quote the user's own keys.
 */
export function camelizeKeys(
  value: unknown,
  names: PathNames = new Map(),
  camelPath = '',
  originalPath = '',
  depth = 0,
): unknown {
  // No valid configuration nests deeper than a few levels; refuse hostile documents before they overflow the stack.
  if (depth > MAX_DEPTH)
    throw ConfigurationError.single(originalPath, undefined, `at most ${MAX_DEPTH} levels of nesting`);
  if (Array.isArray(value)) {
    return value.map((item, i) => {
      const cp = `${camelPath}.${i}`.replace(/^\./, '');
      const op = `${originalPath}[${i}]`;
      names.set(cp, op);
      return camelizeKeys(item, names, cp, op, depth + 1);
    });
  }
  if (!value || typeof value !== 'object' || value instanceof Date) return value;
  const out: Record<string, unknown> = {};
  for (const [key, inner] of Object.entries(value as Record<string, unknown>)) {
    const camel = key.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
    const cp = camelPath ? `${camelPath}.${camel}` : camel;
    const op = originalPath ? `${originalPath}.${key}` : key;
    names.set(cp, op);
    out[camel] = DATA_MAPS.has(camel) ? inner : camelizeKeys(inner, names, cp, op, depth + 1);
  }
  return out;
}

/** Parses configuration text of the given format (`toml`, `json`, `yaml`). */
export function parseDiscoveryConfig(
  text: string,
  format: 'toml' | 'json' | 'yaml',
  source = `<${format}>`,
  options: Omit<ResolveOptions, 'source' | 'pathPrefix' | 'pathNames'> = {},
): ResolvedDiscoveryConfig {
  let document: unknown;
  try {
    document =
      format === 'toml'
        ? parseToml(text)
        : format === 'json'
          ? JSON.parse(text)
          : parseYaml(text, { logLevel: 'error' });
  } catch (error) {
    throw ConfigurationError.single(
      '',
      undefined,
      `valid ${format.toUpperCase()} (${(error as Error).message.split('\n')[0]})`,
      source,
    );
  }
  if (!document || typeof document !== 'object' || Array.isArray(document)) {
    throw ConfigurationError.single('', document, 'a table/object at the top level', source);
  }
  const root = document as Record<string, unknown>;
  // The seed nests everything under [discovery]; a bare document is accepted too.
  const hasSection = Object.hasOwn(root, 'discovery');
  if (hasSection) {
    const others = Object.keys(root).filter((k) => k !== 'discovery');
    if (others.length) {
      throw new ConfigurationError(
        others.map((k) => ({ path: k, message: 'unknown key (everything belongs under [discovery])' })),
        source,
      );
    }
  }
  const section = hasSection ? root.discovery : root;
  const names: PathNames = new Map();
  const camel = camelizeKeys(section, names);
  return resolveDiscoveryConfig(camel, {
    ...options,
    source,
    pathPrefix: hasSection ? 'discovery' : undefined,
    pathNames: names,
  });
}

/**
 * Loads `.toml`, `.json`, `.yaml`/`.yml` configuration (snake_case keys as in
 * the seed's examples, under an optional `[discovery]` table).
 *
 * @example
 * const config = await loadDiscoveryConfig('config/discovery.toml');
 */
export async function loadDiscoveryConfig(
  path: string,
  options: Omit<ResolveOptions, 'source' | 'pathPrefix' | 'pathNames'> = {},
): Promise<ResolvedDiscoveryConfig> {
  const ext = extname(path).toLowerCase();
  const format =
    ext === '.toml' ? 'toml' : ext === '.json' ? 'json' : ext === '.yaml' || ext === '.yml' ? 'yaml' : undefined;
  if (!format) throw ConfigurationError.single('path', path, 'a file ending in .toml, .json, .yaml or .yml', path);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw ConfigurationError.single(
      'path',
      path,
      `a readable file (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`,
      path,
    );
  }
  return parseDiscoveryConfig(text, format, path, options);
}
