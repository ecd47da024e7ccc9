import fc from 'fast-check';
import type { ClusterMessage } from '../../../lib/registry/mesh/xds-cluster.js';
import type { ClusterLoadAssignmentMessage } from '../../../lib/registry/mesh/xds-load-assignment.js';

/*
 * Generators for registry records: the seed's JSON record and what etcd,
 * Consul and an xDS control plane hand over, usually valid (so decoded
 * instances get checked), now and then junk (so refusals get checked).
 */

/** Usually `good`, now and then `bad`: enough valid records to check decoded instances, enough junk to check refusals. */
export function mostly<T, U>(good: fc.Arbitrary<T>, bad: fc.Arbitrary<U>): fc.Arbitrary<T | U> {
  return fc.oneof({ weight: 8, arbitrary: good }, { weight: 1, arbitrary: bad });
}

// Random JSON-ish values around the seed record's fields, so generated records are sometimes valid.
export const text = fc.oneof(
  fc.string({ maxLength: 10 }),
  fc.constantFrom(
    '',
    'orders',
    'default',
    'v1.0.0',
    '127.0.0.1:50051',
    '[::1]:50051',
    'unix:/tmp/s',
    'http://10.0.0.1:80',
    'a b',
    'a/b',
    '10.0.0.1',
  ),
);
export const loose = fc.oneof(
  text,
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.array(text, { maxLength: 2 }),
  fc.dictionary(text, text, { maxKeys: 3 }),
);

export const seedRecord = fc.record(
  {
    service_type: mostly(fc.constant('orders'), loose),
    instance_id: mostly(fc.stringMatching(/^[a-z0-9-]{1,12}$/), loose),
    address: mostly(
      fc
        .tuple(fc.constantFrom('127.0.0.1', '10.1.2.3', 'node-1.svc', '[::1]'), fc.integer({ min: 1, max: 65535 }))
        .map(([h, p]) => `${h}:${p}`),
      fc.oneof(loose, fc.constantFrom('10.0.0.1:0', '10.0.0.1:70000', '::1:80')),
    ),
    // null: how the Rust crate writes a missing namespace or version.
    namespace: mostly(fc.constantFrom('default', 'production', 'flare-test', null), loose),
    version: mostly(fc.constantFrom('', 'v1.0.0', '2.1.3-rc.1', null), loose),
    tags: mostly(
      fc.dictionary(fc.string({ maxLength: 5 }), fc.oneof(fc.string({ maxLength: 5 }), fc.integer(), fc.boolean()), {
        maxKeys: 3,
      }),
      loose,
    ),
    metadata: mostly(
      fc.record(
        {
          region: fc.option(text),
          zone: fc.option(text),
          environment: fc.option(text),
          custom: mostly(fc.dictionary(text, text, { maxKeys: 2 }), loose),
        },
        { requiredKeys: [] },
      ),
      loose,
    ),
    healthy: mostly(fc.boolean(), loose),
    // 0 drains an instance; 100 is the crate's default.
    weight: mostly(
      fc.oneof(
        fc.integer({ min: 0, max: 200 }),
        fc.constantFrom(0, 100, 4_294_967_295),
        fc.double({ min: 0.001, max: 1e6, noNaN: true }),
      ),
      fc.oneof(fc.constantFrom(-1, -0.5), loose),
    ),
  },
  { requiredKeys: ['service_type', 'instance_id', 'address'] },
);
export const anyJson = fc.oneof({ weight: 3, arbitrary: seedRecord }, { weight: 1, arbitrary: fc.jsonValue() });

/** Bytes as a registry would hand them over: JSON of a value, or garbage. */
export const storedValue = fc.oneof(
  { weight: 3, arbitrary: anyJson.map((v) => Buffer.from(JSON.stringify(v) ?? 'null')) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b)) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 64 }).map((s) => Buffer.from(s)) },
);

/** The text of a `local` instance file: a seed record with liveness fields, or anything a registry could hand over. */
export const instanceFileText = fc.oneof(
  storedValue.map((b) => b.toString('utf8')),
  fc
    .tuple(
      seedRecord,
      fc.record(
        {
          ttl_ms: loose,
          heartbeat_at: loose,
          registered_at: loose,
          owner: fc.oneof(loose, fc.record({ token: loose, pid: loose })),
        },
        { requiredKeys: [] },
      ),
    )
    .map(([record, liveness]) => JSON.stringify({ ...record, ...liveness })),
);

/** A value stored in etcd under the grpc-naming layout (`{ Op, Addr, Metadata }`), or any JSON. */
export const grpcNamingValue = fc.oneof(
  fc.record(
    {
      Op: mostly(fc.constantFrom(0, 1), fc.oneof(fc.constant(2), loose)),
      Addr: mostly(
        fc.constantFrom('127.0.0.1:50051', '[::1]:1'),
        fc.oneof(fc.constantFrom('unix:/x', 'host:0'), loose),
      ),
      Metadata: fc.oneof(seedRecord, loose),
    },
    { requiredKeys: [] },
  ),
  fc.jsonValue(),
);

const consulMeta = fc.dictionary(
  fc.oneof(
    fc.constantFrom('namespace', 'version', 'zone', 'weight', 'tag-tier', 'tag-a_2eb', 'meta-x', 'tag-_zz', 'tag-'),
    fc.string({ maxLength: 8 }),
  ),
  fc.oneof(fc.string({ maxLength: 8 }), fc.constantFrom('0', '-1', 'NaN', '1e400', '2.5')),
  { maxKeys: 5 },
);

/** One entry of Consul's `/v1/health/service/<name>` answer, usually well-formed. */
export const consulHealthEntry = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record(
      {
        Node: mostly(
          fc.record({ Address: mostly(fc.constantFrom('127.0.0.1', '::1', '10.0.0.9'), loose) }, { requiredKeys: [] }),
          loose,
        ),
        Service: mostly(
          fc.record(
            {
              ID: mostly(fc.constantFrom('orders-1', 'orders-2'), fc.oneof(fc.constantFrom('o 2', 'a/b'), loose)),
              Service: mostly(fc.constant('orders'), loose),
              Address: mostly(
                fc.constantFrom('', '127.0.0.1', '[::1]', '::1', 'evil.example'),
                fc.oneof(fc.constantFrom('unix:/tmp/s', 'http://evil'), loose),
              ),
              Port: mostly(fc.integer({ min: 1, max: 65535 }), fc.oneof(fc.constantFrom(0, -1, 70_000), loose)),
              Meta: mostly(consulMeta, loose),
              // The Rust crate's convention: k=v tags, version= and namespace=, bare tags.
              Tags: mostly(
                fc.array(
                  fc.oneof(
                    fc.constantFrom(
                      'region=us-east-1',
                      'version=v1',
                      'namespace=prod',
                      'namespace=',
                      'canary',
                      'a=b=c',
                    ),
                    fc.string({ maxLength: 8 }),
                  ),
                  { maxLength: 4 },
                ),
                loose,
              ),
              Weights: mostly(
                fc.record({ Passing: fc.oneof(fc.integer({ min: -1, max: 10 }), loose) }, { requiredKeys: [] }),
                fc.oneof(fc.constant(null), loose),
              ),
            },
            { requiredKeys: [] },
          ),
          loose,
        ),
      },
      { requiredKeys: [] },
    ),
  },
  { weight: 1, arbitrary: fc.jsonValue() },
);

const maybe = <T>(arbitrary: fc.Arbitrary<T>) => fc.option(arbitrary, { nil: undefined });
// One bad endpoint NACKs the whole resource: keep bad fields rare, so many resources are served.
const usually = <T, U>(good: fc.Arbitrary<T>, bad: fc.Arbitrary<U>) =>
  fc.oneof({ weight: 30, arbitrary: good }, { weight: 1, arbitrary: bad });
const structValue = fc.oneof(
  fc.record({ kind: fc.constant('stringValue'), stringValue: fc.string({ maxLength: 5 }) }),
  fc.record({ kind: fc.constant('numberValue'), numberValue: fc.double() }),
  fc.record({ kind: fc.constant('boolValue'), boolValue: fc.boolean() }),
  fc.record({ kind: fc.constantFrom('structValue', 'listValue', 'nullValue') }),
);
const socket = fc.record(
  {
    protocol: usually(maybe(fc.constant('TCP')), fc.constant('UDP')),
    address: usually(
      fc.constantFrom('127.0.0.1', '10.0.0.2', '::1', 'backend.svc'),
      fc.constantFrom('', 'unix:/x', 'http://a', '[::1]', '1.2.3.4:80', 'a b'),
    ),
    port_value: usually(fc.integer({ min: 1, max: 65535 }), fc.constantFrom(0, 65536, -1)),
    port_specifier: usually(maybe(fc.constant('port_value')), fc.constant('named_port')),
  },
  { requiredKeys: ['address', 'port_value'] },
);
const lbEndpoint = fc.record(
  {
    endpoint: usually(
      fc.record(
        {
          address: usually(fc.record({ socket_address: usually(socket, fc.constant(null)) }), fc.constant(null)),
          hostname: maybe(fc.string({ maxLength: 5 })),
        },
        { requiredKeys: ['address'] },
      ),
      fc.constant(null),
    ),
    host_identifier: maybe(fc.constantFrom('endpoint', 'endpoint_name')),
    health_status: fc.oneof(
      { weight: 4, arbitrary: maybe(fc.constantFrom('UNKNOWN', 'HEALTHY', '')) },
      { weight: 1, arbitrary: fc.constantFrom('UNHEALTHY', 'DRAINING', 'TIMEOUT', 'DEGRADED') },
    ),
    metadata: maybe(
      fc.record({
        filter_metadata: fc.dictionary(
          fc.constantFrom('envoy.lb', 'x', 'a'),
          fc.record({ fields: fc.dictionary(fc.string({ maxLength: 4 }), structValue, { maxKeys: 3 }) }),
        ),
      }),
    ),
    load_balancing_weight: maybe(
      fc.oneof(
        fc.record(
          { value: usually(fc.integer({ min: 1, max: 1_000 }), fc.constantFrom(0, -1, 2 ** 32)) },
          { requiredKeys: [] },
        ),
        fc.constant(null),
      ),
    ),
  },
  { requiredKeys: ['endpoint'] },
);

/** An xDS ClusterLoadAssignment as grpc-js decodes it, usually servable. */
export const loadAssignmentMessage: fc.Arbitrary<ClusterLoadAssignmentMessage> = fc.record(
  {
    cluster_name: fc.string({ maxLength: 6 }),
    endpoints: fc.array(
      fc.record(
        {
          locality: maybe(
            fc.record(
              {
                region: fc.string({ maxLength: 3 }),
                zone: fc.string({ maxLength: 3 }),
                sub_zone: fc.string({ maxLength: 3 }),
              },
              { requiredKeys: [] },
            ),
          ),
          lb_endpoints: fc.array(lbEndpoint, { maxLength: 4 }),
          load_balancing_weight: maybe(fc.record({ value: fc.integer({ min: 0, max: 10_000 }) }, { requiredKeys: [] })),
          priority: maybe(fc.integer({ min: 0, max: 3 })),
        },
        { requiredKeys: [] },
      ),
      { maxLength: 4 },
    ),
  },
  { requiredKeys: [] },
);

/** An xDS Cluster as grpc-js decodes it: EDS, inline endpoints, or a type switchyard does not serve. */
export const clusterMessage: fc.Arbitrary<ClusterMessage> = fc.record(
  {
    name: fc.string({ maxLength: 6 }),
    cluster_discovery_type: maybe(fc.constantFrom('type', 'cluster_type')),
    type: maybe(fc.constantFrom('STATIC', 'STRICT_DNS', 'LOGICAL_DNS', 'EDS', 'ORIGINAL_DST')),
    cluster_type: maybe(fc.record({ name: fc.string({ maxLength: 5 }) }, { requiredKeys: [] })),
    eds_cluster_config: maybe(
      fc.record(
        {
          eds_config: maybe(
            fc.record(
              { config_source_specifier: maybe(fc.constantFrom('ads', 'self', 'path', 'api_config_source')) },
              { requiredKeys: [] },
            ),
          ),
          service_name: maybe(fc.string({ maxLength: 5 })),
        },
        { requiredKeys: [] },
      ),
    ),
    load_assignment: usually(loadAssignmentMessage, fc.constant(undefined)),
  },
  { requiredKeys: [] },
);
