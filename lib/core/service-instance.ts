import { randomUUID } from 'node:crypto';
import { formatAddress, parseAddress } from './address.js';
import { DiscoveryError, describeValue } from './errors.js';

/** Where an instance runs. `custom` holds any extra string labels. */
export interface InstanceMetadata {
  readonly region?: string;
  readonly zone?: string;
  readonly environment?: string;
  readonly custom: Readonly<Record<string, string>>;
}

/**
 * One running copy of a service, as stored in a registry. Immutable: use
 * {@link createServiceInstance} to build or change one.
 */
export interface ServiceInstance {
  /** Service name (the seed's `service_type`). */
  readonly service: string;
  /** Unique per live instance (the seed's `instance_id`). */
  readonly id: string;
  /** `host:port`, IPv6 in brackets. */
  readonly address: string;
  readonly host: string;
  readonly port: number;
  readonly namespace: string;
  /** Free text, or semver (a leading `v` is accepted) when routing by version. */
  readonly version: string;
  readonly tags: Readonly<Record<string, string>>;
  readonly metadata: InstanceMetadata;
  /** False: the registry lists the instance but says not to serve it (clients list it, never pick it). */
  readonly healthy: boolean;
  /**
   * Relative weight for weighted strategies; >= 0. Weight 0 marks a drained
   * instance: listed, shown, never picked by any strategy.
   */
  readonly weight: number;
}

/** What a caller supplies to describe an instance; everything but service and address has a default. */
export interface ServiceInstanceInput {
  service: string;
  address?: string;
  host?: string;
  port?: number;
  id?: string;
  namespace?: string;
  version?: string;
  tags?: Record<string, string>;
  metadata?: Partial<InstanceMetadata>;
  healthy?: boolean;
  weight?: number;
}

export const DEFAULT_NAMESPACE = 'default';
/** The weight of an instance created without one. */
export const DEFAULT_WEIGHT = 1;
/**
 * The weight the Rust crate gives every instance (`ServiceInstance::new`);
 * switchyard's default in the etcd `seed` layout, whose records the crate
 * reads, so a default instance of either side gets the same share.
 */
export const CRATE_DEFAULT_WEIGHT = 100;

/** Service names: letters, digits, `.`, `_`, `-`, 1..253 chars (DNS- and Consul-safe). */
const SERVICE_NAME = /^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,252})$/;

export class InvalidInstanceError extends DiscoveryError {}

function fail(field: string, value: unknown, expected: string): never {
  throw new InvalidInstanceError(`Invalid instance ${field} ${describeValue(value)}: expected ${expected}`);
}

/** Validates a service name and returns it. */
export function assertServiceName(value: unknown, field = 'service'): string {
  if (typeof value !== 'string' || !SERVICE_NAME.test(value)) {
    fail(field, value, 'a service name of letters, digits, ".", "_" or "-" (1-253 characters)');
  }
  return value;
}

function stringRecord(value: unknown, field: string): Record<string, string> {
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value)) fail(field, value, 'an object of string values');
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    if (typeof v === 'string') out[k] = v;
    else if (typeof v === 'number' || typeof v === 'boolean') out[k] = String(v);
    else fail(`${field}.${k}`, v, 'a string');
  }
  return out;
}

/**
 * Builds a validated, frozen {@link ServiceInstance}.
 *
 * @example
 * const me = createServiceInstance({ service: 'orders', address: '10.0.0.5:50051', version: 'v1.2.0' });
 */
export function createServiceInstance(input: ServiceInstanceInput): ServiceInstance {
  if (!input || typeof input !== 'object') fail('', input, 'an object');
  const service = assertServiceName(input.service);
  let host: string;
  let port: number;
  if (input.address !== undefined) {
    ({ host, port } = parseAddress(input.address));
  } else {
    if (typeof input.host !== 'string' || input.host.length === 0) fail('host', input.host, 'a host name or IP');
    if (!Number.isInteger(input.port) || (input.port as number) < 1 || (input.port as number) > 65535) {
      fail('port', input.port, 'an integer port 1-65535');
    }
    ({ host, port } = parseAddress(formatAddress(input.host, input.port as number)));
  }
  const id = input.id ?? `${service}-${randomUUID()}`;
  if (typeof id !== 'string' || id.length === 0 || id.length > 256 || /[\s/]/.test(id)) {
    fail('id', id, 'a non-empty id without spaces or "/" (at most 256 characters)');
  }
  const namespace = input.namespace ?? DEFAULT_NAMESPACE;
  if (typeof namespace !== 'string' || namespace.length === 0) fail('namespace', namespace, 'a non-empty string');
  const version = input.version ?? '';
  if (typeof version !== 'string') fail('version', version, 'a string');
  const weight = input.weight ?? DEFAULT_WEIGHT;
  if (typeof weight !== 'number' || !Number.isFinite(weight) || weight < 0) {
    fail('weight', weight, `a number >= 0, 0 meaning drained (instance ${id})`);
  }
  const healthy = input.healthy ?? true;
  if (typeof healthy !== 'boolean') fail('healthy', healthy, 'a boolean');
  const meta = input.metadata ?? {};
  if (typeof meta !== 'object' || meta === null) fail('metadata', meta, 'an object');
  const metadata: InstanceMetadata = Object.freeze({
    ...(meta.region !== undefined ? { region: String(meta.region) } : {}),
    ...(meta.zone !== undefined ? { zone: String(meta.zone) } : {}),
    ...(meta.environment !== undefined ? { environment: String(meta.environment) } : {}),
    custom: Object.freeze(stringRecord(meta.custom, 'metadata.custom')),
  });
  return Object.freeze({
    service,
    id,
    address: formatAddress(host, port),
    host,
    port,
    namespace,
    version,
    tags: Object.freeze(stringRecord(input.tags, 'tags')),
    metadata,
    healthy,
    // -0 would print as 0 but compare differently.
    weight: weight === 0 ? 0 : weight,
  });
}

/**
 * True when clients may send the instance calls: the registry calls it
 * healthy and its weight is above 0 (weight 0 is a drain marker).
 *
 * @example
 * const served = instances.filter(receivesTraffic);
 */
export function receivesTraffic(instance: ServiceInstance): boolean {
  return instance.healthy && instance.weight > 0;
}

/** Returns a copy of `instance` with `changes` applied (validated again). */
export function withChanges(instance: ServiceInstance, changes: Partial<ServiceInstanceInput>): ServiceInstance {
  const { host: _h, port: _p, ...rest } = instance;
  return createServiceInstance({
    ...rest,
    ...changes,
    ...(changes.host || changes.port ? { address: undefined } : {}),
  });
}

/** The seed's JSON record (snake_case), as stored in etcd and instance files. */
export interface SeedInstanceRecord {
  service_type: string;
  instance_id: string;
  address: string;
  namespace: string;
  version: string;
  tags: Record<string, string>;
  metadata: { region: string | null; zone: string | null; environment: string | null; custom: Record<string, string> };
  healthy: boolean;
  weight: number;
}

/** Encodes an instance as the seed's JSON record. */
export function toSeedRecord(instance: ServiceInstance): SeedInstanceRecord {
  return {
    service_type: instance.service,
    instance_id: instance.id,
    address: instance.address,
    namespace: instance.namespace,
    version: instance.version,
    tags: { ...instance.tags },
    metadata: {
      region: instance.metadata.region ?? null,
      zone: instance.metadata.zone ?? null,
      environment: instance.metadata.environment ?? null,
      custom: { ...instance.metadata.custom },
    },
    healthy: instance.healthy,
    weight: instance.weight,
  };
}

/** How {@link fromSeedRecord} fills what a record leaves out. */
export interface SeedRecordDefaults {
  /** The weight of a record without one (default {@link DEFAULT_WEIGHT}). */
  weight?: number;
}

/**
 * Decodes the seed's JSON record (the Rust crate's record is one). Strict
 * about what it needs (service, id, address), tolerant of extra fields; a
 * `null` namespace is the default namespace, a `null` version none. Throws
 * {@link InvalidInstanceError} or InvalidAddressError for records that
 * cannot be used.
 *
 * @example
 * const instance = fromSeedRecord(JSON.parse(value), { weight: CRATE_DEFAULT_WEIGHT });
 */
export function fromSeedRecord(record: unknown, defaults: SeedRecordDefaults = {}): ServiceInstance {
  if (!record || typeof record !== 'object' || Array.isArray(record)) fail('record', record, 'a JSON object');
  const r = record as Record<string, unknown>;
  const metadata = (r.metadata ?? {}) as Record<string, unknown>;
  if (typeof metadata !== 'object' || metadata === null) fail('metadata', r.metadata, 'an object');
  const opt = (v: unknown, field: string) => {
    if (v === null || v === undefined) return undefined;
    if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return String(v);
    return fail(`metadata.${field}`, v, 'a string');
  };
  if (typeof r.instance_id !== 'string') fail('instance_id', r.instance_id, 'a string');
  return createServiceInstance({
    service: r.service_type as string,
    id: r.instance_id,
    address: r.address as string,
    namespace: typeof r.namespace === 'string' && r.namespace ? r.namespace : undefined,
    version: typeof r.version === 'string' ? r.version : undefined,
    tags: r.tags as Record<string, string> | undefined,
    metadata: {
      region: opt(metadata.region, 'region'),
      zone: opt(metadata.zone, 'zone'),
      environment: opt(metadata.environment, 'environment'),
      custom: (metadata.custom ?? undefined) as Record<string, string> | undefined,
    },
    healthy: r.healthy === undefined ? undefined : (r.healthy as boolean),
    weight: r.weight === undefined ? defaults.weight : (r.weight as number),
  });
}
