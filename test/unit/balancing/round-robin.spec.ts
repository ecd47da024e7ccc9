import { describe, expect, it } from 'vitest';
import { RoundRobinPicker, RoundRobinStrategy } from '../../../lib/balancing/round-robin.strategy.js';
import { EndpointSet } from '../../../lib/core/index.js';
import { RandomStrategy } from '../../../lib/balancing/random.strategy.js';
import { buildContext, countPicks, makeEndpoints } from './support/balancing-fixtures.js';

describe('round_robin', () => {
  const strategy = new RoundRobinStrategy();

  it('is exactly fair over k·n picks', () => {
    for (const n of [1, 2, 7, 100]) {
      const endpoints = makeEndpoints(n);
      const picker = strategy.build(endpoints, buildContext(n));
      const counts = countPicks(() => picker.pick(), 13 * n);
      expect(counts.size).toBe(n);
      for (const count of counts.values()) expect(count).toBe(13);
    }
  });

  it('visits every endpoint once before repeating one', () => {
    const endpoints = makeEndpoints(9);
    const picker = strategy.build(endpoints, buildContext(3));
    const first = Array.from({ length: 9 }, () => picker.pick()!.key);
    expect(new Set(first).size).toBe(9);
    expect(Array.from({ length: 9 }, () => picker.pick()!.key)).toEqual(first);
  });

  it('starts at a random offset taken from the build context', () => {
    const endpoints = makeEndpoints(50);
    const starts = new Set<string>();
    for (let seed = 1; seed <= 20; seed++) starts.add(strategy.build(endpoints, buildContext(seed)).pick()!.key);
    expect(starts.size).toBeGreaterThan(5);
    expect(strategy.build(endpoints, buildContext(7)).pick()).toBe(strategy.build(endpoints, buildContext(7)).pick());
  });

  it('continues the rotation across a rebuild when the next endpoint is still present', () => {
    const endpoints = makeEndpoints(6);
    const first = strategy.build(endpoints, buildContext(1));
    first.pick();
    first.pick();
    const expected = endpoints.map((e) => e.key);
    const upcoming = expected.indexOf(first.pick()!.key) + 1;
    // Drop an endpoint that is not next: the new picker continues where the old one stopped.
    const removedIndex = (upcoming + 3) % 6;
    const next = strategy.build(
      endpoints.filter((_, i) => i !== removedIndex),
      buildContext(99, { previous: first }),
    );
    expect(next.pick()!.key).toBe(expected[upcoming % 6]);
  });

  it('continues at the next endpoint in key order when the one it would have picked next left', () => {
    const all = makeEndpoints(8);
    let set = EndpointSet.initial('svc').apply({ upserted: all });
    const first = strategy.build(set.endpoints, buildContext(1));
    const keys = set.endpoints.map((e) => e.key);
    const upcoming = (keys.indexOf(first.pick()!.key) + 1) % keys.length;
    set = set.apply({ removed: [keys[upcoming]] });
    const next = strategy.build(set.endpoints, buildContext(42, { previous: first }));
    expect(next.pick()!.key).toBe(keys[(upcoming + 1) % keys.length]);
  });

  it('after any sequence of changes, picks as a fresh picker started at the same endpoint would', () => {
    const all = makeEndpoints(40);
    let set = EndpointSet.initial('svc').apply({ upserted: all.slice(0, 30) });
    let picker = strategy.build(set.endpoints, buildContext(1));
    for (let step = 0; step < 10; step++) {
      for (let i = 0; i < 7; i++) picker.pick();
      set = set.apply({ removed: [set.endpoints[(step * 5) % set.size].key], upserted: [all[30 + step]] });
      picker = strategy.build(set.endpoints, buildContext(step, { previous: picker }));
    }
    const start = picker.pick()!;
    const fresh = new RoundRobinPicker(Array.from(set.endpoints), set.endpoints.indexOf(start));
    const sequence = [start.key, ...Array.from({ length: 100 }, () => picker.pick()!.key)];
    expect(Array.from({ length: 101 }, () => fresh.pick()!.key)).toEqual(sequence);
  });

  it('falls back to a random start when the previous picker is of another strategy', () => {
    const endpoints = makeEndpoints(40);
    const previous = new RandomStrategy().build(endpoints, buildContext(1));
    const a = strategy.build(endpoints, buildContext(5, { previous })).pick();
    const b = strategy.build(endpoints, buildContext(5)).pick();
    expect(a).toBe(b);
  });

  it('returns undefined for an empty endpoint list', () => {
    expect(strategy.build([], buildContext(1)).pick()).toBeUndefined();
  });
});

describe('random', () => {
  const strategy = new RandomStrategy();

  it('spreads picks evenly (within 2 percentage points over 100k picks)', () => {
    const endpoints = makeEndpoints(8);
    const picker = strategy.build(endpoints, buildContext(11));
    const counts = countPicks(() => picker.pick(), 100_000);
    expect(counts.size).toBe(8);
    for (const count of counts.values()) expect(Math.abs(count / 100_000 - 1 / 8)).toBeLessThan(0.02);
  });

  it('draws from its own generator seeded by the build context: same seed, same picks', () => {
    const endpoints = makeEndpoints(6);
    const sequence = (seed: number) => {
      const picker = strategy.build(endpoints, buildContext(seed));
      return Array.from({ length: 40 }, () => picker.pick()!.key).join();
    };
    expect(sequence(8)).toBe(sequence(8));
    expect(sequence(8)).not.toBe(sequence(9));
    for (const value of [0, 1]) {
      expect(endpoints).toContain(strategy.build(endpoints, { ...buildContext(1), random: () => value }).pick());
    }
  });

  it('returns undefined for an empty endpoint list', () => {
    expect(strategy.build([], buildContext(1)).pick()).toBeUndefined();
  });
});
