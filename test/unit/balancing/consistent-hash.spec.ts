import { describe, expect, it } from 'vitest';
import { InvalidWeightError } from '../../../lib/balancing/endpoint-weights.js';
import { onCallEnd, onCallStart } from '../../../lib/balancing/endpoint-load.js';
import {
  ConsistentHashStrategy,
  DEFAULT_TABLE_SIZE,
  MaglevPicker,
  tableSizeFor,
} from '../../../lib/balancing/consistent-hash.strategy.js';
import type { Picker } from '../../../lib/balancing/picker.js';
import { ConfigurationError, EndpointSet, type Endpoint } from '../../../lib/core/index.js';
import { buildContext, countPicks, makeEndpoints, mulberry32, withRawWeight } from './support/balancing-fixtures.js';

const strategy = new ConsistentHashStrategy();
const KEYS = Array.from({ length: 20_000 }, (_, i) => `user-${i}`);

function owners(picker: Picker, keys: readonly string[] = KEYS): string[] {
  return keys.map((key) => picker.pick({ key })!.key);
}

function movedShare(before: readonly string[], after: readonly string[]): number {
  let moved = 0;
  for (let i = 0; i < before.length; i++) if (before[i] !== after[i]) moved++;
  return moved / before.length;
}

describe('consistent_hash (Maglev)', () => {
  it('maps the same key to the same endpoint while membership is unchanged, whatever the order or client', () => {
    const endpoints = makeEndpoints(25);
    const first = owners(strategy.build(endpoints, buildContext(1)));
    expect(owners(strategy.build(endpoints, buildContext(1)))).toEqual(first);
    // Another client with another random source and the list in another order agrees.
    const shuffled = [...endpoints].reverse();
    expect(owners(strategy.build(shuffled, buildContext(99)))).toEqual(first);
    const picker = strategy.build(endpoints, buildContext(2));
    expect(picker.pick({ key: 'user-7' })).toBe(picker.pick({ key: 'user-7' }));
  });

  for (const n of [10, 50]) {
    it(`moves at most 2/N of 20k keys when one of N=${n} endpoints leaves or joins`, () => {
      const endpoints = makeEndpoints(n + 1);
      const base = endpoints.slice(0, n);
      const before = owners(strategy.build(base, buildContext(1)));
      // Remove one (a middle one, so it is not an edge case of ordering).
      const removed = base[Math.floor(n / 2)];
      const without = owners(
        strategy.build(
          base.filter((e) => e !== removed),
          buildContext(1),
        ),
      );
      expect(movedShare(before, without)).toBeLessThanOrEqual(2 / n);
      // Only keys of the removed endpoint must move; they all do.
      before.forEach((owner, i) => {
        if (owner === removed.key) expect(without[i]).not.toBe(removed.key);
      });
      // Add one.
      const added = owners(strategy.build(endpoints, buildContext(1)));
      expect(movedShare(before, added)).toBeLessThanOrEqual(2 / n);
      expect(added.filter((owner) => owner === endpoints[n].key).length / KEYS.length).toBeGreaterThan(0.5 / (n + 1));
    });
  }

  it('spreads keys evenly and in proportion to weight', () => {
    const even = makeEndpoints(10);
    const counts = countPicks(
      (() => {
        const picker = strategy.build(even, buildContext(1));
        let i = 0;
        return () => picker.pick({ key: KEYS[i++] });
      })(),
      KEYS.length,
    );
    for (const e of even) expect(Math.abs(counts.get(e.key)! / KEYS.length - 0.1)).toBeLessThan(0.015);
    const weights = [1, 2, 3, 4];
    const weighted = makeEndpoints(4, weights);
    const picker = strategy.build(weighted, buildContext(1));
    const shares = new Map<string, number>();
    for (const owner of owners(picker)) shares.set(owner, (shares.get(owner) ?? 0) + 1 / KEYS.length);
    weighted.forEach((e, i) => expect(Math.abs(shares.get(e.key)! - weights[i] / 10)).toBeLessThan(0.02));
  });

  it('sizes the table by endpoint count (at least 100 slots each, capped), the same in every client; tableSize pins it', () => {
    expect(DEFAULT_TABLE_SIZE).toBe(65_537);
    const sizes = [1, 40, 41, 164, 165, 655, 656, 10_000].map((n) => [n, tableSizeFor(n)]);
    expect(sizes).toEqual([
      [1, 4_099],
      [40, 4_099],
      [41, 16_411],
      [164, 16_411],
      [165, 65_537],
      [655, 65_537],
      [656, 65_537],
      [10_000, 65_537],
    ]);
    for (const n of [1, 3, 100, 700]) {
      const picker = strategy.build(makeEndpoints(n), buildContext(1)) as MaglevPicker;
      expect(picker.size).toBe(tableSizeFor(n));
      expect(picker.size).toBeGreaterThanOrEqual(Math.min(100 * n, DEFAULT_TABLE_SIZE));
    }
    const custom = new ConsistentHashStrategy({ tableSize: 1000 });
    for (const n of [3, 300]) expect((custom.build(makeEndpoints(n), buildContext(1)) as MaglevPicker).size).toBe(1009);
  });

  it('moves nearly every key once when the size crosses a rung of the ladder, and none beyond the share with tableSize pinned', () => {
    const endpoints = makeEndpoints(41);
    const before = owners(strategy.build(endpoints.slice(0, 40), buildContext(1)));
    const after = owners(strategy.build(endpoints, buildContext(1)));
    // 4,099 -> 16,411 slots: the table starts afresh (documented; tableSize avoids it).
    expect(movedShare(before, after)).toBeGreaterThan(0.5);
    const pinned = new ConsistentHashStrategy({ tableSize: 16_411 });
    const pinnedBefore = owners(pinned.build(endpoints.slice(0, 40), buildContext(1)));
    const pinnedAfter = owners(pinned.build(endpoints, buildContext(1)));
    expect(movedShare(pinnedBefore, pinnedAfter)).toBeLessThanOrEqual(2 / 40);
  });

  it('builds the same table whatever sequence of changes led to the set (a rebuild equals a from-scratch build)', () => {
    const all = makeEndpoints(60);
    // One client saw 0..49, then lost 10 and gained 10 more; another built from the final set at once.
    let set = EndpointSet.initial('svc').apply({ upserted: all.slice(0, 50) });
    const seen = strategy.build(set.endpoints, buildContext(1));
    set = set.apply({ removed: all.slice(0, 10).map((e) => e.key), upserted: all.slice(50) });
    const rebuilt = strategy.build(set.endpoints, buildContext(2, { previous: seen }));
    const scratch = strategy.build([...all.slice(10)].reverse(), buildContext(3));
    expect(owners(rebuilt)).toEqual(owners(scratch));
  });

  it('without a key (or with an empty one) falls back to the less loaded of two random endpoints', () => {
    const endpoints = makeEndpoints(2);
    const context = buildContext(5);
    for (let i = 0; i < 4; i++) onCallStart(context.loads.load(endpoints[0]));
    const picker = strategy.build(endpoints, context);
    expect(countPicks(() => picker.pick(), 200).get(endpoints[1].key)).toBe(200);
    expect(countPicks(() => picker.pick({ key: '' }), 200).get(endpoints[1].key)).toBe(200);
    expect(countPicks(() => picker.pick({}), 200).get(endpoints[1].key)).toBe(200);
  });

  /** Half the calls carry one hot key; calls end at random, keeping up to 40 in flight. Returns the worst overshoot of the bound. */
  function hotKeyRun(factor: number | undefined): { overshoot: number; spilled: number } {
    const n = 8;
    const endpoints = makeEndpoints(n);
    const context = buildContext(6);
    const picker = new ConsistentHashStrategy({ boundedLoadFactor: factor }).build(endpoints, context);
    const hotOwner = (picker as MaglevPicker).slotOwner('hot');
    const random = mulberry32(77);
    const open: Endpoint[] = [];
    let overshoot = Number.NEGATIVE_INFINITY;
    let spilled = 0;
    for (let step = 0; step < 20_000; step++) {
      const key = random() < 0.5 ? 'hot' : `key-${Math.floor(random() * 1000)}`;
      const endpoint = picker.pick({ key })!;
      if (key === 'hot' && endpoint !== hotOwner) spilled++;
      onCallStart(context.loads.load(endpoint));
      open.push(endpoint);
      const bound = Math.ceil((1.25 * context.loads.totalInFlight()) / n);
      overshoot = Math.max(overshoot, context.loads.load(endpoint).inFlight - bound);
      while (open.length > 40 || (open.length > 0 && random() < 0.45)) {
        const done = open.splice(Math.floor(random() * open.length), 1)[0];
        onCallEnd(context.loads.load(done), 1, step);
      }
    }
    expect(context.loads.totalInFlight()).toBe(open.length);
    return { overshoot, spilled };
  }

  it('with bounded load, no endpoint ever exceeds ceil(c × average in flight), even for one hot key', () => {
    const bounded = hotKeyRun(1.25);
    expect(bounded.overshoot).toBeLessThanOrEqual(0);
    expect(bounded.spilled).toBeGreaterThan(0);
    // The same traffic without the bound overloads the hot key's endpoint.
    const unbounded = hotKeyRun(undefined);
    expect(unbounded.overshoot).toBeGreaterThan(0);
    expect(unbounded.spilled).toBe(0);
  });

  it('keeps the hot key on its endpoint while that endpoint is under its bound', () => {
    const endpoints = makeEndpoints(4);
    const context = buildContext(7);
    const picker = new ConsistentHashStrategy({ boundedLoadFactor: 1.25 }).build(endpoints, context);
    const owner = (picker as MaglevPicker).slotOwner('sticky');
    expect(picker.pick({ key: 'sticky' })).toBe(owner);
    for (const e of endpoints) onCallStart(context.loads.load(e));
    expect(picker.pick({ key: 'sticky' })).toBe(owner);
  });

  it('rejects zero or negative weights at build, naming the instance id', () => {
    for (const bad of [0, -2]) {
      const endpoints = makeEndpoints(4);
      endpoints[2] = withRawWeight(endpoints[2], bad);
      expect(() => strategy.build(endpoints, buildContext(1))).toThrow(InvalidWeightError);
      expect(() => strategy.build(endpoints, buildContext(1))).toThrow(/instance "svc-2"/);
    }
  });

  it('rejects a bounded-load factor below 1 and a bad table size', () => {
    expect(() => new ConsistentHashStrategy({ boundedLoadFactor: 0.9 })).toThrow(ConfigurationError);
    expect(() => new ConsistentHashStrategy({ boundedLoadFactor: 0.9 })).toThrow(/boundedLoadFactor/);
    expect(() => new ConsistentHashStrategy({ tableSize: 1.5 })).toThrow(/tableSize/);
  });

  it('builds for 10,000 endpoints and still answers every key', () => {
    const endpoints = makeEndpoints(10_000);
    const picker = strategy.build(endpoints, buildContext(1));
    const seen = new Set(owners(picker, KEYS.slice(0, 5_000)));
    expect(seen.size).toBeGreaterThan(3_000);
  });

  it('returns the only endpoint of a one-endpoint set and undefined for an empty one', () => {
    const one = makeEndpoints(1);
    expect(strategy.build(one, buildContext(1)).pick({ key: 'k' })).toBe(one[0]);
    expect(strategy.build([], buildContext(1)).pick({ key: 'k' })).toBeUndefined();
  });
});
