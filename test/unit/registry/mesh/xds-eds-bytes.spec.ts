import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { XdsResourceError, type MeshLoadAssignment } from '../../../../lib/registry/mesh/xds-load-assignment.js';
import { readLoadAssignment } from '../../../../lib/registry/mesh/xds-eds-bytes.js';
import { LB_ENDPOINT_TYPE_URL, loadXdsProtos, type XdsProtos } from '../../../../lib/registry/mesh/xds-protos.js';
import { ENDPOINT_RESOURCE } from '../../../../lib/registry/mesh/xds-resource-type.js';
import { encodeResource } from '../../../support/xds/xds-control-plane.js';
import {
  ENDPOINT_TYPE,
  loadAssignment,
  type EndpointSpec,
  type LocalitySpec,
} from '../../../support/xds/xds-resources.js';

let protos: XdsProtos;
beforeAll(async () => {
  protos = await loadXdsProtos();
});

const bytesOf = (localities: LocalitySpec[]) =>
  encodeResource(ENDPOINT_TYPE, loadAssignment('orders', localities)).value;

/** Parsed from the bytes (against `previous`), and decoded whole then parsed (against `previousWhole`). */
function both(bytes: Buffer, previous?: MeshLoadAssignment, previousWhole?: MeshLoadAssignment) {
  const read = ENDPOINT_RESOURCE.fromBytes!(bytes, protos);
  expect(read, 'the bytes reader follows this message').toBeDefined();
  expect(read!.name).toBe('orders');
  const fast = read!.parse(previous);
  const whole = ENDPOINT_RESOURCE.parse(protos.decoder(ENDPOINT_RESOURCE.typeUrl)!(bytes), previousWhole);
  return { fast, whole };
}

describe('ClusterLoadAssignment read from its bytes', () => {
  it('parses every version as decoding it whole does, across edits of endpoints, localities, weights and health', () => {
    const endpoint: fc.Arbitrary<EndpointSpec> = fc.record(
      {
        address: fc.integer({ min: 1, max: 12 }).map((i) => `10.0.0.${i}:${8000 + i}`),
        weight: fc.integer({ min: 1, max: 4 }),
        health: fc.constantFrom('HEALTHY', 'UNKNOWN', 'UNHEALTHY', 'DRAINING'),
        metadata: fc.constantFrom<EndpointSpec['metadata']>(
          undefined,
          { 'envoy.lb': { tier: 'gold' } },
          { 'envoy.lb': { version: 2 } },
        ),
        hostname: fc.constantFrom(undefined, 'a.example'),
      },
      { requiredKeys: ['address'] },
    );
    const locality: fc.Arbitrary<LocalitySpec> = fc.record({
      region: fc.constantFrom('eu', 'us'),
      zone: fc.constantFrom('z1', 'z2'),
      weight: fc.constantFrom(0, 1, 3),
      priority: fc.constantFrom(0, 0, 1),
      endpoints: fc.array(endpoint, { maxLength: 8 }),
    });
    fc.assert(
      fc.property(
        fc.array(fc.array(locality, { minLength: 1, maxLength: 3 }), { minLength: 1, maxLength: 6 }),
        (versions) => {
          let previous: MeshLoadAssignment | undefined;
          let previousWhole: MeshLoadAssignment | undefined;
          for (const localities of versions) {
            let fast: MeshLoadAssignment | undefined;
            let whole: MeshLoadAssignment | undefined;
            let fastError: unknown;
            let wholeError: unknown;
            const bytes = bytesOf(localities);
            const read = ENDPOINT_RESOURCE.fromBytes!(bytes, protos)!;
            try {
              fast = read.parse(previous);
            } catch (error) {
              fastError = error;
            }
            try {
              whole = ENDPOINT_RESOURCE.parse(protos.decoder(ENDPOINT_RESOURCE.typeUrl)!(bytes), previousWhole);
            } catch (error) {
              wholeError = error;
            }
            expect(fast).toEqual(whole);
            expect((fastError as Error | undefined)?.message).toBe((wholeError as Error | undefined)?.message);
            // Like the ADS client: a version that is refused leaves the previous one in use.
            if (fast) previous = fast;
            if (whole) previousWhole = whole;
            // The same bytes again hand over every endpoint as the same object.
            if (fast) {
              const parsed = fast;
              const again = ENDPOINT_RESOURCE.fromBytes!(bytes, protos)!.parse(parsed);
              again.endpoints.forEach((e, i) => expect(e).toBe(parsed.endpoints[i]));
            }
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it('decodes only the endpoints whose bytes changed, wherever the others moved: 947 of 1,000 stay the same objects', () => {
    const live = Array.from({ length: 1_000 }, (_, i) => ({ address: `10.1.${i >> 8}.${i & 255}:80` }));
    const v1 = both(bytesOf([{ region: 'eu', endpoints: live }]));
    for (let k = 0; k < 10; k++) live[k * 97] = { address: `10.2.0.${k}:80` };
    live.splice(500, 3);
    // The oldest leave from the front, the newest join at the end (far past any look-ahead window).
    live.push(...live.splice(1, 40).map((_, k) => ({ address: `10.3.0.${k}:80` })));
    // Decoded: the 50 endpoints that are new, not the old ones met before the walk gave up on the order.
    let decoded = 0;
    const counting: XdsProtos = Object.create(protos, {
      decoder: {
        value: (typeUrl: string) => {
          const decode = protos.decoder(typeUrl);
          return typeUrl === LB_ENDPOINT_TYPE_URL && decode ? (bytes: Buffer) => (decoded++, decode(bytes)) : decode;
        },
      },
    });
    const v2bytes = bytesOf([{ region: 'eu', endpoints: live }]);
    const v2 = readLoadAssignment(v2bytes, counting)!.parse(v1.fast);
    expect(v2).toEqual(ENDPOINT_RESOURCE.parse(protos.decoder(ENDPOINT_RESOURCE.typeUrl)!(v2bytes), v1.whole));
    const kept = new Set(v1.fast.endpoints);
    expect(v2.endpoints.filter((e) => kept.has(e))).toHaveLength(947);
    expect(decoded).toBe(50);
  });

  it('compares with a version only while its bytes are kept: two versions parsed against one never mix', () => {
    // Endpoints of equal byte length, so bytes of one version at the places of another would compare equal.
    const x = { address: '10.0.0.1:80', weight: 1 };
    const y = { address: '10.0.0.2:80', weight: 5 };
    const p = both(bytesOf([{ region: 'eu', endpoints: [x] }]));
    const a = ENDPOINT_RESOURCE.fromBytes!(bytesOf([{ region: 'eu', endpoints: [x, y] }]), protos)!.parse(p.fast);
    // A second version against the same one replaces the kept bytes (those of `a`) with its own.
    ENDPOINT_RESOURCE.fromBytes!(bytesOf([{ region: 'eu', endpoints: [y, x] }]), protos)!.parse(p.fast);
    const next = bytesOf([{ region: 'eu', endpoints: [y, x] }]);
    const fast = ENDPOINT_RESOURCE.fromBytes!(next, protos)!.parse(a);
    const whole = ENDPOINT_RESOURCE.parse(protos.decoder(ENDPOINT_RESOURCE.typeUrl)!(next), a);
    expect(fast).toEqual(whole);
    expect(fast.endpoints.map((e) => [e.address, e.weight])).toEqual([
      ['10.0.0.2:80', 5],
      ['10.0.0.1:80', 1],
    ]);
  });

  it('refuses (for a NACK) an endpoint whose bytes do not decode, instead of throwing anything else', () => {
    // cluster_name "c"; one locality group holding one LbEndpoint whose `endpoint` field is a truncated varint.
    const bytes = Buffer.from([0x0a, 0x01, 0x63, 0x12, 0x06, 0x12, 0x04, 0x0a, 0x02, 0xff, 0xff]);
    const read = ENDPOINT_RESOURCE.fromBytes!(bytes, protos)!;
    expect(read.name).toBe('c');
    expect(() => read.parse()).toThrow(XdsResourceError);
    expect(() => read.parse()).toThrow(/endpoints\[0\]\.lb_endpoints\[0\]: does not decode/);
  });

  it('leaves to the whole decoder what it does not follow: truncated bytes, endpoint lists of other kinds', () => {
    const valid = bytesOf([{ region: 'eu', endpoints: [{ address: '10.0.0.1:80' }] }]);
    expect(ENDPOINT_RESOURCE.fromBytes!(valid.subarray(0, valid.length - 2), protos)).toBeUndefined();
    // A locality group with field 7 (load_balancer_endpoints, an inline list): 0x3a = field 7, length-delimited.
    const other = Buffer.from([0x0a, 0x01, 0x63, 0x12, 0x02, 0x3a, 0x00]);
    expect(ENDPOINT_RESOURCE.fromBytes!(other, protos)).toBeUndefined();
  });
});
