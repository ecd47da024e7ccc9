import { describe, expect, it } from 'vitest';
import { hashString } from '../../../lib/balancing/string-hash.js';

describe('hashString', () => {
  it('is a stable unsigned 32-bit value, different per seed', () => {
    expect(hashString('user-42')).toBe(hashString('user-42'));
    expect(Number.isInteger(hashString('user-42'))).toBe(true);
    for (const text of ['', 'a', 'user-42', 'ключ', '🔑'.repeat(10)]) {
      const h = hashString(text);
      expect(h).toBeGreaterThanOrEqual(0);
      expect(h).toBeLessThan(2 ** 32);
    }
    expect(hashString('user-42', 1)).not.toBe(hashString('user-42'));
  });

  it('spreads near-identical keys evenly over a prime number of buckets', () => {
    const buckets = new Array<number>(101).fill(0);
    for (let i = 0; i < 101_000; i++) buckets[hashString(`user-${i}`) % 101]++;
    // 1000 expected per bucket; binomial sd ~31. A weak hash of sequential keys clumps far beyond this.
    for (const count of buckets) expect(Math.abs(count - 1000)).toBeLessThan(160);
  });

  it('changes about half the bits when one character changes', () => {
    let flipped = 0;
    for (let i = 0; i < 1000; i++) {
      let x = (hashString(`key-${i}`) ^ hashString(`key-${i + 1}`)) >>> 0;
      while (x) {
        flipped += x & 1;
        x >>>= 1;
      }
    }
    expect(flipped / 1000).toBeGreaterThan(14);
    expect(flipped / 1000).toBeLessThan(18);
  });
});
