import { isIP } from 'node:net';
import { describeValue, RegistrationError } from '../../core/errors.js';
import {
  CRATE_DEFAULT_WEIGHT,
  DEFAULT_NAMESPACE,
  DEFAULT_WEIGHT,
  fromSeedRecord,
  toSeedRecord,
  type ServiceInstance,
} from '../../core/service-instance.js';
import type { DecodeResult, EtcdKeyLayout } from './etcd-key-layout.js';

/*
 * The two layouts of the seed's record. `seed` is what the Rust crate
 * (flare-server-core's `discovery`) writes and reads; `seed-slash` is the
 * layout switchyard 0.1 wrote, kept for fleets with records in it.
 */

/**
 * The namespaces the Rust crate reads when asked for none: it writes an
 * instance without a namespace under `flare`, and looks in these three.
 */
export const CRATE_NO_NAMESPACE_ROOTS: readonly string[] = Object.freeze(['flare', 'flare-test', 'default']);

/** The largest weight the crate can read (`u32`). */
const CRATE_MAX_WEIGHT = 4_294_967_295;

/**
 * The crate's `ServiceInstance` as `serde_json` writes it: every field, in
 * declaration order, `null` for a missing option, `address` a `SocketAddr`
 * (an IP literal with a port) and `weight` a `u32`.
 */
export interface CrateInstanceRecord {
  service_type: string;
  instance_id: string;
  address: string;
  namespace: string | null;
  version: string | null;
  tags: Record<string, string>;
  metadata: { region: string | null; zone: string | null; environment: string | null; custom: Record<string, string> };
  healthy: boolean;
  weight: number;
}

/**
 * Encodes an instance exactly as the crate writes one (check it with
 * {@link checkCrateWritable} first).
 *
 * @example
 * JSON.stringify(toCrateRecord(instance)); // {"service_type":"orders","instance_id":"o-1","address":"10.0.0.5:50051",...}
 */
export function toCrateRecord(instance: ServiceInstance): CrateInstanceRecord {
  return {
    service_type: instance.service,
    instance_id: instance.id,
    address: instance.address,
    namespace: instance.namespace,
    version: instance.version === '' ? null : instance.version,
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

/**
 * Refuses, with a {@link RegistrationError} naming the field and value, an
 * instance the crate could not parse: a host name where it wants a
 * `SocketAddr`, a weight that is not a `u32`.
 *
 * @example
 * checkCrateWritable(instance); // throws for address "localhost:50051" or weight 2.5
 */
export function checkCrateWritable(instance: ServiceInstance): void {
  const refuse = (what: string) => {
    throw new RegistrationError(`Cannot register instance '${instance.id}' in etcd layout "seed": ${what}`);
  };
  if (isIP(instance.host) === 0) {
    refuse(
      `address ${describeValue(instance.address)} has a host name, but the Rust services read address as a SocketAddr: ` +
        `an IP literal with a port (10.0.0.5:50051, [2001:db8::b]:50051). Set the instance's host to the IP address ` +
        `other machines reach it at, or use layout = "seed-slash"`,
    );
  }
  if (!Number.isInteger(instance.weight) || instance.weight > CRATE_MAX_WEIGHT) {
    refuse(
      `weight ${describeValue(instance.weight)} is not an integer from 0 to ${CRATE_MAX_WEIGHT}, ` +
        `which the Rust services store weights as (u32; 100 is their default)`,
    );
  }
}

/**
 * The Rust crate's layout, the default: `{namespace}/services/{service}/{instance_id}`
 * with no leading separator (`{prefix}/` before it when a prefix is set),
 * holding the crate's record byte for byte. A query in the default
 * namespace is the crate's "no namespace": it reads the `flare`,
 * `flare-test` and `default` roots and keeps every record there, whatever
 * its namespace; a query in another namespace reads that one root and keeps
 * the records whose `namespace` is that one (not `null`, not another).
 */
export class SeedLayout implements EtcdKeyLayout {
  readonly name = 'seed';
  readonly defaultWeight = CRATE_DEFAULT_WEIGHT;
  readonly keyNamesInstance = true;
  constructor(
    private readonly prefix: string,
    readonly separator: string,
  ) {}

  private root(namespace: string): string {
    const s = this.separator;
    return `${this.prefix ? `${this.prefix}${s}` : ''}${namespace}${s}services${s}`;
  }

  readsEveryNamespace(namespace: string): boolean {
    return namespace === DEFAULT_NAMESPACE;
  }

  rootsOf(namespace: string): readonly string[] {
    return this.readsEveryNamespace(namespace)
      ? CRATE_NO_NAMESPACE_ROOTS.map((ns) => this.root(ns))
      : [this.root(namespace)];
  }

  prefixesOf(service: string, namespace: string): readonly string[] {
    return this.rootsOf(namespace).map((root) => `${root}${service}${this.separator}`);
  }

  keyOf(instance: ServiceInstance): string {
    return `${this.root(instance.namespace)}${instance.service}${this.separator}${instance.id}`;
  }

  encode(instance: ServiceInstance): string {
    return JSON.stringify(toCrateRecord(instance));
  }

  checkWritable(instance: ServiceInstance): void {
    checkCrateWritable(instance);
  }

  decode(key: string, value: Buffer, service: string, namespace: string): DecodeResult {
    const parsed = parseJson(value);
    if ('skip' in parsed) return parsed;
    const decoded = decodeSeedRecord(parsed.json, this.defaultWeight);
    if ('skip' in decoded) return decoded;
    const mismatch = keyMismatch(decoded.instance, key, service, this.separator);
    if (mismatch) return { skip: mismatch };
    // The crate's matches_namespace: asked for a namespace, a record in none or in another is not in it.
    const written = (parsed.json as Record<string, unknown>).namespace;
    if (!this.readsEveryNamespace(namespace) && written !== namespace) return { absent: true };
    return decoded;
  }
}

/**
 * The layout switchyard 0.1 wrote (then called `seed`):
 * `{prefix}/{namespace}/services/{service}/{instance_id}`, with a leading
 * separator when there is no prefix, and the seed record as switchyard
 * wrote it (`version: ""`, default weight 1). A record of another namespace
 * under a namespace's prefix is skipped with a warning.
 */
export class SeedSlashLayout implements EtcdKeyLayout {
  readonly name = 'seed-slash';
  readonly defaultWeight = DEFAULT_WEIGHT;
  readonly keyNamesInstance = true;
  constructor(
    private readonly prefix: string,
    readonly separator: string,
  ) {}

  readsEveryNamespace(): boolean {
    return false;
  }

  rootsOf(namespace: string): readonly string[] {
    const s = this.separator;
    return [`${this.prefix}${s}${namespace}${s}services${s}`];
  }

  prefixesOf(service: string, namespace: string): readonly string[] {
    return [`${this.rootsOf(namespace)[0]}${service}${this.separator}`];
  }

  keyOf(instance: ServiceInstance): string {
    return `${this.prefixesOf(instance.service, instance.namespace)[0]}${instance.id}`;
  }

  encode(instance: ServiceInstance): string {
    return JSON.stringify(toSeedRecord(instance));
  }

  checkWritable(): void {
    // Any valid instance fits.
  }

  decode(key: string, value: Buffer, service: string, namespace: string): DecodeResult {
    const parsed = parseJson(value);
    if ('skip' in parsed) return parsed;
    const decoded = decodeSeedRecord(parsed.json, this.defaultWeight);
    if ('skip' in decoded) return decoded;
    // The key is the index; a record that disagrees with it would be served
    // under the wrong name, so it is reported rather than silently filtered.
    const { instance } = decoded;
    const mismatch =
      instance.service === service && instance.namespace !== namespace
        ? `namespace ${describeValue(instance.namespace)} does not match the key's namespace "${namespace}"`
        : keyMismatch(instance, key, service, this.separator);
    return mismatch ? { skip: mismatch } : decoded;
  }
}

function decodeSeedRecord(json: unknown, defaultWeight: number): { instance: ServiceInstance } | { skip: string } {
  try {
    return { instance: fromSeedRecord(json, { weight: defaultWeight }) };
  } catch (error) {
    return { skip: (error as Error).message };
  }
}

/** Why a record disagrees with the key it sits under (its service, its id), or undefined. */
function keyMismatch(instance: ServiceInstance, key: string, service: string, separator: string): string | undefined {
  if (instance.service !== service)
    return `service_type ${describeValue(instance.service)} does not match the key's service "${service}"`;
  const id = key.slice(key.lastIndexOf(separator) + separator.length);
  if (id && id !== instance.id)
    return `instance_id ${describeValue(instance.id)} does not match the key's last segment "${id}"`;
  return undefined;
}

/** Parses a stored value as JSON, or says why it is not. */
export function parseJson(value: Buffer): { json: unknown } | { skip: string } {
  try {
    return { json: JSON.parse(value.toString('utf8')) };
  } catch (error) {
    return { skip: `not valid JSON (${(error as Error).message})` };
  }
}
