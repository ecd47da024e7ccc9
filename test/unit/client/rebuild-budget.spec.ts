import { afterEach, describe, expect, it } from 'vitest';
import { ConsistentHashStrategy } from '../../../lib/balancing/consistent-hash.strategy.js';
import type { BalancingStrategy } from '../../../lib/balancing/picker.js';
import { resolveOverload } from '../../../lib/core/config/overload-options.js';
import { compileQuery } from '../../../lib/core/discovery-query.js';
import { MAX_DEFER_MS, RebuildBudget } from '../../../lib/client/rebuild-budget.js';
import { ServedEndpoints } from '../../../lib/client/served-endpoints.js';
import { healthCheckerPool } from '../../../lib/health/endpoint-health-checker.js';
import { PASS_THROUGH_HEALTH } from '../../../lib/health/health-settings.js';
import { createServiceInstance } from '../../../lib/index.js';
import { MemoryRegistry, MemoryStore } from '../../../lib/testing.js';
import { waitFor } from '../../support/wait-for.js';

const quiet = { log() {}, warn() {}, error() {} };

describe('RebuildBudget', () => {
  it('allows rebuilds while it holds time, refills at its share of the clock, and caps the refill', () => {
    let now = 0;
    const budget = new RebuildBudget(0.2, 50, () => now);
    expect(budget.allows()).toBe(true);
    budget.spend(60);
    expect(budget.allows()).toBe(false);
    now += 40; // refills 8 ms: -10 + 8 < 0
    expect(budget.allows()).toBe(false);
    now += 20; // +4 ms: 2 > 0
    expect(budget.allows()).toBe(true);
    now += 10_000; // a long quiet spell refills to the cap, not beyond
    budget.spend(50);
    expect(budget.allows()).toBe(false);
  });

  it('makes a rebuild due once the picker has waited the longest deferral, whatever the budget', () => {
    let now = 1_000;
    const budget = new RebuildBudget(0, 50, () => now);
    budget.spend(100);
    expect(budget.due(1_000)).toBe(false);
    now += MAX_DEFER_MS - 1;
    expect(budget.due(1_000)).toBe(false);
    now += 1;
    expect(budget.due(1_000)).toBe(true);
  });
});

describe('ServedEndpoints over a spent rebuild budget', () => {
  const served: ServedEndpoints[] = [];
  afterEach(() => served.splice(0).forEach((s) => s.close()));

  function setUp(name: string) {
    MemoryStore.reset(name);
    const store = MemoryStore.named(name);
    let now = 0;
    const budget = new RebuildBudget(0, 50, () => now);
    let builds = 0;
    const maglev = new ConsistentHashStrategy();
    const strategy: BalancingStrategy = {
      name: 'counting_hash',
      usesKey: true,
      build: (endpoints, context) => {
        builds++;
        return maglev.build(endpoints, context);
      },
    };
    const s = new ServedEndpoints({
      service: 'svc',
      registry: new MemoryRegistry(store),
      query: compileQuery({ service: 'svc' }),
      locality: { zone: undefined, region: undefined },
      overload: resolveOverload(undefined),
      clientIndex: 0,
      strategy,
      random: Math.random,
      logger: quiet,
      health: PASS_THROUGH_HEALTH,
      checkers: healthCheckerPool,
      emit: () => undefined,
      rebuilds: budget,
    });
    served.push(s);
    const instance = (i: number, weight = 1) =>
      createServiceInstance({ service: 'svc', id: `i${i}`, address: `10.0.0.${i}:50051`, weight });
    return {
      store,
      served: s,
      budget,
      instance,
      builds: () => builds,
      advance: (ms: number) => (now += ms),
      maglev,
    };
  }

  const keys = Array.from({ length: 2_000 }, (_, i) => `user-${i}`);

  it('keeps the previous picker for newcomers, but never picks an endpoint that left', async () => {
    const t = setUp('deferred');
    for (let i = 1; i <= 10; i++) t.store.put(t.instance(i));
    await waitFor(() => t.served.snapshot.size === 10, { what: 'ten served' });
    t.served.pick({ key: 'k' });
    expect(t.builds()).toBe(1);
    t.budget.spend(1_000); // the process is over budget (a refill share of 0 keeps it so)

    t.store.put(t.instance(11));
    await waitFor(() => t.served.snapshot.size === 11, { what: 'the newcomer served' });
    const owners = keys.map((key) => t.served.pick({ key })!.address);
    expect(t.builds(), 'a newcomer waits for the budget').toBe(1);
    expect(owners).not.toContain('10.0.0.11:50051');

    t.store.delete('i3');
    await waitFor(() => t.served.snapshot.size === 10, { what: 'i3 gone' });
    const after = keys.map((key) => t.served.pick({ key })!.address);
    expect(after, 'a pick that would reach the departed endpoint rebuilds at once').not.toContain('10.0.0.3:50051');
    expect(t.builds()).toBe(2);
    // Once rebuilt, the table is the one every client builds from this set (the newcomer included).
    const scratch = t.maglev.build([...t.served.snapshot.endpoints], { loads: t.served.loads, random: Math.random });
    const rebuilt = keys.map((key) => t.served.pick({ key })!.address);
    expect(rebuilt).toEqual(keys.map((key) => scratch.pick({ key })!.address));
    expect(rebuilt).toContain('10.0.0.11:50051');
  });

  it('rebuilds a deferred picker once the longest deferral has passed', async () => {
    const t = setUp('deferred-max');
    for (let i = 1; i <= 5; i++) t.store.put(t.instance(i));
    await waitFor(() => t.served.snapshot.size === 5, { what: 'five served' });
    t.served.pick();
    t.budget.spend(1_000);
    t.store.put(t.instance(6));
    await waitFor(() => t.served.snapshot.size === 6, { what: 'the newcomer served' });
    t.served.picker.pick({ key: 'a' });
    expect(t.builds()).toBe(1);
    t.advance(MAX_DEFER_MS);
    t.served.picker.pick({ key: 'a' });
    expect(t.builds()).toBe(2);
    expect(new Set(keys.map((key) => t.served.pick({ key })!.address)).size).toBe(6);
  });

  it('rebuilds at once for an endpoint that changed (its old record is not handed out)', async () => {
    const t = setUp('deferred-update');
    for (let i = 1; i <= 4; i++) t.store.put(t.instance(i));
    await waitFor(() => t.served.snapshot.size === 4, { what: 'four served' });
    t.served.pick();
    t.budget.spend(1_000);
    t.store.put(t.instance(2, 5));
    await waitFor(() => t.served.snapshot.endpoints.find((e) => e.address === '10.0.0.2:50051')?.weight === 5, {
      what: 'the new weight served',
    });
    const picked = keys.map((key) => t.served.pick({ key })!);
    for (const endpoint of picked) expect(t.served.snapshot.get(endpoint.key)).toBe(endpoint);
    expect(t.builds()).toBe(2);
  });
});
