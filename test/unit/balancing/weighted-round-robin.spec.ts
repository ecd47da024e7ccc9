import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InvalidWeightError } from '../../../lib/balancing/endpoint-weights.js';
import {
  WeightedRoundRobinSchedulePicker,
  WeightedRoundRobinStrategy,
  WeightedRoundRobinTreePicker,
} from '../../../lib/balancing/weighted-round-robin.strategy.js';
import { EndpointSet, type Endpoint } from '../../../lib/core/index.js';
import { buildContext, countPicks, makeEndpoints, withRawWeight } from './support/balancing-fixtures.js';

const strategy = new WeightedRoundRobinStrategy();

/** Longest run of consecutive picks of each endpoint, reading the sequence as a cycle (runs may wrap). */
function longestRuns(sequence: readonly number[], n: number): number[] {
  const runs = new Array<number>(n).fill(0);
  const doubled = sequence.concat(sequence);
  let run = 0;
  for (let k = 0; k < doubled.length; k++) {
    run = k > 0 && doubled[k] === doubled[k - 1] ? run + 1 : 1;
    runs[doubled[k]] = Math.max(runs[doubled[k]], Math.min(run, sequence.length));
  }
  return runs;
}

function indices(endpoints: readonly Endpoint[], pick: () => Endpoint | undefined, picks: number): number[] {
  const index = new Map(endpoints.map((e, i) => [e.key, i]));
  return Array.from({ length: picks }, () => index.get(pick()!.key)!);
}

/**
 * The smoothness bound: ceil(w/Σw·n) + 1 consecutive picks, or, when one
 * endpoint holds more than (n-1)/n of the weight and that is impossible,
 * ceil(w/(Σw-w)) + 1 (its picks split evenly between everyone else's).
 */
function runBound(weights: readonly number[], i: number): number {
  const total = weights.reduce((a, b) => a + b, 0);
  const byShare = Math.ceil((weights[i] / total) * weights.length);
  const byOthers = total > weights[i] ? Math.ceil(weights[i] / (total - weights[i])) : Infinity;
  return Math.max(byShare, byOthers) + 1;
}

describe('weighted_round_robin', () => {
  it('lands within ±2% of each weight over 100k picks (integer, decimal and irrational weights)', () => {
    for (const weights of [
      [1, 2, 3, 4],
      [5, 1, 1],
      [0.5, 1.25, 3.75, 2],
      [Math.SQRT2, 1, Math.PI, 1 / 3],
    ]) {
      const endpoints = makeEndpoints(weights.length, weights);
      const picker = strategy.build(endpoints, buildContext(1));
      const counts = countPicks(() => picker.pick(), 100_000);
      const total = weights.reduce((a, b) => a + b, 0);
      endpoints.forEach((e, i) => {
        const expected = (100_000 * weights[i]) / total;
        expect(Math.abs(counts.get(e.key)! - expected) / expected).toBeLessThan(0.02);
      });
    }
  });

  it('picks every endpoint exactly w times in any Σw consecutive picks', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: 20 }), { minLength: 1, maxLength: 12 }),
        fc.nat(1000),
        (weights, seed) => {
          const endpoints = makeEndpoints(weights.length, weights);
          const picker = strategy.build(endpoints, buildContext(seed));
          const total = weights.reduce((a, b) => a + b, 0);
          const skipped = seed % total;
          for (let i = 0; i < skipped; i++) picker.pick();
          const counts = countPicks(() => picker.pick(), total);
          endpoints.forEach((e, i) => expect(counts.get(e.key)).toBe(weights[i]));
        },
      ),
      { seed: 42, numRuns: 200 },
    );
  });

  it('never sends more than ceil(w/Σw·n)+1 consecutive picks to one endpoint in a cycle', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 100 }), { minLength: 1, maxLength: 16 }), (weights) => {
        const endpoints = makeEndpoints(weights.length, weights);
        const total = weights.reduce((a, b) => a + b, 0);
        const picker = strategy.build(endpoints, buildContext(1));
        const cycle = indices(endpoints, () => picker.pick(), total);
        const runs = longestRuns(cycle, weights.length);
        weights.forEach((_, i) => expect(runs[i]).toBeLessThanOrEqual(runBound(weights, i)));
        // Where the share bound is achievable (no endpoint above (n-1)/n of the weight) it holds as stated.
        weights.forEach((w, i) => {
          if (w / total <= 1 - 1 / weights.length) {
            expect(runs[i]).toBeLessThanOrEqual(Math.ceil((w / total) * weights.length) + 1);
          }
        });
      }),
      { seed: 7, numRuns: 300 },
    );
  });

  it('interleaves a heavy endpoint with many light ones instead of bursting', () => {
    const weights = [100, 1, 1, 1, 1, 1, 1, 1, 1, 1];
    const endpoints = makeEndpoints(weights.length, weights);
    const picker = strategy.build(endpoints, buildContext(3));
    const runs = longestRuns(
      indices(endpoints, () => picker.pick(), 109),
      10,
    );
    expect(runs[0]).toBeLessThanOrEqual(12);
    expect(runs.slice(1).every((r) => r === 1)).toBe(true);
  });

  it('precomputes the cycle for integer weights and walks the tree otherwise, with the same sequence', () => {
    const integral = makeEndpoints(5, [3, 1, 4, 1, 5]);
    expect(strategy.build(integral, buildContext(1))).toBeInstanceOf(WeightedRoundRobinSchedulePicker);
    const irrational = makeEndpoints(3, [Math.SQRT2, 1, 1 / 3]);
    expect(strategy.build(irrational, buildContext(1))).toBeInstanceOf(WeightedRoundRobinTreePicker);
    const huge = makeEndpoints(2, [1_000_003, 1]);
    expect(strategy.build(huge, buildContext(1))).toBeInstanceOf(WeightedRoundRobinTreePicker);
    // Short decimals are proportions of integers: 0.5 : 1.25 is 2 : 5, a 7-pick cycle.
    const decimal = makeEndpoints(2, [0.5, 1.25]);
    const picker = strategy.build(decimal, buildContext(1));
    expect(picker).toBeInstanceOf(WeightedRoundRobinSchedulePicker);
    const counts = countPicks(() => picker.pick(), 7);
    expect([counts.get(decimal[0].key), counts.get(decimal[1].key)]).toEqual([2, 5]);
    // The stored cycle is the tree's own sequence.
    const tree = new WeightedRoundRobinTreePicker(integral, 0);
    const schedule = strategy.build(integral, { ...buildContext(1), random: () => 0 });
    for (let i = 0; i < 3 * 14; i++) expect(schedule.pick()).toBe(tree.pick());
  });

  it('starts at phase t exactly as a picker that made t picks (counters set in closed form, not walked)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: 9 }), { minLength: 1, maxLength: 12 }),
        fc.nat({ max: 500 }),
        (weights, t) => {
          const endpoints = makeEndpoints(weights.length, weights);
          const walked = new WeightedRoundRobinTreePicker(endpoints, 0);
          for (let i = 0; i < t; i++) walked.nextIndex();
          const started = new WeightedRoundRobinTreePicker(endpoints, t);
          const total = weights.reduce((a, b) => a + b, 0);
          for (let i = 0; i < 2 * total; i++) expect(started.nextIndex()).toBe(walked.nextIndex());
        },
      ),
      { numRuns: 200 },
    );
    // Irrational weights too: the phase uses the very comparison a pick makes.
    const irrational = makeEndpoints(3, [Math.SQRT2, 1, 1 / 3]);
    const walked = new WeightedRoundRobinTreePicker(irrational, 0);
    for (let i = 0; i < 77; i++) walked.nextIndex();
    const started = new WeightedRoundRobinTreePicker(irrational, 77);
    for (let i = 0; i < 100; i++) expect(started.nextIndex()).toBe(walked.nextIndex());
  });

  it('a rebuild after a change equals a from-scratch build and keeps exact shares over the next Σw picks', () => {
    const weights = Array.from({ length: 30 }, (_, i) => 1 + (i % 4));
    const all = makeEndpoints(30, weights);
    let set = EndpointSet.initial('svc').apply({ upserted: all.slice(0, 25) });
    const first = strategy.build(set.endpoints, buildContext(1));
    for (let i = 0; i < 17; i++) first.pick();
    set = set.apply({ removed: [all[3].key, all[7].key], upserted: all.slice(25) });
    const rebuilt = strategy.build(set.endpoints, buildContext(9, { previous: first }));
    const scratch = strategy.build(
      [...set.endpoints].reverse().sort((a, b) => (a.key < b.key ? -1 : 1)),
      buildContext(9),
    );
    const total = set.endpoints.reduce((sum, e) => sum + e.weight, 0);
    const sequence = Array.from({ length: total }, () => rebuilt.pick()!.key);
    expect(Array.from({ length: total }, () => scratch.pick()!.key)).toEqual(sequence);
    const counts = new Map<string, number>();
    for (const key of sequence) counts.set(key, (counts.get(key) ?? 0) + 1);
    for (const endpoint of set.endpoints) expect(counts.get(endpoint.key)).toBe(endpoint.weight);
  });

  it('stores the cycle as it walks it: the second pass repeats the first', () => {
    const endpoints = makeEndpoints(7, [5, 1, 3, 1, 2, 2, 1]);
    const picker = strategy.build(endpoints, buildContext(4));
    expect(picker).toBeInstanceOf(WeightedRoundRobinSchedulePicker);
    const first = Array.from({ length: 15 }, () => picker.pick()!.key);
    expect(Array.from({ length: 15 }, () => picker.pick()!.key)).toEqual(first);
  });

  it('gives the same sequence when every weight is scaled by the same factor', () => {
    const small = makeEndpoints(4, [2, 3, 5, 7]);
    const large = makeEndpoints(4, [200_000, 300_000, 500_000, 700_000]);
    const a = strategy.build(small, { ...buildContext(1), random: () => 0 });
    const b = strategy.build(large, { ...buildContext(1), random: () => 0 });
    expect(b).toBeInstanceOf(WeightedRoundRobinSchedulePicker);
    for (let i = 0; i < 51; i++) expect(a.pick()!.key).toBe(b.pick()!.key);
  });

  it('starts at a random phase so clients built together do not move in lockstep', () => {
    const endpoints = makeEndpoints(
      20,
      Array.from({ length: 20 }, (_, i) => 1 + (i % 3)),
    );
    const firsts = new Set<string>();
    for (let seed = 1; seed <= 20; seed++) firsts.add(strategy.build(endpoints, buildContext(seed)).pick()!.key);
    expect(firsts.size).toBeGreaterThan(5);
  });

  it('handles a single endpoint and 10,000 endpoints', () => {
    const one = makeEndpoints(1, [7]);
    const single = strategy.build(one, buildContext(1));
    expect([single.pick(), single.pick()]).toEqual([one[0], one[0]]);
    const weights = Array.from({ length: 10_000 }, (_, i) => 1 + (i % 7));
    const many = makeEndpoints(10_000, weights);
    const picker = strategy.build(many, buildContext(2));
    const counts = countPicks(
      () => picker.pick(),
      weights.reduce((a, b) => a + b, 0),
    );
    expect(many.every((e, i) => counts.get(e.key) === weights[i])).toBe(true);
  });

  it('rejects zero, negative and non-finite weights, naming the instance id', () => {
    for (const bad of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
      const endpoints = makeEndpoints(3);
      endpoints[1] = withRawWeight(endpoints[1], bad);
      expect(() => strategy.build(endpoints, buildContext(1))).toThrow(InvalidWeightError);
      expect(() => strategy.build(endpoints, buildContext(1))).toThrow(/svc-1/);
    }
  });

  it('returns undefined for an empty endpoint list', () => {
    expect(strategy.build([], buildContext(1)).pick()).toBeUndefined();
  });
});
