import { formatAddress, parseAddress } from '../../core/address.js';
import { describeValue } from '../../core/errors.js';
import {
  createServiceInstance,
  fromSeedRecord,
  toSeedRecord,
  type ServiceInstance,
} from '../../core/service-instance.js';
import type { EtcdLayoutName, EtcdSettings } from './etcd.schema.js';

/** What a stored value decodes to: an instance, nothing (a tombstone record), or a reason to skip it. */
export type DecodeResult = { instance: ServiceInstance } | { absent: true } | { skip: string };

/**
 * Where instances live in etcd and how their values are encoded. One
 * implementation per `layout` option.
 *
 * @example
 * const layout = keyLayoutFor(settings); const key = layout.keyOf(instance);
 */
export interface EtcdKeyLayout {
  readonly name: EtcdLayoutName;
  /** The key an instance is registered under. */
  keyOf(instance: ServiceInstance): string;
  /** The value stored for an instance. */
  encode(instance: ServiceInstance): string;
  /** The prefix holding every instance of `service` in `namespace` (ends with a separator). */
  prefixOf(service: string, namespace: string): string;
  /** Decodes a value found under `prefixOf(service, namespace)`. */
  decode(key: string, value: Buffer, service: string, namespace: string): DecodeResult;
}

/** Picks the layout configured by `backend_config.layout`. */
export function keyLayoutFor(settings: Pick<EtcdSettings, 'layout' | 'prefix' | 'separator'>): EtcdKeyLayout {
  return settings.layout === 'grpc-naming'
    ? new GrpcNamingLayout(settings.prefix)
    : new SeedLayout(settings.prefix, settings.separator);
}

/**
 * The seed's layout: `{prefix}/{namespace}/services/{service}/{instance_id}`
 * (with the configured separator) holding the seed's JSON record, so the
 * seed's Rust services and switchyard services see each other.
 */
export class SeedLayout implements EtcdKeyLayout {
  readonly name = 'seed';
  constructor(
    private readonly prefix: string,
    private readonly separator: string,
  ) {}

  prefixOf(service: string, namespace: string): string {
    const s = this.separator;
    return `${this.prefix}${s}${namespace}${s}services${s}${service}${s}`;
  }

  keyOf(instance: ServiceInstance): string {
    return `${this.prefixOf(instance.service, instance.namespace)}${instance.id}`;
  }

  encode(instance: ServiceInstance): string {
    return JSON.stringify(toSeedRecord(instance));
  }

  decode(key: string, value: Buffer, service: string, namespace: string): DecodeResult {
    const record = parseJson(value);
    if ('skip' in record) return record;
    let instance: ServiceInstance;
    try {
      instance = fromSeedRecord(record.json);
    } catch (error) {
      return { skip: (error as Error).message };
    }
    // The key is the index; a record that disagrees with it would be served
    // under the wrong name, so it is reported rather than silently filtered.
    if (instance.service !== service)
      return { skip: `service_type ${describeValue(instance.service)} does not match the key's service "${service}"` };
    if (instance.namespace !== namespace)
      return {
        skip: `namespace ${describeValue(instance.namespace)} does not match the key's namespace "${namespace}"`,
      };
    const id = key.slice(key.lastIndexOf(this.separator) + this.separator.length);
    if (id && id !== instance.id)
      return { skip: `instance_id ${describeValue(instance.id)} does not match the key's last segment "${id}"` };
    return { instance };
  }
}

/** etcd's gRPC naming operations (`naming.Update.Op`). */
const OP_ADD = 0;
const OP_DELETE = 1;

/**
 * etcd's gRPC naming layout: `{prefix}/{service}/{host:port}` holding
 * `{"Op":0,"Addr":"host:port","Metadata":…}`, the format Go services
 * register with for etcd's gRPC resolver. switchyard puts its own instance
 * fields (the seed record) in `Metadata`; records from other writers get
 * defaults. The layout has no namespace: a record without one in its
 * `Metadata` belongs to whichever namespace is asked for.
 */
export class GrpcNamingLayout implements EtcdKeyLayout {
  readonly name = 'grpc-naming';
  constructor(private readonly prefix: string) {}

  prefixOf(service: string): string {
    return this.prefix ? `${this.prefix}/${service}/` : `${service}/`;
  }

  keyOf(instance: ServiceInstance): string {
    return `${this.prefixOf(instance.service)}${instance.address}`;
  }

  encode(instance: ServiceInstance): string {
    return JSON.stringify({ Op: OP_ADD, Addr: instance.address, Metadata: toSeedRecord(instance) });
  }

  decode(key: string, value: Buffer, service: string, namespace: string): DecodeResult {
    const parsed = parseJson(value);
    if ('skip' in parsed) return parsed;
    const record = parsed.json;
    if (!record || typeof record !== 'object' || Array.isArray(record))
      return { skip: `expected a JSON object, got ${describeValue(record)}` };
    const r = record as Record<string, unknown>;
    const op = r.Op ?? OP_ADD;
    if (op === OP_DELETE) return { absent: true };
    if (op !== OP_ADD) return { skip: `Op ${describeValue(op)} is neither 0 (Add) nor 1 (Delete)` };
    let address: string;
    try {
      const { host, port } = parseAddress(r.Addr, 'Addr');
      address = formatAddress(host, port);
    } catch (error) {
      return { skip: (error as Error).message };
    }
    const meta =
      r.Metadata && typeof r.Metadata === 'object' && !Array.isArray(r.Metadata)
        ? (r.Metadata as Record<string, unknown>)
        : {};
    try {
      if (typeof meta.instance_id === 'string' && typeof meta.service_type === 'string') {
        // Written by switchyard (or anything speaking the seed record): Addr is the truth for the address.
        const instance = fromSeedRecord({
          ...meta,
          address,
          namespace: typeof meta.namespace === 'string' && meta.namespace ? meta.namespace : namespace,
        });
        if (instance.service !== service)
          return {
            skip: `Metadata.service_type ${describeValue(instance.service)} does not match the key's service "${service}"`,
          };
        return { instance };
      }
      const id = key.slice(key.lastIndexOf('/') + 1) || address;
      return {
        instance: createServiceInstance({
          service,
          address,
          id: /[\s/]/.test(id) ? address : id,
          namespace: typeof meta.namespace === 'string' && meta.namespace ? meta.namespace : namespace,
          version: typeof meta.version === 'string' ? meta.version : undefined,
          weight: typeof meta.weight === 'number' && meta.weight > 0 ? meta.weight : undefined,
        }),
      };
    } catch (error) {
      return { skip: (error as Error).message };
    }
  }
}

function parseJson(value: Buffer): { json: unknown } | { skip: string } {
  try {
    return { json: JSON.parse(value.toString('utf8')) };
  } catch (error) {
    return { skip: `not valid JSON (${(error as Error).message})` };
  }
}
