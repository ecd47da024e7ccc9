import fc from 'fast-check';
import { isIP } from 'node:net';
import { expect } from 'vitest';
import { DiscoveryError, parseAddress, toSeedRecord, type ServiceInstance } from '../../../lib/core/index.js';
import type { fromHealthEntry } from '../../../lib/registry/consul/consul-service-codec.js';
import type { DnsLookup, resolveService } from '../../../lib/registry/dns/dns-resolution.js';
import type { DnsSettings } from '../../../lib/registry/dns/dns.schema.js';
import type { DecodeResult, EtcdKeyLayout } from '../../../lib/registry/etcd/etcd-key-layout.js';
import type { decodeInstanceFile } from '../../../lib/registry/local/instance-file.js';
import type { ClusterMessage, parseCluster } from '../../../lib/registry/mesh/xds-cluster.js';
import {
  XdsResourceError,
  type ClusterLoadAssignmentMessage,
  type MeshLoadAssignment,
  type parseLoadAssignment,
} from '../../../lib/registry/mesh/xds-load-assignment.js';
import { attempt, fuzzParameters, isCrash } from './fuzz-settings.js';
import {
  anyJson,
  clusterMessage,
  consulHealthEntry,
  grpcNamingValue,
  instanceFileText,
  loadAssignmentMessage,
  storedValue,
} from './record-arbitraries.js';

/*
 * The registry record decoders' properties, each taking the decoder it
 * checks as an argument: record-decoders.fuzz.spec.ts runs them on the real
 * decoders, fuzz-self-check.spec.ts on deliberately broken copies (each
 * property must then fail). Every decoder call runs alone inside
 * `attempt()`; assertions run on what it returned, outside any `try`.
 * (One property per decoder, together in one file of a little over 300
 * lines: they share the instance check and read best side by side.)
 */

/** Measured counts a property reports (printed in RELIABILITY.md). */
export type Details = Record<string, unknown>;
/** fast-check settings a caller may override (a self-check runs briefly, without shrinking). */
export type Overrides = Partial<fc.Parameters<unknown>>;

/** Every decoded instance is usable: a valid address, weight >= 0 (0: drained), the expected service. */
export function checkInstance(instance: ServiceInstance, service?: string): void {
  expect(parseAddress(instance.address)).toEqual({ host: instance.host, port: instance.port });
  expect(Number.isFinite(instance.weight) && instance.weight >= 0).toBe(true);
  expect(instance.id.length).toBeGreaterThan(0);
  expect(Object.isFrozen(instance)).toBe(true);
  if (service !== undefined) expect(instance.service).toBe(service);
}

/** A seed-record refusal: a DiscoveryError (InvalidInstanceError, InvalidAddressError). */
const seedRefusal = (error: unknown) => error instanceof DiscoveryError;

export function seedRecordProperty(
  decode: (record: unknown) => ServiceInstance,
  details: Details,
  overrides: Overrides = {},
): void {
  let decoded = 0;
  fc.assert(
    // Through JSON, as every registry hands records over.
    fc.property(
      anyJson.map((v) => JSON.parse(JSON.stringify(v) ?? 'null') as unknown),
      (record) => {
        const outcome = attempt(() => decode(record), seedRefusal, 'fromSeedRecord');
        if (!outcome.ok) return;
        decoded++;
        checkInstance(outcome.value);
        const again = attempt(
          () => decode(JSON.parse(JSON.stringify(toSeedRecord(outcome.value)))),
          seedRefusal,
          'fromSeedRecord',
        );
        expect(again).toEqual({ ok: true, value: outcome.value });
      },
    ),
    fuzzParameters(0xdec1, 1_500, overrides),
  );
  details.decoded = decoded;
  expect(decoded).toBeGreaterThan(0);
}

export function instanceFileProperty(
  decode: typeof decodeInstanceFile,
  details: Details,
  overrides: Overrides = {},
): void {
  let decoded = 0;
  let refused = 0;
  fc.assert(
    fc.property(instanceFileText, (fileText) => {
      const outcome = attempt(
        () => decode(fileText, { mtimeMs: 1_700_000_000_000, defaultTtlMs: 90_000 }),
        (error) => !isCrash(error),
        'decodeInstanceFile',
      );
      if (!outcome.ok) {
        refused++;
        expect(outcome.refusal.message.length).toBeGreaterThan(0);
        return;
      }
      decoded++;
      const entry = outcome.value;
      checkInstance(entry.instance);
      expect(entry.ttlMs).toBeGreaterThan(0);
      expect(Number.isFinite(entry.expiresAt)).toBe(true);
      expect(entry.expiresAt).toBe(entry.heartbeatAt + entry.ttlMs);
    }),
    fuzzParameters(0xdec2, 1_000, overrides),
  );
  details.counts = { decoded, refused };
  expect(decoded).toBeGreaterThan(0);
}

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

/**
 * `layouts`: two instances of one layout (different prefixes / separators).
 * A decoded instance is in the namespace asked for, unless the layout
 * reads every namespace there (the seed layout's default namespace, as the
 * Rust crate does) or has none (grpc-naming).
 */
export function etcdValueProperty(
  layouts: readonly EtcdKeyLayout[],
  details: Details,
  overrides: Overrides = {},
): void {
  const name = layouts[0].name;
  const counts = { instance: 0, absent: 0, skip: 0 };
  // The stored record and the key it sits under (usually its own id, sometimes another).
  const stored = fc
    .tuple(
      fc.oneof(anyJson, grpcNamingValue),
      fc.oneof(fc.constant(undefined), fc.stringMatching(/^[a-z0-9.:-]{0,12}$/)),
    )
    .map(([record, otherId]) => {
      const own = (record as { instance_id?: unknown; Addr?: unknown } | null)?.[
        name === 'grpc-naming' ? 'Addr' : 'instance_id'
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
      fc.nat(),
      ({ value, id }, layout, namespace, which) => {
        const prefixes = layout.prefixesOf('orders', namespace);
        const key = `${prefixes[which % prefixes.length]}${id}`;
        // decode never throws: every exception fails the property.
        const outcome = attempt(
          () => layout.decode(key, value, 'orders', namespace),
          () => false,
          `${name} decode`,
        );
        if (!outcome.ok) return;
        // grpc-naming keys carry no namespace: a record's own Metadata.namespace stands, and the watch's query filters it.
        const keepsAny = name === 'grpc-naming' || layout.readsEveryNamespace(namespace);
        counts[checkDecode(outcome.value, 'orders', keepsAny ? undefined : namespace)]++;
      },
    ),
    fuzzParameters(0xdec3, 1_000, overrides),
  );
  details.counts = counts;
  expect(counts.instance).toBeGreaterThan(20);
}

export function consulEntryProperty(decode: typeof fromHealthEntry, details: Details, overrides: Overrides = {}): void {
  let decoded = 0;
  fc.assert(
    fc.property(consulHealthEntry, (entry) => {
      const outcome = attempt(
        () => decode(entry),
        (error) => seedRefusal(error) || (!isCrash(error) && /^health entry/.test((error as Error).message)),
        'fromHealthEntry',
      );
      if (!outcome.ok) return;
      decoded++;
      checkInstance(outcome.value);
    }),
    fuzzParameters(0xdec4, 1_500, overrides),
  );
  details.decoded = decoded;
  expect(decoded).toBeGreaterThan(100);
}

export async function dnsAnswersProperty(
  resolve: typeof resolveService,
  settings: DnsSettings,
  details: Details,
  overrides: Overrides = {},
): Promise<void> {
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
      // resolveService never throws: a rejection fails the property.
      const result = await resolve(lookup, settings, 'orders', 'default');
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
    fuzzParameters(0xdec7, 600, overrides),
  );
  details.kinds = kinds;
  expect(kinds.records).toBeGreaterThan(0);
  expect(kinds.unreachable).toBeGreaterThan(0);
}

/** The xDS parsers a mesh registry uses. */
export interface XdsParsers {
  parseLoadAssignment: typeof parseLoadAssignment;
  parseCluster: typeof parseCluster;
}

type XdsInput = { kind: 'eds'; m: ClusterLoadAssignmentMessage } | { kind: 'cds'; m: ClusterMessage };

export function xdsResourcesProperty(parsers: XdsParsers, details: Details, overrides: Overrides = {}): void {
  const counts = { served: 0, nacked: 0, endpoints: 0 };
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
  const input: fc.Arbitrary<XdsInput> = fc.oneof(
    loadAssignmentMessage.map((m) => ({ kind: 'eds' as const, m })),
    clusterMessage.map((m) => ({ kind: 'cds' as const, m })),
  );
  fc.assert(
    fc.property(input, (resource) => {
      const outcome = attempt(
        () =>
          resource.kind === 'eds'
            ? { kind: 'eds' as const, assignment: parsers.parseLoadAssignment(resource.m) }
            : { kind: 'cds' as const, cluster: parsers.parseCluster(resource.m) },
        (error) => error instanceof XdsResourceError,
        'xDS parsing',
      );
      if (!outcome.ok) {
        expect(outcome.refusal.message.length).toBeGreaterThan(0);
        counts.nacked++;
        return;
      }
      const parsed = outcome.value;
      if (parsed.kind === 'eds') checkAssignment(parsed.assignment, resource.m as ClusterLoadAssignmentMessage);
      else {
        expect(['eds', 'inline', 'unsupported']).toContain(parsed.cluster.kind);
        if (parsed.cluster.kind === 'inline')
          checkAssignment(parsed.cluster.assignment, (resource.m as ClusterMessage).load_assignment!);
      }
      counts.served++;
    }),
    fuzzParameters(0xdec8, 1_000, overrides),
  );
  details.counts = counts;
  expect(counts.endpoints).toBeGreaterThan(50);
  expect(counts.nacked).toBeGreaterThan(0);
}
