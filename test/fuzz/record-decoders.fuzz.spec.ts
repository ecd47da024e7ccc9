import fc from 'fast-check';
import { describe, expect } from 'vitest';
import { fromSeedRecord } from '../../lib/core/index.js';
import { decodeMetaKey, encodeMetaKey, fromHealthEntry } from '../../lib/registry/consul/consul-service-codec.js';
import { resolveService } from '../../lib/registry/dns/dns-resolution.js';
import { dnsSettings as resolveDnsSettings } from '../integration/dns/dns-test-kit.js';
import { GrpcNamingLayout } from '../../lib/registry/etcd/etcd-key-layout.js';
import { SeedLayout, SeedSlashLayout } from '../../lib/registry/etcd/etcd-seed-layouts.js';
import { decodeInstanceFile } from '../../lib/registry/local/instance-file.js';
import { parseCluster } from '../../lib/registry/mesh/xds-cluster.js';
import { parseLoadAssignment } from '../../lib/registry/mesh/xds-load-assignment.js';
import { reliabilityTest, ResultsFile } from '../faults/support/reliability-results.js';
import { fuzzParameters } from './support/fuzz-settings.js';
import { DECODER_PROPERTIES } from './support/decoder-property-specs.js';
import { crateRecordProperty } from './support/crate-record-property.js';
import {
  consulEntryProperty,
  dnsAnswersProperty,
  etcdValueProperty,
  instanceFileProperty,
  seedRecordProperty,
  xdsResourcesProperty,
} from './support/record-decoder-properties.js';

// The registry record decoders, fuzzed (the properties live in
// support/record-decoder-properties.ts; fuzz-self-check.spec.ts shows each
// one fails on a deliberately broken decoder).
const results = new ResultsFile('fuzz-record-decoders');

/** No lone surrogates (String#isWellFormed, which the ES2023 lib typings lack). */
function isWellFormed(text: string): boolean {
  return !/[\uD800-\uDFFF]/.test(text.replace(/[\uD800-\uDBFF][\uDC00-\uDFFF]/g, ''));
}

describe('fuzz: registry record decoders', () => {
  reliabilityTest(results, DECODER_PROPERTIES.seedRecord, (details) => seedRecordProperty(fromSeedRecord, details));

  reliabilityTest(results, DECODER_PROPERTIES.instanceFile, (details) =>
    instanceFileProperty(decodeInstanceFile, details),
  );

  reliabilityTest(results, DECODER_PROPERTIES.etcdSeed, (details) =>
    etcdValueProperty([new SeedLayout('', '/'), new SeedLayout('/sy', '.')], details),
  );

  reliabilityTest(results, DECODER_PROPERTIES.etcdSeedSlash, (details) =>
    etcdValueProperty([new SeedSlashLayout('', '/'), new SeedSlashLayout('/sy', '.')], details),
  );

  reliabilityTest(results, DECODER_PROPERTIES.crateRecord, (details) =>
    crateRecordProperty(new SeedLayout('', '/'), details),
  );

  reliabilityTest(results, DECODER_PROPERTIES.etcdGrpcNaming, (details) =>
    etcdValueProperty([new GrpcNamingLayout(''), new GrpcNamingLayout('/naming')], details),
  );

  reliabilityTest(results, DECODER_PROPERTIES.consulEntry, (details) => consulEntryProperty(fromHealthEntry, details));

  reliabilityTest(results, DECODER_PROPERTIES.consulMetaKeys, () => {
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
  });

  reliabilityTest(results, DECODER_PROPERTIES.dnsAnswers, (details) =>
    dnsAnswersProperty(
      resolveService,
      resolveDnsSettings({ backendConfig: { domain: 'svc.test' }, refreshIntervalMs: 30_000 }),
      details,
    ),
  );

  reliabilityTest(results, DECODER_PROPERTIES.xdsResources, (details) =>
    xdsResourcesProperty({ parseLoadAssignment, parseCluster }, details),
  );
});
