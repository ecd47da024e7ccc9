/**
 * An index in [0, n) from a random source in [0, 1). Clamps a source that
 * returns exactly 1, which some injected test sources do.
 *
 * @example
 * const i = randomIndex(Math.random, endpoints.length);
 */
export function randomIndex(random: () => number, n: number): number {
  const i = Math.floor(random() * n);
  return i < n ? (i < 0 ? 0 : i) : n - 1;
}
