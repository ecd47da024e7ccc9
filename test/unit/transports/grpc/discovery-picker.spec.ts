import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { createServiceInstance, Discovery, type Registration } from '../../../../lib/index.js';
import { MemoryRegistry, MemoryStore } from '../../../../lib/testing.js';
import type { ServiceClient } from '../../../../lib/client/service-client.js';
import type { Endpoint } from '../../../../lib/core/endpoint.js';
import { DiscoveryPicker } from '../../../../lib/transports/grpc/discovery-picker.js';
import { PickResultType, type GrpcPicker, type GrpcPickArgs } from '../../../../lib/transports/grpc/grpc-adapter.js';

const TIMING = { ttlMs: 90_000, heartbeatMs: 30_000 };
const quiet = { log() {}, warn() {}, error() {} };

/** A leaf that answers COMPLETE with a marker subchannel naming its endpoint, as pick-first does (a fresh result per pick). */
function leaf(address: string): GrpcPicker {
  return {
    pick: () => ({
      pickResultType: PickResultType.COMPLETE,
      subchannel: { address } as never,
      status: null,
      onCallStarted: null,
      onCallEnded: null,
    }),
  };
}

function args(key?: string): GrpcPickArgs {
  const metadata = new grpc.Metadata();
  if (key !== undefined) metadata.set('x-hash-key', key);
  return { metadata, extraPickInfo: {} };
}

function picked(result: ReturnType<GrpcPicker['pick']>): string | undefined {
  return (result.subchannel as unknown as { address: string } | null)?.address;
}

describe('the switchyard LB picker (one balancing path per service)', () => {
  const registrations: Registration[] = [];
  const discoveries: Discovery[] = [];
  afterEach(async () => {
    await Promise.all(registrations.splice(0).map((r) => r.deregister()));
    await Promise.all(discoveries.splice(0).map((d) => d.close()));
  });

  async function client(loadBalance: string): Promise<ServiceClient> {
    MemoryStore.reset('lb-picker');
    const registry = new MemoryRegistry(MemoryStore.named('lb-picker'));
    for (const port of [7001, 7002, 7003]) {
      registrations.push(
        await registry.register(
          createServiceInstance({ service: 's', id: `i${port}`, address: `127.0.0.1:${port}` }),
          TIMING,
        ),
      );
    }
    const discovery = await Discovery.create({ backend: 'memory', loadBalance }, { registry, logger: quiet });
    discoveries.push(discovery);
    const c = discovery.client('s');
    await c.ready({ minEndpoints: 3 });
    return c;
  }

  function picker(c: ServiceClient, ready: Endpoint[], connecting: Endpoint[] = []): DiscoveryPicker {
    return new DiscoveryPicker(
      c,
      new Map(ready.map((e) => [e.key, leaf(e.address)])),
      ready.map((e) => ({ endpoint: e, leaf: leaf(e.address) })),
      new Set(connecting.map((e) => e.key)),
      'x-hash-key',
    );
  }

  it("follows the client's own round robin: the same sequence as ServiceClient.pick()", async () => {
    const c = await client('round_robin');
    const all = [...c.snapshot().endpoints];
    const lb = picker(c, all);
    const viaLb = Array.from({ length: 6 }, () => picked(lb.pick(args())));
    const counts = new Map<string, number>();
    for (const address of viaLb) counts.set(address!, (counts.get(address!) ?? 0) + 1);
    expect([...counts.values()]).toEqual([2, 2, 2]);
    // One cursor: a pick through the client continues the LB's rotation.
    const next = c.pick().address;
    expect(next).toBe(viaLb[0]);
  });

  it('counts a call only once grpc-js starts it, and feeds its end into load and outlier detection', async () => {
    const c = await client('round_robin');
    const all = [...c.snapshot().endpoints];
    const result = picker(c, all).pick(args());
    const endpoint = all.find((e) => e.address === picked(result))!;
    expect(c.loads.peek(endpoint.key)?.inFlight ?? 0).toBe(0);
    result.onCallStarted!();
    expect(c.loads.peek(endpoint.key)?.inFlight).toBe(1);
    result.onCallEnded!(grpc.status.UNAVAILABLE, 'down', new grpc.Metadata());
    expect(c.loads.peek(endpoint.key)?.inFlight).toBe(0);
    expect(c.describeEndpoints().find((r) => r.endpoint.key === endpoint.key)?.failuresLastMinute).toBe(1);
  });

  it('moves a keyless pick off an endpoint without a ready subchannel', async () => {
    const c = await client('round_robin');
    const [a, b] = c.snapshot().endpoints; // the third has no ready subchannel
    const lb = picker(c, [a, b]);
    const seen = new Set(Array.from({ length: 9 }, () => picked(lb.pick(args()))));
    expect(seen).toEqual(new Set([a.address, b.address]));
  });

  it('keeps a keyed call on its connecting endpoint (queued), and moves it deterministically when that endpoint failed', async () => {
    const c = await client('consistent_hash');
    const all = [...c.snapshot().endpoints];
    const home = c.pickEndpoint({ key: 'alice' });
    const others = all.filter((e) => e !== home);
    expect(picker(c, others, [home]).pick(args('alice')).pickResultType).toBe(PickResultType.QUEUE);
    const failedHome = picker(c, others);
    const moved = picked(failedHome.pick(args('alice')));
    expect(moved).not.toBe(home.address);
    for (let i = 0; i < 5; i++) expect(picked(failedHome.pick(args('alice')))).toBe(moved);
    expect(picked(picker(c, all).pick(args('alice')))).toBe(home.address);
  });

  it('queues when no endpoint has a ready subchannel', async () => {
    const c = await client('random');
    expect(picker(c, []).pick(args()).pickResultType).toBe(PickResultType.QUEUE);
  });
});
