import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InvalidWeightError } from '../../../lib/balancing/endpoint-weights.js';
import { WeightedRandomStrategy } from '../../../lib/balancing/weighted-random.strategy.js';
import { buildContext, countPicks, makeEndpoints, withRawWeight } from './support/balancing-fixtures.js';

const strategy = new WeightedRandomStrategy();

describe('weighted_random', () => {
  it('lands within ±2% of each weight over 100k picks', () => {
    for (const weights of [
      [1, 2, 3, 4],
      [10, 1, 1],
      [0.25, 0.75, 2.5],
    ]) {
      const endpoints = makeEndpoints(weights.length, weights);
      const picker = strategy.build(endpoints, buildContext(17));
      const counts = countPicks(() => picker.pick(), 100_000);
      const total = weights.reduce((a, b) => a + b, 0);
      // Relative to the expected count, with a 2 percentage point floor for the smallest shares
      // (binomial noise of a 2% share over 100k picks is already ~1.6% relative).
      endpoints.forEach((e, i) => {
        const share = counts.get(e.key)! / 100_000;
        const expected = weights[i] / total;
        expect(Math.abs(share - expected)).toBeLessThanOrEqual(Math.max(0.02 * expected, 0.002));
      });
    }
  });

  it('builds an alias table whose exact probabilities equal the weight shares', () => {
    // Feeding an even grid of random values measures the table itself, free of sampling noise.
    fc.assert(
      fc.property(fc.array(fc.double({ min: 0.01, max: 100, noNaN: true }), { minLength: 1, maxLength: 20 }), (weights) => {
        const endpoints = makeEndpoints(weights.length, weights);
        const grid = 10_000 * weights.length;
        let k = 0;
        const picker = strategy.build(endpoints, { ...buildContext(1), random: () => (k++ + 0.5) / grid });
        const counts = countPicks(() => picker.pick(), grid);
        const total = weights.reduce((a, b) => a + b, 0);
        endpoints.forEach((e, i) => {
          expect(Math.abs((counts.get(e.key) ?? 0) / grid - weights[i] / total)).toBeLessThan(1e-4 * weights.length);
        });
      }),
      { seed: 5, numRuns: 40 },
    );
  });

  it('clamps a random source that returns exactly 1', () => {
    const endpoints = makeEndpoints(3, [1, 1, 1]);
    expect(strategy.build(endpoints, { ...buildContext(1), random: () => 1 }).pick()).toBe(endpoints[2]);
  });

  it('rejects zero or negative weights, naming the instance id', () => {
    const endpoints = makeEndpoints(2);
    endpoints[0] = withRawWeight(endpoints[0], -3);
    expect(() => strategy.build(endpoints, buildContext(1))).toThrow(InvalidWeightError);
    expect(() => strategy.build(endpoints, buildContext(1))).toThrow(/"svc-0".*-3|-3.*"svc-0"/);
  });

  it('returns undefined for an empty endpoint list', () => {
    expect(strategy.build([], buildContext(1)).pick()).toBeUndefined();
  });
});
