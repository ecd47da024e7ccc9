import { describe, expect, it } from 'vitest';
import {
  parseLoadAssignment,
  type ClusterLoadAssignmentMessage,
} from '../../../../lib/registry/mesh/xds-load-assignment.js';

type Spec = { port: number; weight?: number; zone?: string; tier?: string; health?: string };

function message(endpoints: Spec[], localityWeight?: number): ClusterLoadAssignmentMessage {
  return {
    cluster_name: 'orders',
    endpoints: [
      {
        locality: { region: 'eu', zone: endpoints[0]?.zone ?? 'eu-1', sub_zone: '' },
        ...(localityWeight ? { load_balancing_weight: { value: localityWeight } } : {}),
        lb_endpoints: endpoints.map((e) => ({
          endpoint: { address: { socket_address: { address: '10.0.0.1', port_value: e.port } } },
          health_status: e.health ?? 'HEALTHY',
          ...(e.weight ? { load_balancing_weight: { value: e.weight } } : {}),
          ...(e.tier
            ? {
                metadata: {
                  filter_metadata: { 'envoy.lb': { fields: { tier: { kind: 'stringValue', stringValue: e.tier } } } },
                },
              }
            : {}),
        })),
      },
    ],
  };
}

describe('parseLoadAssignment with the version in use', () => {
  it('parses exactly as from scratch, handing over unchanged endpoints as the same objects', () => {
    const v1 = parseLoadAssignment(message([{ port: 1 }, { port: 2 }, { port: 3, tier: 'gold' }, { port: 4 }]));
    const spec2: Spec[] = [{ port: 1 }, { port: 2, weight: 5 }, { port: 3, tier: 'silver' }, { port: 5 }];
    const v2 = parseLoadAssignment(message(spec2), '', v1);
    expect(v2).toEqual(parseLoadAssignment(message(spec2)));
    const [a1, b1, c1] = v1.endpoints;
    const [a2, b2, c2, e2] = v2.endpoints;
    expect(a2).toBe(a1); // unchanged
    expect(b2).not.toBe(b1); // reweighted
    expect(b2.weight).toBe(5);
    expect(c2).not.toBe(c1); // other metadata
    expect(c2.tags).toEqual({ tier: 'silver' });
    expect(e2.port).toBe(5);
    expect(Object.isFrozen(b2)).toBe(true);
  });

  it('follows a change of locality, health and locality weight, and works across several versions', () => {
    const v1 = parseLoadAssignment(message([{ port: 1 }, { port: 2 }], 2));
    const v2 = parseLoadAssignment(
      message(
        [
          { port: 1, zone: 'eu-2' },
          { port: 2, health: 'UNHEALTHY' },
        ],
        2,
      ),
      '',
      v1,
    );
    expect(v2).toEqual(
      parseLoadAssignment(
        message(
          [
            { port: 1, zone: 'eu-2' },
            { port: 2, health: 'UNHEALTHY' },
          ],
          2,
        ),
      ),
    );
    expect(v2.endpoints[0].zone).toBe('eu-2');
    expect(v2.skipped.unhealthy).toBe(1);
    const v3 = parseLoadAssignment(message([{ port: 1, zone: 'eu-2' }, { port: 2 }], 3), '', v2);
    expect(v3).toEqual(parseLoadAssignment(message([{ port: 1, zone: 'eu-2' }, { port: 2 }], 3)));
    expect(v3.endpoints[0]).toBe(v2.endpoints[0]);
  });

  it('still rejects an invalid endpoint that an earlier version had valid', () => {
    const v1 = parseLoadAssignment(message([{ port: 1 }]));
    expect(() => parseLoadAssignment(message([{ port: 0 }]), '', v1)).toThrow(/port 1-65535/);
  });
});
