import { describe, expect, it } from 'vitest';
import { encodeResource, LoadAssignmentEncoder } from '../../support/xds/xds-control-plane.js';
import { ENDPOINT_TYPE, loadAssignment, type EndpointSpec } from '../../support/xds/xds-resources.js';

type Plain = Record<string, unknown>;

function expectSameBytes(encoder: LoadAssignmentEncoder, assignment: Plain): void {
  const expected = encodeResource(ENDPOINT_TYPE, assignment);
  const actual = encoder.encode(assignment);
  expect(actual.type_url).toBe(ENDPOINT_TYPE);
  expect(Buffer.from(actual.value).toString('hex')).toBe(Buffer.from(expected.value).toString('hex'));
}

function endpoints(count: number, firstPort = 7000): EndpointSpec[] {
  return Array.from({ length: count }, (_, i) => ({ address: `10.1.${i >> 8}.${i & 255}:${firstPort + i}` }));
}

/** Assignments with everything `loadAssignment` can say, and some fields only a plain object can. */
const VARIED: Array<[string, Plain]> = [
  ['one address', loadAssignment('orders', [{ endpoints: [{ address: '10.0.0.1:7001' }] }])],
  ['no localities', loadAssignment('orders', [])],
  ['a locality without endpoints', loadAssignment('orders', [{ region: 'eu', endpoints: [] }])],
  [
    'localities with regions, zones, weights and priorities',
    loadAssignment('orders', [
      { region: 'eu', zone: 'eu-1', subZone: 'rack-1', weight: 3, endpoints: endpoints(5) },
      { region: 'us', zone: 'us-2', weight: 0, priority: 1, endpoints: endpoints(4, 8000) },
      { priority: 2, weight: 1000, endpoints: [{ address: '[::1]:9000' }, { address: 'backend.internal:9001' }] },
    ]),
  ],
  [
    'endpoints with weights, health states, hostnames and metadata',
    loadAssignment('orders', [
      {
        region: 'eu',
        endpoints: [
          { address: '10.0.0.1:7001', weight: 5, health: 'DEGRADED', hostname: 'a.orders' },
          { address: '10.0.0.2:7001', health: 'UNHEALTHY' },
          { address: '10.0.0.3:7001', health: 'DRAINING', hostname: '' },
          { address: '10.0.0.4:7001', health: 'UNKNOWN', weight: 0 },
          { address: '10.0.0.5:7001', health: 'TIMEOUT' },
          {
            address: '10.0.0.6:7001',
            metadata: {
              'envoy.lb': { version: 'v2', canary: true, shard: 7, ratio: -0.5 },
              switchyard: { 'ü-key': 'ü-value', empty: '' },
            },
          },
          { address: '10.0.0.7:7001', hostname: 'g.orders', metadata: { 'envoy.lb': {} } },
        ],
      },
    ]),
  ],
  [
    'a policy, named endpoints, proximity and fields beside the address',
    {
      cluster_name: 'orders',
      endpoints: [
        {
          locality: { region: 'eu', zone: '', sub_zone: '' },
          lb_endpoints: [
            { endpoint_name: 'primary', health_status: 'HEALTHY' },
            {
              endpoint: {
                address: { socket_address: { address: '10.0.0.9', port_value: 7009 } },
                health_check_config: { port_value: 9999, hostname: 'hc' },
              },
              load_balancing_weight: { value: 2 },
            },
            { endpoint: { address: { socket_address: { port_value: 7010, address: '10.0.0.10' } } } },
          ],
          load_balancing_weight: { value: 4 },
          priority: 0,
          proximity: { value: 3 },
        },
        { lb_endpoints: [{ endpoint: { address: { socket_address: { address: '10.0.0.11', port_value: 7011 } } } }] },
      ],
      policy: {
        drop_overloads: [{ category: 'throttle', drop_percentage: { numerator: 5, denominator: 'HUNDRED' } }],
        overprovisioning_factor: { value: 140 },
      },
      named_endpoints: {
        primary: { address: { socket_address: { address: '10.0.0.8', port_value: 7008 } } },
      },
    },
  ],
  ['no cluster name', { endpoints: [{ lb_endpoints: [{ health_status: 'HEALTHY' }] }] }],
];

describe('LoadAssignmentEncoder: a ClusterLoadAssignment at the cost of what changed', () => {
  it.each(VARIED)('writes the same bytes as encodeResource: %s', (_, assignment) => {
    const encoder = new LoadAssignmentEncoder();
    expectSameBytes(encoder, assignment);
    // Again from the cache, from fresh objects of the same content.
    expectSameBytes(encoder, structuredClone(assignment));
  });

  it('writes the same bytes as encodeResource while endpoints are replaced, added and removed', () => {
    const encoder = new LoadAssignmentEncoder();
    let live = endpoints(300);
    for (let round = 0; round < 20; round++) {
      live = live.filter((_, i) => (i + round) % 17 !== 0);
      live.push(...endpoints(12, 10_000 + round * 100));
      live[round] = { ...live[round], health: round % 2 ? 'DRAINING' : 'HEALTHY', hostname: `h${round}` };
      const half = live.length >> 1;
      expectSameBytes(
        encoder,
        loadAssignment('orders', [
          { region: 'eu', weight: 2, endpoints: live.slice(0, half) },
          { region: 'us', priority: 1, endpoints: live.slice(half) },
        ]),
      );
    }
  });

  it('takes frozen LbEndpoints by identity with the same bytes, also once their cached copy was dropped', () => {
    const encoder = new LoadAssignmentEncoder();
    const frozen = (host: string, port: number, health = 'HEALTHY'): Plain =>
      Object.freeze({
        endpoint: Object.freeze({
          address: Object.freeze({ socket_address: Object.freeze({ address: host, port_value: port }) }),
        }),
        health_status: health,
      });
    const a = frozen('10.0.0.1', 7001);
    const b = frozen('10.0.0.2', 7002, 'DRAINING');
    const c = frozen('10.0.0.3', 7003);
    const assignment = (...lbs: Plain[]): Plain => ({ cluster_name: 'orders', endpoints: [{ lb_endpoints: lbs }] });
    expectSameBytes(encoder, assignment(a, b));
    expectSameBytes(encoder, assignment(b, a, c));
    // `a` is dropped from the cache (no cluster holds it), then comes back.
    expectSameBytes(encoder, assignment(c));
    expect(encoder.cachedEndpoints).toBe(1);
    expectSameBytes(encoder, assignment(a, c, a));
    expect(encoder.cachedEndpoints).toBe(2);
    encoder.forget('orders');
    expect(encoder.cachedEndpoints).toBe(0);
  });

  it('tells apart LbEndpoints that differ only in what a careless key would drop', () => {
    const encoder = new LoadAssignmentEncoder();
    const socket = { address: '10.0.0.1', port_value: 7001 };
    const lookalikes: Plain[] = [
      { endpoint: { address: { socket_address: socket } }, health_status: 'HEALTHY' },
      { endpoint: { address: { socket_address: socket }, hostname: '' }, health_status: 'HEALTHY' },
      { endpoint: { address: { socket_address: socket }, hostname: 'HEALTHY' }, health_status: '' },
      { endpoint: { address: { socket_address: { ...socket, port_value: 70011 } } }, health_status: 'HEALTHY' },
      { endpoint: { address: { socket_address: { ...socket, address: '10.0.0.17' } } }, health_status: 'HEALTHY' },
      { endpoint: { address: { socket_address: socket } }, health_status: 'HEALTHY', metadata: {} },
      { endpoint: { address: { socket_address: { ...socket, protocol: 'UDP' } } }, health_status: 'HEALTHY' },
      { health_status: 'HEALTHY', endpoint: { address: { socket_address: socket } } },
    ];
    // All in one assignment, then each alone after the cache holds the others.
    expectSameBytes(encoder, { cluster_name: 'orders', endpoints: [{ lb_endpoints: lookalikes }] });
    for (const lbEndpoint of lookalikes)
      expectSameBytes(encoder, { cluster_name: 'users', endpoints: [{ lb_endpoints: [lbEndpoint] }] });
  });

  it('holds only the LbEndpoints the latest assignment of some cluster uses', () => {
    const encoder = new LoadAssignmentEncoder();
    const orders = endpoints(100);
    encoder.encode(loadAssignment('orders', [{ endpoints: orders }]));
    expect(encoder.cachedEndpoints).toBe(100);
    // Ten replaced: ten new, the ten old ones dropped.
    const replaced = [...orders.slice(10), ...endpoints(10, 9000)];
    encoder.encode(loadAssignment('orders', [{ endpoints: replaced }]));
    expect(encoder.cachedEndpoints).toBe(100);
    // A second cluster sharing half of them adds only the other half.
    encoder.encode(loadAssignment('users', [{ endpoints: [...replaced.slice(0, 50), ...endpoints(50, 11_000)] }]));
    expect(encoder.cachedEndpoints).toBe(150);
    encoder.forget('orders');
    expect(encoder.cachedEndpoints).toBe(100);
    encoder.forget('users');
    expect(encoder.cachedEndpoints).toBe(0);
  });

  it('throws what encodeResource throws for what protobufjs rejects, and holds nothing of it', () => {
    const encoder = new LoadAssignmentEncoder();
    encoder.encode(loadAssignment('orders', [{ endpoints: endpoints(3) }]));
    const good = (loadAssignment('x', [{ endpoints: endpoints(5, 8000) }]).endpoints as Plain[])[0]
      .lb_endpoints as Plain[];
    for (const bad of [
      { cluster_name: 'orders', endpoints: [{ lb_endpoints: [...good, { endpoint: 'not an object' }] }] },
      { cluster_name: 'orders', endpoints: [{ lb_endpoints: [...good, 42] }] },
      { cluster_name: 'orders', endpoints: 'not a list' },
    ]) {
      const expected = (() => {
        try {
          encodeResource(ENDPOINT_TYPE, bad);
        } catch (error) {
          return (error as Error).message;
        }
        return 'nothing thrown';
      })();
      expect(expected).toMatch(/expected/);
      expect(() => encoder.encode(bad)).toThrow(expected);
      expect(encoder.cachedEndpoints).toBe(3);
    }
  });
});
