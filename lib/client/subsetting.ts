import type { EndpointSet } from '../core/endpoint-set.js';
import { hashString } from '../balancing/string-hash.js';

/**
 * Deterministic subsetting (Google SRE book, "Load Balancing in the
 * Datacenter"): clients are numbered 0, 1, 2 ...; with `size` endpoints per
 * client there are `floor(n / size)` subsets per round, each round orders the
 * endpoints by a hash seeded with the round number, and client `i` takes
 * subset `i mod subsets` of round `floor(i / subsets)`. Clients of one round
 * together use every endpoint exactly once, so every endpoint gets the same
 * number of clients. Ordering by hash (not a shuffle of the list) means an
 * endpoint joining or leaving shifts each subset by about one endpoint.
 *
 * @example
 * const mine = deterministicSubset(set, 20, clientIndex);
 */
export function deterministicSubset(set: EndpointSet, size: number, clientIndex: number): EndpointSet {
  if (size <= 0 || set.size <= size) return set;
  const subsets = Math.floor(set.size / size);
  const round = Math.floor(clientIndex / subsets);
  const subset = clientIndex % subsets;
  const ranked = set.endpoints
    .map((endpoint) => ({ key: endpoint.key, rank: hashString(endpoint.key, round) }))
    .sort((a, b) => a.rank - b.rank || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const chosen = new Set(ranked.slice(subset * size, subset * size + size).map((e) => e.key));
  return set.filter((endpoint) => chosen.has(endpoint.key));
}
