// Small statistics helpers shared by the benchmark workers and the runner.

/** Median of a list of numbers (NaN for an empty list). */
export function median(values) {
  return percentile(values, 50);
}

/**
 * The p-th percentile (0..100) by linear interpolation between closest ranks.
 * Works on a sorted copy, so the input is left as it is.
 */
export function percentile(values, p) {
  const n = values.length;
  if (n === 0) return Number.NaN;
  const sorted = Float64Array.from(values).sort();
  const rank = (p / 100) * (n - 1);
  const low = Math.floor(rank);
  const high = Math.min(n - 1, low + 1);
  return sorted[low] + (sorted[high] - sorted[low]) * (rank - low);
}

/** Rounds to `digits` decimals (numbers only; anything else is returned as is). */
export function round(value, digits = 1) {
  if (typeof value !== 'number' || !Number.isFinite(value)) return value;
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

/**
 * Resolves once pending PerformanceObserver deliveries have run: a GC entry
 * reaches its observer only on the second turn of the event loop after the
 * collection, so wait two turns and a timer tick.
 */
export async function settle() {
  await new Promise((resolve) => setImmediate(resolve));
  await new Promise((resolve) => setImmediate(resolve));
  await new Promise((resolve) => setTimeout(resolve, 1));
}

/**
 * The order of round `round` when every round starts with the next item
 * (a b c, b c a, c a b, ...): over the rounds each item runs first, second
 * and last alike, so warm-up and drift favour none of them.
 */
export function roundOrder(items, round) {
  return items.map((_, i) => items[(i + round) % items.length]);
}
