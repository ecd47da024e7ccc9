import type { PickerBuildContext } from '../../../../lib/balancing/picker.js';
import { LoadTracker } from '../../../../lib/balancing/endpoint-load.js';
import { createServiceInstance, endpointOf, type Endpoint } from '../../../../lib/core/index.js';

/**
 * mulberry32: a tiny seeded PRNG in [0, 1), so every statistical test sees
 * the same stream on every run.
 */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `n` endpoints of service `svc` on 10.0.x.y:50051, ids `svc-0` ..., with the given weights (default 1). */
export function makeEndpoints(n: number, weights?: readonly number[], prefix = 'svc'): Endpoint[] {
  return Array.from({ length: n }, (_, i) =>
    endpointOf(
      createServiceInstance({
        service: 'svc',
        id: `${prefix}-${i}`,
        address: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}:50051`,
        weight: weights?.[i] ?? 1,
      }),
    ),
  );
}

/**
 * An endpoint whose weight bypasses createServiceInstance's validation, as a
 * faulty registry record or a hand-built endpoint could carry.
 */
export function withRawWeight(endpoint: Endpoint, weight: number): Endpoint {
  return Object.freeze({ ...endpoint, weight });
}

/** A build context with a seeded random source and a fresh LoadTracker unless given. */
export function buildContext(
  seed: number,
  extra: Partial<PickerBuildContext> = {},
): PickerBuildContext & { loads: LoadTracker } {
  return { loads: new LoadTracker(), random: mulberry32(seed), ...extra } as PickerBuildContext & {
    loads: LoadTracker;
  };
}

/** How many times each endpoint (by key) was returned over `picks` picks. */
export function countPicks(pick: () => Endpoint | undefined, picks: number): Map<string, number> {
  const counts = new Map<string, number>();
  for (let i = 0; i < picks; i++) {
    const endpoint = pick();
    if (!endpoint) throw new Error('picker returned undefined for a non-empty set');
    counts.set(endpoint.key, (counts.get(endpoint.key) ?? 0) + 1);
  }
  return counts;
}
