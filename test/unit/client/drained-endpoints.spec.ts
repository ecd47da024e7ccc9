import { afterEach, describe, expect, it } from 'vitest';
import { createServiceInstance, Discovery, type Registration, type ServiceInstanceInput } from '../../../lib/index.js';
import { MemoryRegistry, MemoryStore } from '../../../lib/testing.js';
import { builtInStrategies } from '../../../lib/balancing/strategy-registry.js';
import type { ServiceClient } from '../../../lib/client/service-client.js';
import { NoEndpointsError } from '../../../lib/core/errors.js';
import { waitFor } from '../../support/wait-for.js';

// A registry's weight 0 is a drain marker and its `healthy: false` a "do not
// serve": both endpoints stay known (listed, shown) but no strategy ever gets
// them, the same for every transport, since all pick from the client's picker.

const TIMING = { ttlMs: 90_000, heartbeatMs: 30_000 };
const quiet = { log() {}, warn() {}, error() {} };
const STRATEGIES = builtInStrategies().map((s) => s.name);

describe('drained (weight 0) and healthy: false endpoints', () => {
  const registrations: Registration[] = [];
  const discoveries: Discovery[] = [];
  let store = 0;

  afterEach(async () => {
    await Promise.all(registrations.splice(0).map((r) => r.deregister()));
    await Promise.all(discoveries.splice(0).map((d) => d.close()));
  });

  async function clientOver(
    instances: Array<Partial<ServiceInstanceInput>>,
    config: Record<string, unknown>,
  ): Promise<{ client: ServiceClient; registry: MemoryRegistry }> {
    const name = `drain-${++store}`;
    MemoryStore.reset(name);
    const registry = new MemoryRegistry(MemoryStore.named(name));
    for (const [i, input] of instances.entries()) {
      const instance = createServiceInstance({
        service: 'svc',
        id: `i${i}`,
        address: `127.0.0.1:${7101 + i}`,
        ...input,
      });
      registrations.push(await registry.register(instance, TIMING));
    }
    const discovery = await Discovery.create({ backend: 'memory', ...config }, { registry, logger: quiet });
    discoveries.push(discovery);
    const client = discovery.client('svc');
    await waitFor(() => client.describeEndpoints().length === instances.length, { what: 'every instance known' });
    return { client, registry };
  }

  it.each(STRATEGIES)('%s never picks them, and keeps picking every other endpoint', async (strategy) => {
    expect(STRATEGIES).toHaveLength(7);
    const { client } = await clientOver(
      [{ weight: 0 }, { weight: 1 }, { weight: 3 }, { healthy: false, weight: 5 }, { weight: 2 }],
      { loadBalance: strategy },
    );
    const picked = new Map<string, number>();
    for (let i = 0; i < 600; i++) {
      // Half the calls carry a key (consistent_hash hashes it; the others ignore it).
      const endpoint = client.pick(i % 2 ? { key: `user-${i}` } : undefined);
      picked.set(endpoint.instance.id, (picked.get(endpoint.instance.id) ?? 0) + 1);
      // Calls end, so the load-aware strategies keep spreading.
      client.startCall(endpoint).complete('success');
    }
    expect(picked.has('i0')).toBe(false);
    expect(picked.has('i3')).toBe(false);
    expect([...picked.keys()].sort()).toEqual(['i1', 'i2', 'i4']);

    const shown = Object.fromEntries(client.describeEndpoints().map((r) => [r.endpoint.instance.id, r]));
    expect(Object.keys(shown).sort()).toEqual(['i0', 'i1', 'i2', 'i3', 'i4']);
    expect(shown.i0).toMatchObject({ served: false, health: 'drained', detail: expect.stringMatching(/weight 0/) });
    expect(shown.i3).toMatchObject({
      served: false,
      health: 'unhealthy',
      detail: expect.stringMatching(/healthy: false/),
    });
    for (const id of ['i1', 'i2', 'i4']) expect(shown[id]).toMatchObject({ served: true, health: 'healthy' });
    expect(client.snapshot().size).toBe(3);
  });

  it('says "filtered" (not "zero instances") when every endpoint is drained, and serves one again when its weight rises', async () => {
    const { client } = await clientOver([{ weight: 0 }, { weight: 0 }], { loadBalance: 'weighted_round_robin' });
    expect(client.snapshot()).toMatchObject({ state: 'ok', size: 0 });
    expect(() => client.pick()).toThrow(NoEndpointsError);
    expect(() => client.pick()).toThrow(/every known instance was filtered out or is unhealthy/);
    // The instance drains and comes back through its own registration.
    await registrations[1].update(createServiceInstance({ ...registrations[1].instance, weight: 4 }));
    await waitFor(() => client.snapshot().size === 1, { what: 'the undrained endpoint served' });
    expect(client.pick().instance.id).toBe('i1');
    await registrations[1].update(createServiceInstance({ ...registrations[1].instance, weight: 0 }));
    await waitFor(() => client.snapshot().size === 0, { what: 'drained again' });
    expect(client.describeEndpoints().map((r) => r.health)).toEqual(['drained', 'drained']);
  });

  it('stays out in panic mode, when the health overlay serves every known endpoint', async () => {
    // Nothing listens on these ports: every active check fails, the healthy share drops to 0 % and panic serves all.
    const { client } = await clientOver([{ weight: 0 }, { weight: 1 }, { weight: 1 }], {
      loadBalance: 'round_robin',
      healthCheck: { enabled: true, kind: 'http', interval: 0.1, timeout: 0.05, failureThreshold: 1 },
      panicThreshold: 50,
    });
    await waitFor(() => client.healthStatus.panic, { what: 'panic mode' });
    expect(client.snapshot().instances.map((i) => i.id)).toEqual(['i1', 'i2']);
    for (let i = 0; i < 100; i++) expect(client.pick().instance.id).not.toBe('i0');
    expect(client.describeEndpoints().find((r) => r.endpoint.instance.id === 'i0')?.health).toBe('drained');
  });
});
