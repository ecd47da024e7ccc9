import type { DiscoveryQuery } from '../../core/discovery-query.js';
import { DEFAULT_NAMESPACE } from '../../core/service-instance.js';
import { META_NAMESPACE, META_VERSION, tagMetaKey } from './consul-service-codec.js';
import { NAMESPACE_TAG, VERSION_TAG } from './consul-tag-convention.js';

/**
 * Turns the namespace, exact version and tag parts of a query into a Consul
 * `filter` expression, so only matching instances cross the wire. Each
 * part tests switchyard's `Service.Meta` or the Rust crate's `key=value`
 * `Service.Tags` (entries without Meta.namespace are read from their tags).
 * The expression never drops an instance the client-side check
 * (`compileQuery(query).matches`) would keep; what it cannot express
 * exactly (semver ranges, regex tags: RE2 and JavaScript differ; prefixes
 * of tags) is left to that client-side check. Returns undefined when there
 * is nothing to say.
 *
 * Written for Consul 1.8's go-bexpr: strings are double-quoted with every
 * `"`, `\` and control character as `\u00XX` (the grammar accepts no
 * literal quote inside a string), and `matches` is guarded by `in` because
 * 1.8 answers true for `matches` on a missing map key.
 *
 * @example
 * buildConsulFilter({ service: 'orders', namespace: 'prod', tags: [{ key: 'tier', value: 'gold' }] });
 * // '(Service.Meta["namespace"] == "prod" or "namespace=prod" in Service.Tags) and (Service.Meta["tag-tier"] == "gold" or "tier=gold" in Service.Tags)'
 */
export function buildConsulFilter(query: DiscoveryQuery): string | undefined {
  const clauses: string[] = [];
  const meta = (key: string) => `Service.Meta[${quote(key)}]`;
  const tagged = (tag: string) => `${quote(tag)} in Service.Tags`;
  // Entries read from their tags; what cannot be tested on tags is let through for the client-side check.
  const fromTags = `${quote(META_NAMESPACE)} not in Service.Meta`;

  const namespace = query.namespace ?? DEFAULT_NAMESPACE;
  // An instance without Meta.namespace decodes into its namespace= tag's namespace, or the default one.
  clauses.push(
    namespace === DEFAULT_NAMESPACE
      ? `(${meta(META_NAMESPACE)} == ${quote(namespace)} or ${fromTags})`
      : `(${meta(META_NAMESPACE)} == ${quote(namespace)} or ${tagged(`${NAMESPACE_TAG}=${namespace}`)})`,
  );

  const version = query.version;
  const semverRange = query.versionFormat === 'semver' && query.versionRouting;
  if (version !== undefined && version !== '' && version !== '*' && !semverRange) {
    clauses.push(`(${meta(META_VERSION)} == ${quote(version)} or ${tagged(`${VERSION_TAG}=${version}`)})`);
  }

  for (const filter of query.tags ?? []) {
    const key = tagMetaKey(filter.key);
    switch (filter.pattern ?? 'exact') {
      case 'exact':
        if (typeof filter.value === 'string') {
          // The crate reads a tag without "=" as value "true".
          const bare = filter.value === 'true' ? ` or ${tagged(filter.key)}` : '';
          clauses.push(`(${meta(key)} == ${quote(filter.value)} or ${tagged(`${filter.key}=${filter.value}`)}${bare})`);
        }
        break;
      case 'prefix':
        if (typeof filter.value === 'string') {
          clauses.push(
            `((${quote(key)} in Service.Meta and ${meta(key)} matches ${quote(`^${escapeRegex(filter.value)}`)}) or ${fromTags})`,
          );
        }
        break;
      case 'exists':
        clauses.push(`(${quote(key)} in Service.Meta or ${fromTags})`);
        break;
      default:
        // regex: client-side only.
        break;
    }
  }
  return clauses.length ? clauses.join(' and ') : undefined;
}

/** A go-bexpr double-quoted string for any text. */
export function quote(text: string): string {
  let out = '"';
  for (const char of text) {
    const code = char.codePointAt(0)!;
    out +=
      char === '"' || char === '\\' || code < 0x20 || code === 0x7f ? `\\u${code.toString(16).padStart(4, '0')}` : char;
  }
  return `${out}"`;
}

/** Escapes RE2 metacharacters (the same set as JavaScript's). */
function escapeRegex(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
