/*
 * Randomness for pickers. Calling Math.random (or any injected () => number)
 * per pick boxes a heap number per call (with --trace-gc: ~300 scavenges per
 * 20 million picks, against none with this generator), so pickers that draw
 * per call run their own mulberry32 generator: an int32 state advanced in
 * place, seeded once per build from the injectable `PickerBuildContext.random`.
 * Same seed, same picks: tests stay deterministic, and a pick allocates nothing.
 */

/**
 * An index in [0, n) from a random source in [0, 1), for build-time choices.
 * Clamps a source that returns exactly 1, which some injected test sources do.
 *
 * @example
 * const start = randomIndex(context.random, endpoints.length);
 */
export function randomIndex(random: () => number, n: number): number {
  const i = Math.floor(random() * n);
  return i < n ? (i < 0 ? 0 : i) : n - 1;
}

/**
 * A generator state (int32) seeded from a random source in [0, 1).
 *
 * @example
 * this.state = seedFrom(context.random);
 */
export function seedFrom(random: () => number): number {
  return Math.floor(random() * 4294967296) | 0;
}

/**
 * The next generator state (mulberry32's Weyl step).
 *
 * @example
 * this.state = advance(this.state);
 */
export function advance(state: number): number {
  return (state + 0x6d2b79f5) | 0;
}

/**
 * The uniform 32-bit draw of a state (mulberry32's output mix), scaled to
 * [0, 1): exactly representable, never 1.
 *
 * @example
 * const u = unitAt(this.state);
 */
export function unitAt(state: number): number {
  let t = Math.imul(state ^ (state >>> 15), state | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}

/**
 * A uniform index in [0, n) drawn from a state.
 *
 * @example
 * this.state = advance(this.state); const i = indexAt(this.state, n);
 */
export function indexAt(state: number, n: number): number {
  return Math.floor(unitAt(state) * n);
}

/**
 * The second index of a random pair: uniform over the n - 1 indices other
 * than `first` (n >= 2).
 *
 * @example
 * const second = otherIndexAt(advance(this.state), first, n);
 */
export function otherIndexAt(state: number, first: number, n: number): number {
  const second = first + 1 + indexAt(state, n - 1);
  return second >= n ? second - n : second;
}
