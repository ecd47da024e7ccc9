import fc from 'fast-check';
import { expect } from 'vitest';
import { createServiceInstance, type ServiceInstance } from '../../../lib/core/index.js';
import type { EtcdKeyLayout } from '../../../lib/registry/etcd/etcd-key-layout.js';
import { expectCrateRecord } from '../../support/rust-crate-record.js';
import { attempt, fuzzParameters } from './fuzz-settings.js';
import type { Details, Overrides } from './record-decoder-properties.js';

/*
 * The other direction of the `seed` layout: what switchyard writes must be
 * a record the Rust crate parses (expectCrateRecord: its fields in order,
 * types, nulls, SocketAddr, u32 weight) and must read back as the same
 * instance. Kept apart from record-decoder-properties.ts, which fuzzes
 * decoders only.
 */

const label = fc.stringMatching(/^[a-z0-9.-]{1,8}$/);

/** Instances the `seed` layout accepts: IP-literal hosts, integer weights from 0 to u32::MAX. */
export const crateWritableInstance: fc.Arbitrary<ServiceInstance> = fc
  .record({
    id: fc.stringMatching(/^[a-z0-9-]{1,12}$/),
    host: fc.oneof(fc.ipV4(), fc.ipV6()),
    port: fc.integer({ min: 1, max: 65535 }),
    namespace: fc.constantFrom('default', 'production', 'flare', 'flare-test'),
    version: fc.constantFrom('', 'v1.0.0', '2.1.3-rc.1'),
    tags: fc.dictionary(label, fc.string({ maxLength: 6 }), { maxKeys: 3 }),
    zone: fc.option(label, { nil: undefined }),
    custom: fc.dictionary(label, fc.string({ maxLength: 6 }), { maxKeys: 2 }),
    healthy: fc.boolean(),
    weight: fc.oneof(fc.constantFrom(0, 100, 200, 4_294_967_295), fc.nat()),
  })
  .map(({ zone, custom, ...input }) =>
    createServiceInstance({ service: 'orders', ...input, metadata: { ...(zone ? { zone } : {}), custom } }),
  );

export function crateRecordProperty(layout: EtcdKeyLayout, details: Details, overrides: Overrides = {}): void {
  let written = 0;
  fc.assert(
    fc.property(crateWritableInstance, (instance) => {
      const encoded = attempt(
        () => layout.encode(instance),
        () => false,
        'seed encode',
      );
      if (!encoded.ok) return;
      const record = expectCrateRecord(encoded.value);
      // Options the crate writes as null: the empty version, a missing zone.
      expect(record.version).toBe(instance.version === '' ? null : instance.version);
      expect((record.metadata as { zone: unknown }).zone).toBe(instance.metadata.zone ?? null);
      const decoded = attempt(
        () => layout.decode(layout.keyOf(instance), Buffer.from(encoded.value), 'orders', instance.namespace),
        () => false,
        'seed decode',
      );
      if (!decoded.ok) return;
      expect(decoded.value).toEqual({ instance });
      written++;
    }),
    fuzzParameters(0xdec9, 800, overrides),
  );
  details.written = written;
  expect(written).toBeGreaterThan(100);
}
