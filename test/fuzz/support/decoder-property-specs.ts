import type { ResultSpec } from '../../faults/support/reliability-results.js';

const spec = (scenario: string, title: string, backend: string, asserted: string): ResultSpec => ({
  suite: 'fuzz',
  scenario,
  title,
  backend,
  asserted,
});

/**
 * The record decoders' properties as RELIABILITY.md rows: the fuzz run and
 * its self-check (the same property on a broken decoder) share the row id.
 */
export const DECODER_PROPERTIES = {
  seedRecord: spec(
    'decode-seed-record',
    'seed JSON record',
    'local',
    'any JSON value decodes to a valid instance or an InvalidInstanceError / InvalidAddressError; valid records round-trip through toSeedRecord',
  ),
  instanceFile: spec(
    'decode-instance-file',
    'instance file (local backend)',
    'local',
    'any file content decodes to a valid instance with a TTL > 0 and a finite expiry (heartbeat + TTL), or is refused with a reason (never a crash)',
  ),
  etcdSeed: spec(
    'decode-etcd-seed',
    "etcd value (seed layout, the Rust crate's)",
    'etcd',
    "any stored bytes under one of a query's prefixes decode to an instance of that service (and namespace, unless the default namespace reads every one, as the crate does), nothing for the query, or a skip with a reason; decode never throws",
  ),
  etcdSeedSlash: spec(
    'decode-etcd-seed-slash',
    'etcd value (seed-slash layout)',
    'etcd',
    'any stored bytes under a service prefix decode to an instance of that service and namespace, a tombstone, or a skip with a reason; decode never throws',
  ),
  crateRecord: spec(
    'encode-etcd-seed-crate-record',
    'etcd value written in the seed layout',
    'etcd',
    "every instance the seed layout accepts encodes to the Rust crate's record (its fields in order, types, nulls, SocketAddr, u32 weight, compact JSON) and decodes back to the same instance",
  ),
  etcdGrpcNaming: spec(
    'decode-etcd-grpc-naming',
    'etcd value (grpc-naming layout)',
    'etcd',
    'any stored bytes under a service prefix decode to an instance of that service, a tombstone, or a skip with a reason; decode never throws',
  ),
  consulEntry: spec(
    'decode-consul-entry',
    'Consul health entry',
    'consul',
    'any /v1/health/service entry decodes to a valid instance or is refused with an InvalidInstanceError / InvalidAddressError / "health entry" error',
  ),
  consulMetaKeys: spec(
    'decode-consul-meta-keys',
    'Consul Meta key encoding',
    'consul',
    "every well-formed Unicode key encodes to Consul's Meta alphabet and decodes back to itself; other text decodes to undefined, never to a wrong key",
  ),
  dnsAnswers: spec(
    'decode-dns-answers',
    'DNS answers (SRV, A, AAAA)',
    'dns',
    'any SRV/A/AAAA answer, or DNS error, becomes valid instances from the lowest usable priority, "none" or "unreachable"; resolveService never throws',
  ),
  xdsResources: spec(
    'decode-xds-resources',
    'xDS resources (Cluster, ClusterLoadAssignment)',
    'mesh',
    'any decoded Cluster or ClusterLoadAssignment gives served endpoints with valid addresses and weights > 0 from one priority, or an XdsResourceError (NACK); never another exception',
  ),
} as const;
