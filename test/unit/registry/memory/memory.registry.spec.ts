import { afterEach, describe, expect, it } from 'vitest';
import type { EndpointSet } from '../../../../lib/core/endpoint-set.js';
import { RegistrationError } from '../../../../lib/core/errors.js';
import { createServiceInstance } from '../../../../lib/core/service-instance.js';
import { MemoryRegistry } from '../../../../lib/registry/memory/memory.registry.js';
import { MemoryStore } from '../../../../lib/registry/memory/memory.store.js';
import type { RegistrationEvent } from '../../../../lib/registry/registry.interface.js';
import type { ReachabilityState } from '../../../../lib/registry/shared/reachability.js';

const TIMING = { ttlMs: 9_000, heartbeatMs: 3_000 };
const STORE = 'memory-registry-spec';
const opened: MemoryRegistry[] = [];

function open(): MemoryRegistry {
  const registry = new MemoryRegistry(MemoryStore.named(STORE));
  opened.push(registry);
  return registry;
}

const orders = (id: string) =>
  createServiceInstance({ service: 'orders', id, address: `127.0.0.1:${id.length + 1000}` });

afterEach(async () => {
  await Promise.all(opened.splice(0).map((r) => r.close()));
  MemoryStore.reset(STORE);
});

describe('MemoryRegistry', () => {
  it('reports its store as its reachability, and serves the last set stale while the store is "down"', async () => {
    const registry = open();
    const states: ReachabilityState[] = [];
    registry.reachability.state$.subscribe((s) => states.push(s));
    const sets: EndpointSet[] = [];
    registry.watch({ service: 'orders' }).subscribe((s) => sets.push(s));
    await registry.register(orders('a'), TIMING);

    registry.store.setReachable(false);
    expect(registry.reachability.current).toMatchObject({
      reachable: false,
      reason: 'memory store marked unreachable',
    });
    expect(await registry.reachability.probe()).toMatchObject({ reachable: false });
    expect(sets.at(-1)).toMatchObject({ state: 'stale', reason: 'memory store marked unreachable' });
    expect(sets.at(-1)!.instances.map((i) => i.id)).toEqual(['a']);

    registry.store.setReachable(true);
    expect(await registry.reachability.probe()).toMatchObject({ reachable: true });
    expect(sets.at(-1)).toMatchObject({ state: 'ok' });
    expect(states.map((s) => s.reachable)).toEqual([true, false, true]);
  });

  it('a heartbeat puts back an instance removed behind its back, with lost then restored', async () => {
    const registry = open();
    const registration = await registry.register(orders('b'), TIMING);
    const events: RegistrationEvent[] = [];
    registration.events$.subscribe((e) => events.push(e));
    registry.store.delete('b');
    await registration.heartbeat();
    expect(events.map((e) => e.type)).toEqual(['lost', 'restored']);
    expect(registry.store.get('b')).toBeDefined();
  });

  it('refuses a second registration of an id, and close() removes what it registered and completes its watches', async () => {
    const registry = open();
    await registry.register(orders('c'), TIMING);
    await expect(open().register(orders('c'), TIMING)).rejects.toThrow(RegistrationError);
    let completed = false;
    registry.watch({ service: 'orders' }).subscribe({ complete: () => (completed = true) });
    let stateCompleted = false;
    registry.reachability.state$.subscribe({ complete: () => (stateCompleted = true) });
    await registry.close();
    expect(completed).toBe(true);
    expect(stateCompleted).toBe(true);
    expect(MemoryStore.named(STORE).get('c')).toBeUndefined();
  });
});
