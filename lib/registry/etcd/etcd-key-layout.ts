import { formatAddress, parseAddress } from '../../core/address.js';
import { describeValue } from '../../core/errors.js';
import {
  createServiceInstance,
  DEFAULT_WEIGHT,
  fromSeedRecord,
  toSeedRecord,
  type ServiceInstance,
} from '../../core/service-instance.js';
import type { EtcdLayoutName, EtcdSettings } from './etcd.schema.js';
import { parseJson, SeedLayout, SeedSlashLayout } from './etcd-seed-layouts.js';

/**
 * What a stored value decodes to: an instance, nothing for this query (a
 * tombstone record, or a record of another namespace), or a reason to skip it.
 */
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
  /** What separates key segments. */
  readonly separator: string;
  /**
   * True when a record's key names its instance (the key's last segment is
   * the instance id, checked on decode): no two keys of a prefix give one
   * endpoint, so a watch event can be published as a diff.
   */
  readonly keyNamesInstance: boolean;
  /** The weight of an instance registered without one, and of a record without one. */
  readonly defaultWeight: number;
  /** The key an instance is registered under. */
  keyOf(instance: ServiceInstance): string;
  /** The value stored for an instance. */
  encode(instance: ServiceInstance): string;
  /** Throws RegistrationError, naming the field and value, when the layout cannot store `instance`. */
  checkWritable(instance: ServiceInstance): void;
  /** The prefixes under which the services of `namespace` live (each ends with a separator). */
  rootsOf(namespace: string): readonly string[];
  /** The prefixes a query for `service` in `namespace` reads (each ends with a separator). */
  prefixesOf(service: string, namespace: string): readonly string[];
  /** True when a read of `namespace` keeps records of every namespace (the Rust crate's no-namespace discovery). */
  readsEveryNamespace(namespace: string): boolean;
  /** Decodes a value found under one of `prefixesOf(service, namespace)`. */
  decode(key: string, value: Buffer, service: string, namespace: string): DecodeResult;
}

/** Picks the layout configured by `backend_config.layout`. */
export function keyLayoutFor(settings: Pick<EtcdSettings, 'layout' | 'prefix' | 'separator'>): EtcdKeyLayout {
  switch (settings.layout) {
    case 'grpc-naming':
      return new GrpcNamingLayout(settings.prefix);
    case 'seed-slash':
      return new SeedSlashLayout(settings.prefix, settings.separator);
    default:
      return new SeedLayout(settings.prefix, settings.separator);
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
  readonly separator = '/';
  /** The key is an address; two keys may carry one instance id and Addr. */
  readonly keyNamesInstance = false;
  readonly defaultWeight = DEFAULT_WEIGHT;
  constructor(private readonly prefix: string) {}

  rootsOf(): readonly string[] {
    return [this.prefix ? `${this.prefix}/` : ''];
  }

  prefixesOf(service: string): readonly string[] {
    return [`${this.rootsOf()[0]}${service}/`];
  }

  readsEveryNamespace(): boolean {
    return false;
  }

  keyOf(instance: ServiceInstance): string {
    return `${this.prefixesOf(instance.service)[0]}${instance.address}`;
  }

  encode(instance: ServiceInstance): string {
    return JSON.stringify({ Op: OP_ADD, Addr: instance.address, Metadata: toSeedRecord(instance) });
  }

  checkWritable(): void {
    // Any valid instance fits.
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
          weight: typeof meta.weight === 'number' && meta.weight >= 0 ? meta.weight : undefined,
        }),
      };
    } catch (error) {
      return { skip: (error as Error).message };
    }
  }
}
