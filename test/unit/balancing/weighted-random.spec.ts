import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InvalidWeightError } from '../../../lib/balancing/endpoint-weights.js';
import { WeightedRandomPicker, WeightedRandomStrategy } from '../../../lib/balancing/weighted-random.strategy.js';
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
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: 0.01, max: 100, noNaN: true }), { minLength: 1, maxLength: 50 }),
        (weights) => {
          const endpoints = makeEndpoints(weights.length, weights);
          const picker = strategy.build(endpoints, buildContext(1)) as WeightedRandomPicker;
          const total = weights.reduce((a, b) => a + b, 0);
          const probabilities = picker.probabilities();
          weights.forEach((w, i) => expect(probabilities[i]).toBeCloseTo(w / total, 9));
        },
      ),
      { seed: 5, numRuns: 200 },
    );
  });

  it('draws from its own generator seeded by the build context: same seed, same picks', () => {
    const endpoints = makeEndpoints(5, [1, 2, 3, 4, 5]);
    const sequence = (seed: number) => {
      const picker = strategy.build(endpoints, buildContext(seed));
      return Array.from({ length: 50 }, () => picker.pick()!.key).join();
    };
    expect(sequence(3)).toBe(sequence(3));
    expect(sequence(3)).not.toBe(sequence(4));
    // A degenerate source (always 1) still yields a working picker.
    expect(endpoints).toContain(strategy.build(endpoints, { ...buildContext(1), random: () => 1 }).pick());
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
