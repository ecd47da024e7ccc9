import { isIP } from 'node:net';
import { describeValue, RegistrationError } from '../../core/errors.js';
import type { ServiceInstance } from '../../core/service-instance.js';

/*
 * The Rust crate's Consul convention (flare-server-core's `discovery`):
 * no Meta and no Weights; each instance tag is a `key=value` tag, plus
 * `version=<v>` and `namespace=<ns>` when set. Its discovery turns every
 * `k=v` tag back into `tags[k] = v` (a tag without `=` into
 * `tags[tag] = "true"`) and parses `Address:Port` as a SocketAddr, so one
 * host-name (or unbracketed IPv6) address fails its whole discovery call.
 * switchyard writes these tags beside its Meta and reads them from entries
 * that carry no switchyard Meta.
 */

/** The tag holding the namespace. */
export const NAMESPACE_TAG = 'namespace';
/** The tag holding the version. */
export const VERSION_TAG = 'version';

/** What an entry's tags say, read the crate's way. */
export interface CrateTags {
  namespace: string | undefined;
  version: string | undefined;
  tags: Record<string, string>;
}

/**
 * Reads Consul `Tags` as the crate writes them: `namespace=` and
 * `version=` fill those fields, any other `k=v` is tag `k` (split at the
 * first `=`), a tag without `=` is tag `tag` with value `"true"`.
 *
 * @example
 * readCrateTags(['region=us-east-1', 'version=v1', 'canary']); // { namespace: undefined, version: 'v1', tags: { region: 'us-east-1', canary: 'true' } }
 */
export function readCrateTags(value: unknown): CrateTags {
  const out: CrateTags = { namespace: undefined, version: undefined, tags: {} };
  if (!Array.isArray(value)) return out;
  for (const tag of value) {
    if (typeof tag !== 'string') continue;
    const at = tag.indexOf('=');
    const key = at < 0 ? tag : tag.slice(0, at);
    const text = at < 0 ? 'true' : tag.slice(at + 1);
    if (key === NAMESPACE_TAG) out.namespace = text || undefined;
    else if (key === VERSION_TAG) out.version = text;
    else out.tags[key] = text;
  }
  return out;
}

/**
 * The crate's tags for an instance: `key=value` per tag, then
 * `version=<v>` (when it has one) and `namespace=<ns>`.
 *
 * @example
 * crateTagsOf(instance); // ['tier=gold', 'version=1.2.0', 'namespace=default']
 */
export function crateTagsOf(instance: ServiceInstance): string[] {
  const tags = Object.entries(instance.tags).map(([key, value]) => `${key}=${value}`);
  if (instance.version) tags.push(`${VERSION_TAG}=${instance.version}`);
  tags.push(`${NAMESPACE_TAG}=${instance.namespace}`);
  return tags;
}

/**
 * The `Address` to register. With `rustCompatible` it is what the crate can
 * parse joined to `:Port`: an IPv4 literal, or an IPv6 literal in brackets
 * (Consul stores it as given); a host name is refused. Otherwise the host as it is.
 *
 * @example
 * consulAddressOf(instance, true); // '10.0.0.5', or '[2001:db8::b]'
 */
export function consulAddressOf(instance: ServiceInstance, rustCompatible: boolean): string {
  if (!rustCompatible) return instance.host;
  const family = isIP(instance.host);
  if (family === 0) {
    throw new RegistrationError(
      `Cannot register instance '${instance.id}' in Consul with backend_config.rust_compatible: address ` +
        `${describeValue(instance.address)} has a host name, but the Rust services parse Address:Port as a SocketAddr ` +
        `(an IP literal), and one such address fails their discovery of the whole service. Set the instance's host ` +
        `to the IP address other machines reach it at`,
    );
  }
  return family === 6 ? `[${instance.host}]` : instance.host;
}
