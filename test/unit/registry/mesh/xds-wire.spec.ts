import { beforeAll, describe, expect, it } from 'vitest';
import {
  CLUSTER_TYPE_URL,
  ENDPOINT_TYPE_URL,
  loadXdsProtos,
  RESOURCE_WRAPPER_TYPE_URL,
  type DiscoveryResponseMessage,
  type XdsProtos,
} from '../../../../lib/registry/mesh/xds-protos.js';
import { peekResourceName, peekResponse, supersededIn } from '../../../../lib/registry/mesh/xds-wire.js';
import { encodeResource } from '../../../support/xds/xds-control-plane.js';
import { edsCluster, loadAssignment } from '../../../support/xds/xds-resources.js';

const EDS = ENDPOINT_TYPE_URL;
const CDS = CLUSTER_TYPE_URL;

describe('xds-wire: reading DiscoveryResponses from their bytes', () => {
  let protos: XdsProtos;
  beforeAll(async () => {
    protos = await loadXdsProtos();
  });

  function assignment(cluster: string, port: number) {
    return encodeResource(EDS, loadAssignment(cluster, [{ endpoints: [{ address: `10.0.0.1:${port}` }] }]));
  }

  it('reads version, type, nonce and each resource as the full decoder does', () => {
    const response: DiscoveryResponseMessage = {
      version_info: '42',
      resources: [assignment('orders', 7001), assignment('users', 7002)],
      type_url: EDS,
      nonce: 'n-ü-7',
    };
    const bytes = protos.ads.responseSerialize(response);
    const peeked = peekResponse(bytes)!;
    const decoded = protos.ads.responseDeserialize(bytes);
    expect(peeked.version_info).toBe(decoded.version_info);
    expect(peeked.type_url).toBe(decoded.type_url);
    expect(peeked.nonce).toBe('n-ü-7');
    expect(peeked.resources.map((r) => r.type_url)).toEqual(decoded.resources.map((r) => r.type_url));
    peeked.resources.forEach((r, i) => expect(Buffer.compare(r.value, decoded.resources[i].value)).toBe(0));
    expect(peeked.resources.map((r) => peekResourceName(r, EDS, 1, RESOURCE_WRAPPER_TYPE_URL))).toEqual([
      'orders',
      'users',
    ]);
  });

  it('names a resource inside a Resource wrapper, and none of another type or of malformed bytes', () => {
    const inner = assignment('orders', 7001);
    const wrapped = encodeResource(RESOURCE_WRAPPER_TYPE_URL, { name: 'orders', resource: inner });
    expect(peekResourceName(wrapped, EDS, 1, RESOURCE_WRAPPER_TYPE_URL)).toBe('orders');
    const cluster = encodeResource(CDS, edsCluster('orders'));
    expect(peekResourceName(cluster, CDS, 1, RESOURCE_WRAPPER_TYPE_URL)).toBe('orders');
    expect(peekResourceName(cluster, EDS, 1, RESOURCE_WRAPPER_TYPE_URL)).toBeUndefined();
    const truncated = { type_url: EDS, value: inner.value.subarray(0, inner.value.length - 3) };
    expect(peekResourceName(truncated, EDS, 1, RESOURCE_WRAPPER_TYPE_URL)).toBeUndefined();
  });

  it('gives up (so the full decoder reports it) on truncated bytes and group fields', () => {
    const bytes = protos.ads.responseSerialize({
      version_info: '1',
      resources: [assignment('orders', 7001)],
      type_url: EDS,
      nonce: 'n1',
    });
    expect(peekResponse(bytes.subarray(0, bytes.length - 5))).toBeUndefined();
    expect(peekResponse(Buffer.from([0x0b, 0x0c]))).toBeUndefined(); // field 1, wire type 3 (group)
    expect(peekResponse(Buffer.alloc(0))).toEqual({ version_info: '', resources: [], type_url: '', nonce: '' });
  });
});

describe('xds-wire: which responses of a batch a later one makes moot', () => {
  it('a response is moot when later responses of its type carry every resource it carries', () => {
    expect(
      supersededIn([
        { typeUrl: EDS, names: ['a'] },
        { typeUrl: EDS, names: ['b'] },
        { typeUrl: EDS, names: ['a'] },
        { typeUrl: EDS, names: ['a', 'b'] },
        { typeUrl: EDS, names: ['b'] },
      ]),
    ).toEqual([true, true, true, false, false]);
  });

  it('keeps a response holding one resource nothing later carries, and the last of each', () => {
    expect(
      supersededIn([
        { typeUrl: EDS, names: ['a', 'c'] },
        { typeUrl: EDS, names: ['a'] },
      ]),
    ).toEqual([false, false]);
  });

  it('never lets another type, or a response whose names are unknown, replace one', () => {
    expect(
      supersededIn([
        { typeUrl: EDS, names: ['a'] },
        { typeUrl: CDS, names: ['a'] },
        { typeUrl: EDS, names: undefined },
      ]),
    ).toEqual([false, false, false]);
    expect(
      supersededIn([
        { typeUrl: EDS, names: undefined },
        { typeUrl: EDS, names: ['a'] },
      ]),
    ).toEqual([false, false]);
  });
});
