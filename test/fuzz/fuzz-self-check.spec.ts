import { describe, expect } from 'vitest';
import { fromSeedRecord, type ServiceInstance } from '../../lib/core/index.js';
import { fromHealthEntry } from '../../lib/registry/consul/consul-service-codec.js';
import { resolveService } from '../../lib/registry/dns/dns-resolution.js';
import { dnsSettings as resolveDnsSettings } from '../integration/dns/dns-test-kit.js';
import { GrpcNamingLayout, type EtcdKeyLayout } from '../../lib/registry/etcd/etcd-key-layout.js';
import { SeedLayout, SeedSlashLayout, toCrateRecord } from '../../lib/registry/etcd/etcd-seed-layouts.js';
import { decodeInstanceFile } from '../../lib/registry/local/instance-file.js';
import { parseCluster } from '../../lib/registry/mesh/xds-cluster.js';
import { parseLoadAssignment } from '../../lib/registry/mesh/xds-load-assignment.js';
import { reliabilityTest, ResultsFile, type ResultSpec } from '../faults/support/reliability-results.js';
import { DECODER_PROPERTIES } from './support/decoder-property-specs.js';
import { crateRecordProperty } from './support/crate-record-property.js';
import {
  consulEntryProperty,
  dnsAnswersProperty,
  etcdValueProperty,
  instanceFileProperty,
  seedRecordProperty,
  xdsResourcesProperty,
  type Overrides,
} from './support/record-decoder-properties.js';

/*
 * A property that cannot fail proves nothing. Each decoder property runs
 * here once more on a deliberately broken copy of its decoder (the real
 * decoder, with its answer corrupted the way a bug would); the property must
 * report a failure. The first such case the issue found: assertions inside
 * a `try` whose `catch` took a failed `expect` for a refusal, so an instance
 * file decoder returning `ttlMs = -1` and `expiresAt = NaN` still "passed".
 */
const results = new ResultsFile('fuzz-self-check');
/** Stop at the first counterexample (no shrinking): the failure is what this checks, not its smallest input. */
const brief: Overrides = { endOnFailure: true };

const selfCheck = (row: ResultSpec, broken: string): ResultSpec => ({
  ...row,
  scenario: `${row.scenario}/self-check`,
  title: `self-check: ${row.title}`,
  asserted: `the property fails when the decoder ${broken}`,
});

/** Runs `property` and returns what it threw (undefined when it passed). */
async function failureOf(property: () => unknown): Promise<Error | undefined> {
  try {
    await property();
  } catch (error) {
    return error as Error;
  }
  return undefined;
}

/** The property reported a failed assertion on a counterexample (not a crash of the harness). */
async function expectPropertyFails(property: () => unknown, details: Record<string, unknown>): Promise<void> {
  const failure = await failureOf(property);
  expect(failure, 'the property passed on a broken decoder').toBeInstanceOf(Error);
  expect(failure!.message).toMatch(/^Property failed after \d+ tests/);
  details.failure = failure!.message.split('\n').slice(0, 2).join(' ').slice(0, 200);
}

const corrupt = (instance: ServiceInstance, change: Partial<ServiceInstance>): ServiceInstance =>
  Object.freeze({ ...instance, ...change });

/** An etcd layout whose decoded instances claim another service. */
function misattributing(layout: EtcdKeyLayout): EtcdKeyLayout {
  return Object.assign(Object.create(layout) as EtcdKeyLayout, {
    decode: (key: string, value: Buffer, service: string, namespace: string) => {
      const result = layout.decode(key, value, service, namespace);
      return 'instance' in result ? { instance: corrupt(result.instance, { service: 'payments' }) } : result;
    },
  });
}

/** A seed layout that writes the version as switchyard 0.1 did ("" where the crate writes null). */
function emptyVersionWriter(layout: EtcdKeyLayout): EtcdKeyLayout {
  return Object.assign(Object.create(layout) as EtcdKeyLayout, {
    encode: (instance: ServiceInstance) => JSON.stringify({ ...toCrateRecord(instance), version: instance.version }),
  });
}

describe('fuzz self-check: every decoder property fails on a broken decoder', () => {
  reliabilityTest(results, selfCheck(DECODER_PROPERTIES.seedRecord, 'returns weight -1'), (details) =>
    expectPropertyFails(
      () => seedRecordProperty((record) => corrupt(fromSeedRecord(record), { weight: -1 }), {}, brief),
      details,
    ),
  );

  reliabilityTest(
    results,
    selfCheck(DECODER_PROPERTIES.instanceFile, 'returns ttlMs = -1 and expiresAt = NaN'),
    (details) =>
      expectPropertyFails(
        () =>
          instanceFileProperty(
            (text, fallback) => ({ ...decodeInstanceFile(text, fallback), ttlMs: -1, expiresAt: Number.NaN }),
            {},
            brief,
          ),
        details,
      ),
  );

  reliabilityTest(
    results,
    selfCheck(DECODER_PROPERTIES.etcdSeed, 'attributes instances to another service'),
    (details) =>
      expectPropertyFails(
        () => etcdValueProperty([new SeedLayout('', '/'), new SeedLayout('/sy', '.')].map(misattributing), {}, brief),
        details,
      ),
  );

  reliabilityTest(
    results,
    selfCheck(DECODER_PROPERTIES.etcdSeedSlash, 'attributes instances to another service'),
    (details) =>
      expectPropertyFails(
        () =>
          etcdValueProperty(
            [new SeedSlashLayout('', '/'), new SeedSlashLayout('/sy', '.')].map(misattributing),
            {},
            brief,
          ),
        details,
      ),
  );

  reliabilityTest(
    results,
    selfCheck(DECODER_PROPERTIES.crateRecord, 'writes version "" where the crate writes null'),
    (details) =>
      expectPropertyFails(() => crateRecordProperty(emptyVersionWriter(new SeedLayout('', '/')), {}, brief), details),
  );

  reliabilityTest(
    results,
    selfCheck(DECODER_PROPERTIES.etcdGrpcNaming, 'attributes instances to another service'),
    (details) =>
      expectPropertyFails(
        () =>
          etcdValueProperty([new GrpcNamingLayout(''), new GrpcNamingLayout('/naming')].map(misattributing), {}, brief),
        details,
      ),
  );

  reliabilityTest(
    results,
    selfCheck(DECODER_PROPERTIES.consulEntry, 'reports a port one above the address'),
    (details) =>
      expectPropertyFails(
        () =>
          consulEntryProperty(
            (entry) => {
              const instance = fromHealthEntry(entry);
              return corrupt(instance, { port: instance.port + 1 });
            },
            {},
            brief,
          ),
        details,
      ),
  );

  reliabilityTest(
    results,
    selfCheck(DECODER_PROPERTIES.dnsAnswers, 'puts the instances in another namespace'),
    (details) =>
      expectPropertyFails(
        () =>
          dnsAnswersProperty(
            async (...args) => {
              const result = await resolveService(...args);
              return result.kind === 'records'
                ? { ...result, instances: result.instances.map((i) => corrupt(i, { namespace: 'elsewhere' })) }
                : result;
            },
            resolveDnsSettings({ backendConfig: { domain: 'svc.test' }, refreshIntervalMs: 30_000 }),
            {},
            brief,
          ),
        details,
      ),
  );

  reliabilityTest(results, selfCheck(DECODER_PROPERTIES.xdsResources, 'serves endpoints with weight 0'), (details) =>
    expectPropertyFails(
      () =>
        xdsResourcesProperty(
          {
            parseLoadAssignment: (message, path) => {
              const assignment = parseLoadAssignment(message, path);
              return { ...assignment, endpoints: assignment.endpoints.map((e) => ({ ...e, weight: 0 })) };
            },
            parseCluster,
          },
          {},
          brief,
        ),
      details,
    ),
  );
});
