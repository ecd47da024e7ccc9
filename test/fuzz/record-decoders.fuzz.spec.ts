import fc from 'fast-check';
import { isIP } from 'node:net';
import { describe, expect } from 'vitest';
import {
  DiscoveryError,
  fromSeedRecord,
  parseAddress,
  toSeedRecord,
  type ServiceInstance,
} from '../../lib/core/index.js';
import { decodeMetaKey, encodeMetaKey, fromHealthEntry } from '../../lib/registry/consul/consul-service-codec.js';
import { resolveService, type DnsLookup } from '../../lib/registry/dns/dns-resolution.js';
import { dnsSettings as resolveDnsSettings } from '../integration/dns/dns-test-kit.js';
import { GrpcNamingLayout, SeedLayout, type DecodeResult } from '../../lib/registry/etcd/etcd-key-layout.js';
import { decodeInstanceFile } from '../../lib/registry/local/instance-file.js';
import { parseCluster, type ClusterMessage } from '../../lib/registry/mesh/xds-cluster.js';
import {
  parseLoadAssignment,
  XdsResourceError,
  type ClusterLoadAssignmentMessage,
  type MeshLoadAssignment,
} from '../../lib/registry/mesh/xds-load-assignment.js';
import { reliabilityTest, ResultsFile, type ResultSpec } from '../faults/support/reliability-results.js';
import { fuzzParameters, isCrash } from './support/fuzz-settings.js';

const results = new ResultsFile('fuzz-record-decoders');
const spec = (scenario: string, title: string, backend: string, asserted: string): ResultSpec => ({
  suite: 'fuzz',
  scenario,
  title,
  backend,
  asserted,
});

/** No lone surrogates (String#isWellFormed, which the ES2023 lib typings lack). */
function isWellFormed(text: string): boolean {
  return !/[\uD800-\uDFFF]/.test(text.replace(/[\uD800-\uDBFF][\uDC00-\uDFFF]/g, ''));
}

/** Every decoded instance is usable: a valid address, weight > 0, the expected service. */
function checkInstance(instance: ServiceInstance, service?: string): void {
  expect(parseAddress(instance.address)).toEqual({ host: instance.host, port: instance.port });
  expect(Number.isFinite(instance.weight) && instance.weight > 0).toBe(true);
  expect(instance.id.length).toBeGreaterThan(0);
  expect(Object.isFrozen(instance)).toBe(true);
  if (service !== undefined) expect(instance.service).toBe(service);
}

/** Runs a decoder that may throw; a refusal must be a DiscoveryError (or the decoder's documented plain Error), never a crash. */
function refusalOrInstance(decode: () => ServiceInstance, documented: RegExp = /^$/): ServiceInstance | undefined {
  try {
    return decode();
  } catch (error) {
    if (error instanceof DiscoveryError) return undefined;
    if (!isCrash(error) && documented.test((error as Error).message)) return undefined;
    throw new Error(`decoder crashed with ${(error as Error)?.constructor?.name}: ${(error as Error)?.message}`, {
      cause: error,
    });
  }
}

// Random JSON-ish values around the seed record's fields, so generated records are sometimes valid.
const text = fc.oneof(
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
const loose = fc.oneof(
  text,
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.array(text, { maxLength: 2 }),
  fc.dictionary(text, text, { maxKeys: 3 }),
);
/** Usually `good`, now and then `bad`: enough valid records to check decoded instances, enough junk to check refusals. */
function mostly<T, U>(good: fc.Arbitrary<T>, bad: fc.Arbitrary<U>): fc.Arbitrary<T | U> {
  return fc.oneof({ weight: 8, arbitrary: good }, { weight: 1, arbitrary: bad });
}
const seedRecord = fc.record(
  {
    service_type: mostly(fc.constant('orders'), loose),
    instance_id: mostly(fc.stringMatching(/^[a-z0-9-]{1,12}$/), loose),
    address: mostly(
      fc
        .tuple(fc.constantFrom('127.0.0.1', '10.1.2.3', 'node-1.svc', '[::1]'), fc.integer({ min: 1, max: 65535 }))
        .map(([h, p]) => `${h}:${p}`),
      fc.oneof(loose, fc.constantFrom('10.0.0.1:0', '10.0.0.1:70000', '::1:80')),
    ),
    namespace: mostly(fc.constantFrom('default', 'production'), loose),
    version: mostly(fc.constantFrom('', 'v1.0.0', '2.1.3-rc.1'), loose),
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
    weight: mostly(
      fc.oneof(fc.integer({ min: 1, max: 100 }), fc.double({ min: 0.001, max: 1e6, noNaN: true })),
      fc.oneof(fc.constantFrom(0, -1), loose),
    ),
  },
  { requiredKeys: ['service_type', 'instance_id', 'address'] },
);
const anyJson = fc.oneof({ weight: 3, arbitrary: seedRecord }, { weight: 1, arbitrary: fc.jsonValue() });

/** Bytes as a registry would hand them over: JSON of a value, or garbage. */
const storedValue = fc.oneof(
  { weight: 3, arbitrary: anyJson.map((v) => Buffer.from(JSON.stringify(v) ?? 'null')) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b)) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 64 }).map((s) => Buffer.from(s)) },
);

function checkDecode(
  result: DecodeResult,
  service: string,
  namespace: string | undefined,
): 'instance' | 'absent' | 'skip' {
  if ('instance' in result) {
    checkInstance(result.instance, service);
    if (namespace !== undefined) expect(result.instance.namespace).toBe(namespace);
    return 'instance';
  }
  if ('absent' in result) return 'absent';
  expect(typeof result.skip).toBe('string');
  expect(result.skip.length).toBeGreaterThan(0);
  return 'skip';
}

describe('fuzz: registry record decoders', () => {
  reliabilityTest(
    results,
    spec(
      'decode-seed-record',
      'seed JSON record',
      'local',
      'any JSON value decodes to a valid instance or an InvalidInstanceError / InvalidAddressError; valid records round-trip through toSeedRecord',
    ),
    (details) => {
      let decoded = 0;
      fc.assert(
        // Through JSON, as every registry hands records over.
        fc.property(
          anyJson.map((v) => JSON.parse(JSON.stringify(v) ?? 'null') as unknown),
          (record) => {
            const instance = refusalOrInstance(() => fromSeedRecord(record));
            if (!instance) return;
            decoded++;
            checkInstance(instance);
            expect(fromSeedRecord(JSON.parse(JSON.stringify(toSeedRecord(instance))))).toEqual(instance);
          },
        ),
        fuzzParameters(0xdec1, 1_500),
      );
      details.decoded = decoded;
      expect(decoded).toBeGreaterThan(0);
    },
  );

  reliabilityTest(
    results,
    spec(
      'decode-instance-file',
      'instance file (local backend)',
      'local',
      'any file content decodes to an entry with a finite expiry, or is refused with a reason (never a crash)',
    ),
    () => {
      const content = fc.oneof(
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
      fc.assert(
        fc.property(content, (fileText) => {
          try {
            const entry = decodeInstanceFile(fileText, { mtimeMs: 1_700_000_000_000, defaultTtlMs: 90_000 });
            checkInstance(entry.instance);
            expect(Number.isFinite(entry.expiresAt)).toBe(true);
            expect(entry.ttlMs).toBeGreaterThan(0);
          } catch (error) {
            if (isCrash(error)) throw error;
            expect((error as Error).message.length).toBeGreaterThan(0);
          }
        }),
        fuzzParameters(0xdec2, 1_000),
      );
    },
  );

  for (const layouts of [
    [new SeedLayout('', '/'), new SeedLayout('/sy', '.')],
    [new GrpcNamingLayout(''), new GrpcNamingLayout('/naming')],
  ]) {
    const name = layouts[0].name;
    reliabilityTest(
      results,
      spec(
        `decode-etcd-${name}`,
        `etcd value (${name} layout)`,
        'etcd',
        'any stored bytes under a service prefix decode to an instance of that service and namespace, a tombstone, or a skip with a reason; decode never throws',
      ),
      (details) => {
        const counts = { instance: 0, absent: 0, skip: 0 };
        const grpcNaming = fc.oneof(
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
        // The stored record and the key it sits under (usually its own id, sometimes another).
        const stored = fc
          .tuple(
            fc.oneof(anyJson, grpcNaming),
            fc.oneof(fc.constant(undefined), fc.stringMatching(/^[a-z0-9.:-]{0,12}$/)),
          )
          .map(([record, otherId]) => {
            const own = (record as { instance_id?: unknown; Addr?: unknown } | null)?.[
              name === 'seed' ? 'instance_id' : 'Addr'
            ];
            return {
              value: Buffer.from(JSON.stringify(record) ?? 'null'),
              id: otherId ?? (typeof own === 'string' ? own : ''),
            };
          });
        fc.assert(
          fc.property(
            fc.oneof(
              { weight: 3, arbitrary: stored },
              { weight: 1, arbitrary: storedValue.map((value) => ({ value, id: 'x' })) },
            ),
            fc.constantFrom(...layouts),
            fc.constantFrom('default', 'production'),
            ({ value, id }, layout, namespace) => {
              const key = `${layout.prefixOf('orders', namespace)}${id}`;
              let result: DecodeResult;
              try {
                result = layout.decode(key, value, 'orders', namespace);
              } catch (error) {
                throw new Error(
                  `${name} decode threw ${(error as Error)?.constructor?.name}: ${(error as Error).message} for ${value.toString('utf8').slice(0, 200)}`,
                  { cause: error },
                );
              }
              // grpc-naming keys carry no namespace: a record's own Metadata.namespace stands, and the watch's query filters it.
              counts[checkDecode(result, 'orders', name === 'seed' ? namespace : undefined)]++;
            },
          ),
          fuzzParameters(0xdec3, 1_000),
        );
        details.counts = counts;
        expect(counts.instance).toBeGreaterThan(20);
      },
    );
  }

  reliabilityTest(
    results,
    spec(
      'decode-consul-entry',
      'Consul health entry',
      'consul',
      'any /v1/health/service entry decodes to a valid instance or is refused with an InvalidInstanceError / InvalidAddressError / "health entry" error',
    ),
    (details) => {
      let decoded = 0;
      const meta = fc.dictionary(
        fc.oneof(
          fc.constantFrom(
            'namespace',
            'version',
            'zone',
            'weight',
            'tag-tier',
            'tag-a_2eb',
            'meta-x',
            'tag-_zz',
            'tag-',
          ),
          fc.string({ maxLength: 8 }),
        ),
        fc.oneof(fc.string({ maxLength: 8 }), fc.constantFrom('0', '-1', 'NaN', '1e400', '2.5')),
        { maxKeys: 5 },
      );
      const entry = fc.oneof(
        {
          weight: 4,
          arbitrary: fc.record(
            {
              Node: mostly(
                fc.record(
                  { Address: mostly(fc.constantFrom('127.0.0.1', '::1', '10.0.0.9'), loose) },
                  { requiredKeys: [] },
                ),
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
                    Meta: mostly(meta, loose),
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
      fc.assert(
        fc.property(entry, (e) => {
          const instance = refusalOrInstance(() => fromHealthEntry(e), /^health entry/);
          if (!instance) return;
          decoded++;
          checkInstance(instance);
        }),
        fuzzParameters(0xdec4, 1_500),
      );
      details.decoded = decoded;
      expect(decoded).toBeGreaterThan(100);
    },
  );

  reliabilityTest(
    results,
    spec(
      'decode-consul-meta-keys',
      'Consul Meta key encoding',
      'consul',
      "every well-formed Unicode key encodes to Consul's Meta alphabet and decodes back to itself; other text decodes to undefined, never to a wrong key",
    ),
    () => {
      fc.assert(
        fc.property(fc.string({ unit: 'binary', maxLength: 30 }).filter(isWellFormed), (key) => {
          const encoded = encodeMetaKey(key);
          expect(encoded).toMatch(/^[A-Za-z0-9_-]*$/);
          expect(decodeMetaKey(encoded)).toBe(key);
        }),
        fuzzParameters(0xdec5, 1_000),
      );
      fc.assert(
        fc.property(fc.string({ maxLength: 20 }), (encoded) => {
          const decoded = decodeMetaKey(encoded);
          if (decoded !== undefined) expect(encodeMetaKey(decoded)).toBe(encoded);
        }),
        fuzzParameters(0xdec6, 1_000),
      );
    },
  );

  reliabilityTest(
    results,
    spec(
      'decode-dns-answers',
      'DNS answers (SRV, A, AAAA)',
      'dns',
      'any SRV/A/AAAA answer, or DNS error, becomes valid instances from the lowest usable priority, "none" or "unreachable"; resolveService never throws',
    ),
    async (details) => {
      const settings = resolveDnsSettings({ backendConfig: { domain: 'svc.test' }, refreshIntervalMs: 30_000 });
      const dnsError = fc
        .constantFrom('ENOTFOUND', 'ENODATA', 'ECONNREFUSED', 'ETIMEOUT', 'ESERVFAIL', 'EBADRESP')
        .map((code) => Object.assign(new Error(`query ${code}`), { code }));
      const target = fc.oneof(
        fc.constantFrom('node1.svc.test', 'node2.svc.test', '.', '', '10.0.0.7', '::1', 'missing.svc.test'),
        fc.string({ maxLength: 6 }),
      );
      const srv = fc.record({
        name: target,
        port: fc.integer({ min: 0, max: 65535 }),
        priority: fc.integer({ min: 0, max: 3 }),
        weight: fc.integer({ min: 0, max: 65535 }),
      });
      const ipv4 = fc.record({ address: fc.ipV4(), ttl: fc.integer({ min: 0, max: 3600 }) });
      const ipv6 = fc.record({ address: fc.ipV6(), ttl: fc.integer({ min: 0, max: 3600 }) });
      const answers = fc.record({
        srv: fc.oneof(fc.array(srv, { maxLength: 6 }), dnsError),
        a: fc.dictionary(target, fc.oneof(fc.array(ipv4, { maxLength: 3 }), dnsError), { maxKeys: 4 }),
        aaaa: fc.dictionary(target, fc.oneof(fc.array(ipv6, { maxLength: 2 }), dnsError), { maxKeys: 4 }),
      });
      const kinds = { records: 0, none: 0, unreachable: 0 };
      await fc.assert(
        fc.asyncProperty(answers, async ({ srv: srvAnswer, a, aaaa }) => {
          const answer = <T>(value: T | Error | undefined): Promise<T> =>
            value instanceof Error
              ? Promise.reject(value)
              : value === undefined
                ? Promise.reject(Object.assign(new Error('ENOTFOUND'), { code: 'ENOTFOUND' }))
                : Promise.resolve(value);
          const lookup = {
            resolveSrv: () => answer(srvAnswer),
            resolve4: (name: string) => answer(Object.hasOwn(a, name) ? a[name] : undefined),
            resolve6: (name: string) => answer(Object.hasOwn(aaaa, name) ? aaaa[name] : undefined),
          } as unknown as DnsLookup;
          const result = await resolveService(lookup, settings, 'orders', 'default');
          kinds[result.kind]++;
          if (result.kind !== 'records') return;
          expect(result.instances.length).toBeGreaterThan(0);
          const records = Array.isArray(srvAnswer) ? srvAnswer : [];
          const priorities = new Set(result.instances.map((i) => i.metadata.custom['dns.priority']));
          expect(priorities.size).toBe(1);
          for (const instance of result.instances) {
            checkInstance(instance, 'orders');
            expect(instance.namespace).toBe('default');
            // The port and priority come from an SRV record with a usable target.
            expect(
              records.some(
                (r) =>
                  r.port === instance.port &&
                  String(r.priority) === instance.metadata.custom['dns.priority'] &&
                  r.name !== '.' &&
                  r.name !== '',
              ),
            ).toBe(true);
          }
          // Lower priorities win: no SRV group with a smaller priority resolved to any address.
          const chosen = Number([...priorities][0]);
          for (const r of records) {
            if (r.priority >= chosen || r.name === '' || r.name === '.' || r.port === 0) continue;
            const resolvable =
              isIP(r.name) !== 0 ? true : [a[r.name], aaaa[r.name]].some((x) => Array.isArray(x) && x.length > 0);
            expect(resolvable).toBe(false);
          }
        }),
        fuzzParameters(0xdec7, 600),
      );
      details.kinds = kinds;
      expect(kinds.records).toBeGreaterThan(0);
      expect(kinds.unreachable).toBeGreaterThan(0);
    },
  );

  reliabilityTest(
    results,
    spec(
      'decode-xds-resources',
      'xDS resources (Cluster, ClusterLoadAssignment)',
      'mesh',
      'any decoded Cluster or ClusterLoadAssignment gives served endpoints with valid addresses and weights > 0 from one priority, or an XdsResourceError (NACK); never another exception',
    ),
    (details) => {
      const counts = { served: 0, nacked: 0, endpoints: 0 };
      const maybe = <T>(arbitrary: fc.Arbitrary<T>) => fc.option(arbitrary, { nil: undefined });
      // One bad endpoint NACKs the whole resource: keep bad fields rare, so many resources are served.
      const usually = <T, U>(good: fc.Arbitrary<T>, bad: fc.Arbitrary<U>) =>
        fc.oneof({ weight: 30, arbitrary: good }, { weight: 1, arbitrary: bad });
      const value = fc.oneof(
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
                fc.record({ fields: fc.dictionary(fc.string({ maxLength: 4 }), value, { maxKeys: 3 }) }),
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
      const assignment: fc.Arbitrary<ClusterLoadAssignmentMessage> = fc.record(
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
                load_balancing_weight: maybe(
                  fc.record({ value: fc.integer({ min: 0, max: 10_000 }) }, { requiredKeys: [] }),
                ),
                priority: maybe(fc.integer({ min: 0, max: 3 })),
              },
              { requiredKeys: [] },
            ),
            { maxLength: 4 },
          ),
        },
        { requiredKeys: [] },
      );
      const cluster: fc.Arbitrary<ClusterMessage> = fc.record(
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
          load_assignment: usually(assignment, fc.constant(undefined)),
        },
        { requiredKeys: [] },
      );
      const checkAssignment = (result: MeshLoadAssignment, message: ClusterLoadAssignmentMessage) => {
        counts.endpoints += result.endpoints.length;
        for (const e of result.endpoints) {
          expect(parseAddress(e.address)).toEqual({ host: e.host, port: e.port });
          expect(Number.isFinite(e.weight) && e.weight > 0).toBe(true);
        }
        if (result.endpoints.length === 0) return;
        // Served endpoints come from one priority: the lowest one holding a served endpoint.
        const priorities = new Set(
          (message.endpoints ?? [])
            .filter((g) =>
              (g.lb_endpoints ?? []).some((lb) =>
                result.endpoints.some((e) => e.port === lb.endpoint?.address?.socket_address?.port_value),
              ),
            )
            .map((g) => g.priority ?? 0),
        );
        expect(priorities.size).toBeGreaterThan(0);
      };
      fc.assert(
        fc.property(
          fc.oneof(
            assignment.map((m) => ({ kind: 'eds' as const, m })),
            cluster.map((m) => ({ kind: 'cds' as const, m })),
          ),
          (input) => {
            try {
              if (input.kind === 'eds') checkAssignment(parseLoadAssignment(input.m), input.m);
              else {
                const parsed = parseCluster(input.m);
                expect(['eds', 'inline', 'unsupported']).toContain(parsed.kind);
                if (parsed.kind === 'inline') checkAssignment(parsed.assignment, input.m.load_assignment!);
              }
              counts.served++;
            } catch (error) {
              if (!(error instanceof XdsResourceError))
                throw new Error(
                  `xDS parsing threw ${(error as Error)?.constructor?.name}: ${(error as Error)?.message}`,
                  { cause: error },
                );
              expect(error.message.length).toBeGreaterThan(0);
              counts.nacked++;
            }
          },
        ),
        fuzzParameters(0xdec8, 1_000),
      );
      details.counts = counts;
      expect(counts.endpoints).toBeGreaterThan(50);
      expect(counts.nacked).toBeGreaterThan(0);
    },
  );
});
