import { afterEach, describe, expect, it } from 'vitest';
import { ConsistentHashStrategy } from '../../../lib/balancing/consistent-hash.strategy.js';
import type { BalancingStrategy } from '../../../lib/balancing/picker.js';
import { UpdateScheduler } from '../../../lib/client/update-scheduler.js';
import { createServiceInstance, Discovery } from '../../../lib/index.js';
import { MemoryRegistry, MemoryStore } from '../../../lib/testing.js';
import { waitFor } from '../../support/wait-for.js';

const quiet = { log() {}, warn() {}, error() {} };

/** Busy for `ms` of wall time: an update that costs that much. */
function spin(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end);
}

describe('UpdateScheduler', () => {
  it('runs an update at once while the turn has time left, then queues, coalescing per owner', async () => {
    const scheduler = new UpdateScheduler(5);
    const ran: string[] = [];
    const a = {};
    const b = {};
    scheduler.submit(a, () => ran.push('a1'));
    expect(ran).toEqual(['a1']);
    scheduler.submit(b, () => {
      ran.push('b1');
      spin(6);
    });
    // The turn's budget is spent: these wait for the next turn, a2 replaced by a3.
    scheduler.submit(a, () => ran.push('a2'));
    scheduler.submit(b, () => ran.push('b2'));
    scheduler.submit(a, () => ran.push('a3'));
    expect(ran).toEqual(['a1', 'b1']);
    expect(scheduler.backlog).toBe(2);
    await waitFor(() => scheduler.backlog === 0, { what: 'the queue drained' });
    expect(ran).toEqual(['a1', 'b1', 'a3', 'b2']);
  });

  it('spreads a burst over turns of the event loop, letting other callbacks run between them', async () => {
    const scheduler = new UpdateScheduler(4);
    const order: string[] = [];
    const owners = Array.from({ length: 10 }, () => ({}));
    for (const [i, owner] of owners.entries())
      scheduler.submit(owner, () => {
        spin(3);
        order.push(`u${i}`);
      });
    // An I/O-like callback queued now runs before the queue is done.
    setImmediate(() => order.push('io'));
    await waitFor(() => scheduler.backlog === 0, { what: 'the queue drained' });
    expect(order.filter((e) => e.startsWith('u'))).toHaveLength(10);
    const io = order.indexOf('io');
    expect(io).toBeGreaterThan(0);
    expect(io).toBeLessThan(order.length - 1);
    scheduler.cancel(owners[0]);
  });
});

describe('ServedEndpoints at scale', () => {
  const discoveries: Discovery[] = [];
  afterEach(async () => {
    await Promise.all(discoveries.splice(0).map((d) => d.close()));
  });

  it('rebuilds the picker once, on the first pick after a burst of changes, equal to a from-scratch build', async () => {
    MemoryStore.reset('lazy');
    const store = MemoryStore.named('lazy');
    const registry = new MemoryRegistry(store);
    let builds = 0;
    const maglev = new ConsistentHashStrategy();
    const counting: BalancingStrategy = {
      name: 'counting_hash',
      usesKey: true,
      build: (endpoints, context) => {
        builds++;
        return maglev.build(endpoints, context);
      },
    };
    const discovery = await Discovery.create(
      { backend: 'memory', loadBalance: 'counting_hash', outlierDetection: { enabled: false } },
      { registry, logger: quiet, strategies: [counting] },
    );
    discoveries.push(discovery);
    const instance = (i: number) =>
      createServiceInstance({ service: 'svc', id: `i${i}`, address: `10.0.0.${i}:50051` });
    for (let i = 1; i <= 5; i++) store.put(instance(i));
    const client = discovery.client('svc');
    await client.ready({ minEndpoints: 5 });
    client.pick({ key: 'k' });
    const afterFirst = builds;
    expect(afterFirst).toBe(1);
    for (let i = 6; i <= 40; i++) store.put(instance(i));
    for (let i = 1; i <= 10; i++) store.delete(`i${i}`);
    await waitFor(() => client.snapshot().size === 30, { what: 'the burst served' });
    expect(builds).toBe(afterFirst);
    const keys = Array.from({ length: 500 }, (_, i) => `user-${i}`);
    const owners = keys.map((key) => client.pick({ key }).key);
    expect(builds).toBe(afterFirst + 1);
    const scratch = maglev.build([...client.snapshot().endpoints].reverse(), {
      loads: client.loads,
      random: Math.random,
    });
    expect(keys.map((key) => scratch.pick({ key })!.key)).toEqual(owners);
  });

  it('keeps serving a drained endpoint known but not picked, through diffs', async () => {
    MemoryStore.reset('marks');
    const store = MemoryStore.named('marks');
    const registry = new MemoryRegistry(store);
    const discovery = await Discovery.create(
      { backend: 'memory', loadBalance: 'round_robin' },
      { registry, logger: quiet },
    );
    discoveries.push(discovery);
    const instance = (i: number, weight = 1) =>
      createServiceInstance({ service: 'svc', id: `i${i}`, address: `10.0.0.${i}:50051`, weight });
    for (let i = 1; i <= 3; i++) store.put(instance(i));
    const client = discovery.client('svc');
    await client.ready({ minEndpoints: 3 });
    store.put(instance(2, 0));
    await waitFor(() => client.snapshot().size === 2, { what: 'the drained endpoint out of the served set' });
    expect(client.describeEndpoints().map((r) => [r.endpoint.port, r.health]).length).toBe(3);
    store.put(instance(2, 1));
    await waitFor(() => client.snapshot().size === 3, { what: 'the endpoint back' });
    expect(new Set(Array.from({ length: 6 }, () => client.pick().address)).size).toBe(3);
  });
});
