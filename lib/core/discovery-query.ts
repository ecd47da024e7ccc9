import semver from 'semver';
import { ConfigurationError } from './errors.js';
import { assertServiceName, type ServiceInstance } from './service-instance.js';

/** How a tag filter compares. */
export type TagMatch = 'exact' | 'prefix' | 'regex' | 'exists';

/** `{ key: 'env', value: 'prod' }` keeps instances whose tag `env` equals `prod`. */
export interface TagFilter {
  key: string;
  value?: string;
  /** Default `exact`. */
  pattern?: TagMatch;
}

/**
 * What a client asks a registry for.
 *
 * @example
 * const query: DiscoveryQuery = { service: 'orders', namespace: 'production', version: '^1.2.0', versionFormat: 'semver', versionRouting: true, tags: [{ key: 'tier', value: 'gold' }], zone: 'eu-1a' };
 */
export interface DiscoveryQuery {
  service: string;
  /** Exact namespace; default `default`. */
  namespace?: string;
  /** Exact version, or a semver range when `versionFormat` is `semver` and `versionRouting` is on. */
  version?: string;
  versionFormat?: 'semver' | 'plain';
  versionRouting?: boolean;
  tags?: readonly TagFilter[];
  /** Prefer endpoints in this zone; all zones when it has none. */
  zone?: string;
}

/** A query checked once and turned into a fast predicate. */
export interface CompiledQuery {
  readonly query: Readonly<DiscoveryQuery>;
  readonly namespace: string;
  /** True when the instance matches namespace, version and tags (zone is a preference, applied by the client). */
  readonly matches: (instance: ServiceInstance) => boolean;
}

/** Strips a leading `v` so `v1.0.0` and `1.0.0` compare equal under semver. */
export function normalizeSemver(version: string): string | null {
  return semver.valid(semver.clean(version, { loose: true }) ?? undefined) ?? null;
}

/**
 * Whether the query filters on version or tags: records without them (DNS,
 * EndpointSlices) can match no such query.
 *
 * @example
 * if (filtersOnVersionOrTags(query)) logger.warn('this backend has no versions or tags');
 */
export function filtersOnVersionOrTags(query: Pick<DiscoveryQuery, 'version' | 'tags'>): boolean {
  return (
    (query.version !== undefined && query.version !== '' && query.version !== '*') || (query.tags?.length ?? 0) > 0
  );
}

/** Validates a query and compiles it. Throws {@link ConfigurationError} naming the bad field. */
export function compileQuery(query: DiscoveryQuery, fieldPrefix = 'query'): CompiledQuery {
  assertServiceName(query.service, `${fieldPrefix}.service`);
  const namespace = query.namespace ?? 'default';
  const tagTests = (query.tags ?? []).map((filter, i) => compileTagFilter(filter, `${fieldPrefix}.tags[${i}]`));
  const versionTest = compileVersion(query, fieldPrefix);
  const matches = (instance: ServiceInstance): boolean => {
    if (instance.service !== query.service) return false;
    if (instance.namespace !== namespace) return false;
    if (versionTest && !versionTest(instance.version)) return false;
    for (const test of tagTests) if (!test(instance.tags)) return false;
    return true;
  };
  return Object.freeze({ query: Object.freeze({ ...query }), namespace, matches });
}

function compileVersion(query: DiscoveryQuery, prefix: string): ((v: string) => boolean) | undefined {
  const wanted = query.version;
  if (wanted === undefined || wanted === '' || wanted === '*') return undefined;
  if (query.versionFormat === 'semver' && query.versionRouting) {
    const range = semver.validRange(wanted.replace(/(^|[\s<>=~^])v(?=\d)/g, '$1'), { loose: true });
    if (!range) {
      throw ConfigurationError.single(
        `${prefix}.version`,
        wanted,
        'a semver version or range such as "v1.2.0", "^1.2" or ">=1.0.0 <2"',
      );
    }
    return (v) => {
      const normalized = normalizeSemver(v);
      return normalized !== null && semver.satisfies(normalized, range, { includePrerelease: false });
    };
  }
  return (v) => v === wanted;
}

function compileTagFilter(filter: TagFilter, path: string): (tags: Readonly<Record<string, string>>) => boolean {
  if (!filter || typeof filter.key !== 'string' || filter.key.length === 0) {
    throw ConfigurationError.single(`${path}.key`, filter?.key, 'a non-empty tag key');
  }
  const { key } = filter;
  const pattern = filter.pattern ?? 'exact';
  if (pattern === 'exists') return (tags) => Object.hasOwn(tags, key);
  if (typeof filter.value !== 'string') {
    throw ConfigurationError.single(`${path}.value`, filter.value, `a string (required for pattern "${pattern}")`);
  }
  const value = filter.value;
  switch (pattern) {
    case 'exact':
      return (tags) => Object.hasOwn(tags, key) && tags[key] === value;
    case 'prefix':
      return (tags) => Object.hasOwn(tags, key) && tags[key].startsWith(value);
    case 'regex': {
      let re: RegExp;
      try {
        re = new RegExp(value);
      } catch (error) {
        throw ConfigurationError.single(
          `${path}.value`,
          value,
          `a valid regular expression (${(error as Error).message})`,
        );
      }
      return (tags) => Object.hasOwn(tags, key) && re.test(tags[key]);
    }
    default:
      throw ConfigurationError.single(`${path}.pattern`, pattern, 'one of exact, prefix, regex, exists');
  }
}
