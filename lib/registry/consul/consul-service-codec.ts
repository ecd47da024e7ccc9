import { formatAddress } from '../../core/address.js';
import { RegistrationError, describeValue } from '../../core/errors.js';
import { createServiceInstance, type ServiceInstance } from '../../core/service-instance.js';
import type { RegistrationTiming } from '../registry.interface.js';
import { consulAddressOf, crateTagsOf, readCrateTags } from './consul-tag-convention.js';
import { CONSUL_MIN_DEREGISTER_MS, type ConsulSettings } from './consul.schema.js';

/*
 * How an instance is stored in Consul.
 *
 * Meta (what discovery reads back, and what server-side filters test):
 *   namespace, version, region, zone, environment   the instance's fields
 *   weight                                          only when Weights cannot hold it (a fraction, or 0: drained)
 *   tag-<key>                                       one per instance tag
 *   meta-<key>                                      one per metadata.custom entry
 * Consul allows Meta keys of [A-Za-z0-9_-] only (at most 128 characters,
 * 64 keys, values up to 512 characters). A user key is written with letters,
 * digits and "-" as they are and every other byte of its UTF-8 form as
 * "_" plus two lowercase hex digits ("app.kubernetes.io/name" becomes
 * "app_2ekubernetes_2eio_2fname", "a_b" becomes "a_5fb"), so every key
 * survives the round trip and none collides with another.
 *
 * Tags (the Rust crate's convention, see consul-tag-convention.ts; also
 * for people, `consul catalog services -tags` and DNS tag lookups):
 * "key=value" per instance tag, plus "version=..." and "namespace=...".
 *
 * Reading: an entry with Meta.namespace was written by switchyard and is
 * read from Meta alone, so it round-trips exactly. Any other entry (the
 * crate's, or another tool's) is read from its Tags the crate's way, with
 * whatever switchyard Meta keys it has taking precedence. The server-side
 * filter (consul-filter.ts) tests both.
 */

export const META_NAMESPACE = 'namespace';
export const META_VERSION = 'version';
export const META_REGION = 'region';
export const META_ZONE = 'zone';
export const META_ENVIRONMENT = 'environment';
export const META_WEIGHT = 'weight';
export const TAG_META_PREFIX = 'tag-';
export const CUSTOM_META_PREFIX = 'meta-';

/** Consul's limits on service Meta (agent/structs: metaKeyMaxLength etc.). */
export const META_MAX_KEYS = 64;
export const META_MAX_KEY_LENGTH = 128;
export const META_MAX_VALUE_LENGTH = 512;

const PLAIN = /[A-Za-z0-9-]/;

/**
 * Encodes a user key into Consul's Meta key alphabet (reversible).
 *
 * @example
 * encodeMetaKey('app.kubernetes.io/name'); // 'app_2ekubernetes_2eio_2fname'
 */
export function encodeMetaKey(key: string): string {
  let out = '';
  for (const char of key) {
    if (PLAIN.test(char)) out += char;
    else for (const byte of Buffer.from(char, 'utf8')) out += `_${byte.toString(16).padStart(2, '0')}`;
  }
  return out;
}

/** Reverses {@link encodeMetaKey}; undefined for text it could not have produced. */
export function decodeMetaKey(encoded: string): string | undefined {
  if (!/^(?:[A-Za-z0-9-]|_[0-9a-f]{2})*$/.test(encoded)) return undefined;
  const bytes: number[] = [];
  for (let i = 0; i < encoded.length;) {
    if (encoded[i] === '_') {
      bytes.push(parseInt(encoded.slice(i + 1, i + 3), 16));
      i += 3;
    } else {
      bytes.push(encoded.charCodeAt(i));
      i += 1;
    }
  }
  const text = Buffer.from(bytes).toString('utf8');
  // Invalid UTF-8 decodes to U+FFFD; such a key was not written by us.
  return encodeMetaKey(text) === encoded ? text : undefined;
}

/** The Meta key holding tag `key`. */
export function tagMetaKey(key: string): string {
  return TAG_META_PREFIX + encodeMetaKey(key);
}

/** The agent's service definition (`PUT /v1/agent/service/register` body). */
export interface ConsulServiceDefinition {
  ID: string;
  Name: string;
  Address: string;
  Port: number;
  Tags: string[];
  Meta: Record<string, string>;
  Weights: { Passing: number; Warning: number };
  Check: Record<string, unknown>;
}

/** The check id switchyard gives an instance's one check. */
export function checkIdOf(instanceId: string): string {
  return `service:${instanceId}`;
}

/**
 * Builds the agent registration for an instance. Throws
 * {@link RegistrationError} naming the key when a value cannot be stored
 * in Consul Meta.
 *
 * @example
 * const body = toServiceDefinition(instance, settings, { ttlMs: 9_000, heartbeatMs: 3_000 });
 */
export function toServiceDefinition(
  instance: ServiceInstance,
  settings: ConsulSettings,
  timing: RegistrationTiming,
): ConsulServiceDefinition {
  const meta: Record<string, string> = {};
  const put = (key: string, value: unknown, field: string) => {
    let text: string;
    if (typeof value === 'string') text = value;
    else if (typeof value === 'number' || typeof value === 'boolean') text = String(value);
    else
      throw new RegistrationError(
        `Cannot register instance '${instance.id}' in Consul: ${field} has value ${describeValue(value)}; expected a string`,
      );
    if (key.length > META_MAX_KEY_LENGTH) {
      throw new RegistrationError(
        `Cannot register instance '${instance.id}' in Consul: ${field} gives Meta key '${key}' of ${key.length} characters; Consul allows at most ${META_MAX_KEY_LENGTH}`,
      );
    }
    if (text.length > META_MAX_VALUE_LENGTH) {
      throw new RegistrationError(
        `Cannot register instance '${instance.id}' in Consul: ${field} is ${text.length} characters long; Consul Meta values hold at most ${META_MAX_VALUE_LENGTH}`,
      );
    }
    meta[key] = text;
  };
  put(META_NAMESPACE, instance.namespace, 'namespace');
  if (instance.version) put(META_VERSION, instance.version, 'version');
  if (instance.metadata.region !== undefined) put(META_REGION, instance.metadata.region, 'metadata.region');
  if (instance.metadata.zone !== undefined) put(META_ZONE, instance.metadata.zone, 'metadata.zone');
  if (instance.metadata.environment !== undefined)
    put(META_ENVIRONMENT, instance.metadata.environment, 'metadata.environment');
  // Consul weights are integers >= 1; the exact value travels in Meta when it has a fraction or is 0 (drained).
  const passing = Math.max(1, Math.round(instance.weight));
  if (passing !== instance.weight) put(META_WEIGHT, String(instance.weight), 'weight');
  for (const [key, value] of Object.entries(instance.tags)) put(tagMetaKey(key), value, `tags.${key}`);
  for (const [key, value] of Object.entries(instance.metadata.custom))
    put(CUSTOM_META_PREFIX + encodeMetaKey(key), value, `metadata.custom.${key}`);
  const count = Object.keys(meta).length;
  if (count > META_MAX_KEYS) {
    throw new RegistrationError(
      `Cannot register instance '${instance.id}' in Consul: it needs ${count} Meta keys (namespace, version, zone..., one per tag and custom entry); Consul allows at most ${META_MAX_KEYS}`,
    );
  }

  return {
    ID: instance.id,
    Name: instance.service,
    Address: consulAddressOf(instance, settings.rustCompatible),
    Port: instance.port,
    Tags: crateTagsOf(instance),
    Meta: meta,
    Weights: { Passing: passing, Warning: 1 },
    Check: checkDefinition(instance, settings, timing),
  };
}

/** The default for DeregisterCriticalServiceAfter: three TTLs, at least Consul's 1 min floor. */
export function deregisterCriticalAfterMs(settings: ConsulSettings, timing: RegistrationTiming): number {
  return settings.check.deregisterCriticalAfterMs ?? Math.max(CONSUL_MIN_DEREGISTER_MS, 3 * timing.ttlMs);
}

function checkDefinition(
  instance: ServiceInstance,
  settings: ConsulSettings,
  timing: RegistrationTiming,
): Record<string, unknown> {
  const common = {
    CheckID: checkIdOf(instance.id),
    DeregisterCriticalServiceAfter: `${deregisterCriticalAfterMs(settings, timing)}ms`,
  };
  const { check } = settings;
  switch (check.kind) {
    case 'http': {
      const url = /^https?:\/\//.test(check.path)
        ? check.path
        : `http://${formatAddress(instance.host, instance.port)}${check.path}`;
      // Consul runs the first probe within one interval; until then the instance is critical.
      return {
        ...common,
        Name: `switchyard HTTP ${check.path}`,
        HTTP: url,
        Method: 'GET',
        Interval: `${check.intervalMs}ms`,
        Timeout: `${check.timeoutMs}ms`,
      };
    }
    case 'grpc': {
      const target = formatAddress(instance.host, instance.port) + (check.grpcService ? `/${check.grpcService}` : '');
      return {
        ...common,
        Name: 'switchyard gRPC health',
        GRPC: target,
        GRPCUseTLS: false,
        Interval: `${check.intervalMs}ms`,
        Timeout: `${check.timeoutMs}ms`,
      };
    }
    default:
      // A TTL check starts critical unless registered passing; the instance
      // is serving by the time it registers, so it starts passing.
      return { ...common, Name: 'switchyard TTL heartbeat', TTL: `${timing.ttlMs}ms`, Status: 'passing' };
  }
}

/** One entry of `GET /v1/health/service/<name>`, as far as it is read. */
interface HealthEntry {
  Node?: { Address?: unknown };
  Service?: {
    ID?: unknown;
    Service?: unknown;
    Address?: unknown;
    Port?: unknown;
    Meta?: unknown;
    Tags?: unknown;
    Weights?: { Passing?: unknown } | null;
  };
}

/**
 * Decodes one health entry into an instance: from Meta when switchyard
 * wrote it, else from the crate's tag convention (Meta keys it has win).
 * Throws (InvalidInstanceError,
 * InvalidAddressError) for entries that cannot be used; the caller skips
 * them with a warning.
 *
 * @example
 * const instance = fromHealthEntry(entry);
 */
export function fromHealthEntry(entry: unknown): ServiceInstance {
  if (!entry || typeof entry !== 'object') throw new Error(`health entry ${describeValue(entry)} is not an object`);
  const { Node: node, Service: service } = entry as HealthEntry;
  if (!service || typeof service !== 'object') throw new Error('health entry has no Service');
  const rawMeta = service.Meta && typeof service.Meta === 'object' ? (service.Meta as Record<string, unknown>) : {};
  const meta: Record<string, string> = {};
  for (const [key, value] of Object.entries(rawMeta)) if (typeof value === 'string') meta[key] = value;

  // No Meta.namespace: not written by switchyard; its Tags speak the crate's convention.
  const fromTags = meta[META_NAMESPACE] === undefined ? readCrateTags(service.Tags) : undefined;
  const tags: Record<string, string> = { ...fromTags?.tags };
  const custom: Record<string, string> = {};
  for (const [key, value] of Object.entries(meta)) {
    if (key.startsWith(TAG_META_PREFIX)) {
      const name = decodeMetaKey(key.slice(TAG_META_PREFIX.length));
      if (name) tags[name] = value;
    } else if (key.startsWith(CUSTOM_META_PREFIX)) {
      const name = decodeMetaKey(key.slice(CUSTOM_META_PREFIX.length));
      if (name) custom[name] = value;
    }
  }

  let weight = 1;
  const exact = meta[META_WEIGHT] !== undefined ? Number(meta[META_WEIGHT]) : NaN;
  const passing = service.Weights?.Passing;
  if (Number.isFinite(exact) && exact >= 0) weight = exact;
  else if (typeof passing === 'number' && Number.isFinite(passing) && passing > 0) weight = passing;

  const serviceAddress = typeof service.Address === 'string' ? service.Address : '';
  const host = serviceAddress || (typeof node?.Address === 'string' ? node.Address : '');
  return createServiceInstance({
    service: service.Service as string,
    id: service.ID as string,
    // Consul stores IPv6 service addresses without brackets.
    host: host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host,
    port: service.Port as number,
    namespace: meta[META_NAMESPACE] || fromTags?.namespace,
    version: meta[META_VERSION] ?? fromTags?.version,
    tags,
    metadata: {
      ...(meta[META_REGION] !== undefined ? { region: meta[META_REGION] } : {}),
      ...(meta[META_ZONE] !== undefined ? { zone: meta[META_ZONE] } : {}),
      ...(meta[META_ENVIRONMENT] !== undefined ? { environment: meta[META_ENVIRONMENT] } : {}),
      custom,
    },
    healthy: true,
    weight,
  });
}
