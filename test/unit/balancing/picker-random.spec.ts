import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { advance, indexAt, otherIndexAt, randomIndex, seedFrom, unitAt } from '../../../lib/balancing/picker-random.js';

describe('picker random generator', () => {
  it('draws indices in range, and pairs of distinct indices', () => {
    fc.assert(
      fc.property(fc.integer(), fc.integer({ min: 2, max: 100_000 }), (state, n) => {
        const u = unitAt(state);
        expect(u).toBeGreaterThanOrEqual(0);
        expect(u).toBeLessThan(1);
        const first = indexAt(state, n);
        expect(first).toBeGreaterThanOrEqual(0);
        expect(first).toBeLessThan(n);
        const second = otherIndexAt(advance(state), first, n);
        expect(second).not.toBe(first);
        expect(second).toBeGreaterThanOrEqual(0);
        expect(second).toBeLessThan(n);
      }),
      { seed: 3, numRuns: 1_000 },
    );
  });

  it('is uniform over indices and over the second index of a pair', () => {
    const n = 10;
    const firsts = new Array<number>(n).fill(0);
    const gaps = new Array<number>(n).fill(0);
    let state = seedFrom(() => 0.123);
    for (let i = 0; i < 100_000; i++) {
      state = advance(state);
      const first = indexAt(state, n);
      state = advance(state);
      const second = otherIndexAt(state, first, n);
      firsts[first]++;
      gaps[(second - first + n) % n]++;
    }
    for (const count of firsts) expect(Math.abs(count - 10_000)).toBeLessThan(500);
    expect(gaps[0]).toBe(0);
    for (const count of gaps.slice(1)) expect(Math.abs(count - 100_000 / 9)).toBeLessThan(550);
  });

  it('clamps a build-time source that returns exactly 1', () => {
    expect(randomIndex(() => 1, 4)).toBe(3);
    expect(randomIndex(() => 0, 4)).toBe(0);
    expect(Number.isInteger(seedFrom(() => 1))).toBe(true);
  });
});
