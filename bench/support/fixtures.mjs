// Endpoint sets and keys the pick, rebuild and memory benchmarks share, built
// the way a registry would build them (validated instances, EndpointSet).
import { EndpointSet, createServiceInstance } from '../../dist/core/index.js';

export const SERVICE = 'bench';

/**
 * The i-th instance of the benchmark service: a distinct address, a zone,
 * a version and one tag, weights 1..3 so the weighted strategies have real
 * work to do (the others ignore weights).
 */
export function benchInstance(i) {
  return createServiceInstance({
    service: SERVICE,
    id: `bench-${i.toString(36).padStart(4, '0')}`,
    address: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}:50051`,
    version: '1.4.2',
    tags: { tier: 'api' },
    metadata: { zone: `zone-${i % 3}` },
    weight: 1 + (i % 3),
  });
}

/** A resolved snapshot of `n` instances (revision 1). */
export function endpointSet(n, offset = 0) {
  const instances = new Array(n);
  for (let i = 0; i < n; i++) instances[i] = benchInstance(offset + i);
  return EndpointSet.of(SERVICE, instances);
}

/**
 * `count` distinct hash keys, created and flattened up front so that a
 * timed pick reads a ready string and key creation is never counted.
 */
export function hashKeys(count) {
  const keys = new Array(count);
  let flatten = 0;
  for (let i = 0; i < count; i++) {
    const key = `user-${(i * 2654435761) >>> 0}`;
    // Reading every character makes V8 flatten a concatenated string now, not in the timed loop.
    for (let c = 0; c < key.length; c++) flatten ^= key.charCodeAt(c);
    keys[i] = key;
  }
  if (flatten === -1) throw new Error('unreachable');
  return keys;
}

/** A deterministic random source (mulberry32), so every run draws the same sequence. */
export function seededRandom(seed = 0x5eed) {
  let a = seed >>> 0;
  return function random() {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
