import type { Endpoint } from '../core/endpoint.js';
import { ConfigurationError } from '../core/errors.js';
import { EMPTY_PICKER } from './empty-picker.js';
import { loadRecordsOf } from './endpoint-load.js';
import { assertPositiveWeights } from './endpoint-weights.js';
import { lessLoadedOfTwo } from './least-connections.strategy.js';
import type { BalancingStrategy, EndpointLoad, LoadSource, PickContext, Picker, PickerBuildContext } from './picker.js';
import { advance, seedFrom } from './picker-random.js';
import { hashString } from './string-hash.js';

/*
 * Maglev hashing (Eisenbud et al., NSDI 2016) rather than a ring: a pick is
 * one hash and one table read (O(1), no binary search), and the table spreads
 * keys evenly without hundreds of virtual nodes per endpoint.
 *
 * Table size: a constant prime, 65,537 by default (Envoy's default too). It
 * must not depend on the endpoint count, or every membership change would
 * remap every key, and it must be the same in every client, so that all
 * clients send a key to the same endpoint. 65,537 slots give ~100 slots per
 * endpoint up to 655 endpoints (the paper's advice for near-minimal
 * disruption) and still ~6.5 per endpoint at 10,000 (key shares within
 * ±8%, which bounded load evens out); filling it costs about M·ln M probes,
 * a few ms, at any size. `tableSize` raises it for very large sets.
 */

/** Default table size (a prime): Uint16 slots, 128 KB per picker. */
export const DEFAULT_TABLE_SIZE = 65_537;

/** Endpoints a table can hold (the canonical sort packs the index in 20 bits). */
const MAX_ENDPOINTS = 2 ** 20;

/** Seed of the endpoint hash, distinct from the key hash so the two are unrelated. */
const ENDPOINT_SEED = 0x9e3779b9;

function nextPrime(x: number): number {
  const isPrime = (p: number) => {
    if (p < 2) return false;
    if (p % 2 === 0) return p === 2;
    for (let d = 3; d * d <= p; d += 2) if (p % d === 0) return false;
    return true;
  };
  while (!isPrime(x)) x++;
  return x;
}

/** A second, independent 32-bit value from a hash (murmur3 fmix32 of a re-seeded value). */
function remix(h: number): number {
  h = (h ^ 0x5bd1e995) >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * Fills a Maglev lookup table: endpoints take turns claiming the next free
 * slot of their own permutation (offset + j·skip mod size), an endpoint of
 * twice the mean weight taking two turns per round. `hashes[i]` is endpoint
 * i's key hash. Returns slot -> endpoint index.
 */
function populate(
  endpoints: readonly Endpoint[],
  hashes: Uint32Array,
  totalWeight: number,
  size: number,
): Uint16Array | Int32Array {
  const n = endpoints.length;
  const next = new Int32Array(n);
  const skip = new Int32Array(n);
  const share = new Float64Array(n);
  const credit = new Float64Array(n);
  const meanWeight = totalWeight / n;
  for (let i = 0; i < n; i++) {
    next[i] = hashes[i] % size;
    skip[i] = (remix(hashes[i]) % (size - 1)) + 1;
    share[i] = endpoints[i].weight / meanWeight;
  }
  const table = n <= 0x10000 ? new Uint16Array(size) : new Int32Array(size);
  // Occupancy as a bitmap: the probes of the last rounds hit a few KB instead of the whole table.
  const used = new Uint32Array((size + 31) >>> 5);
  let filled = 0;
  while (filled < size) {
    for (let i = 0; i < n && filled < size; i++) {
      credit[i] += share[i];
      while (credit[i] >= 1 && filled < size) {
        credit[i] -= 1;
        const step = skip[i];
        let slot = next[i];
        while ((used[slot >>> 5] & (1 << (slot & 31))) !== 0) {
          slot += step;
          if (slot >= size) slot -= size;
        }
        used[slot >>> 5] |= 1 << (slot & 31);
        table[slot] = i;
        filled++;
        slot += step;
        next[i] = slot >= size ? slot - size : slot;
      }
    }
  }
  return table;
}

/** Maglev consistent hashing, with optional bounded load and a least-loaded fallback for calls without a key. */
export class MaglevPicker implements Picker {
  /** Table size (prime). */
  readonly size: number;
  private readonly table: Uint16Array | Int32Array;
  /** Endpoints in a canonical order (by key hash), so every client builds the same table from the same set. */
  private readonly endpoints: readonly Endpoint[];
  private readonly loads: readonly EndpointLoad[];
  /** Per endpoint: bounded-load factor × weight share; empty when bounded load is off. */
  private readonly capScale: Float64Array;

  private readonly source: LoadSource;
  /** Generator state for the keyless fallback, seeded at build. */
  private state: number;

  constructor(
    endpoints: readonly Endpoint[],
    totalWeight: number,
    context: PickerBuildContext,
    boundedLoadFactor: number | undefined,
    size: number,
  ) {
    const n = endpoints.length;
    if (n > MAX_ENDPOINTS) {
      throw ConfigurationError.single('endpoints', n, `at most ${MAX_ENDPOINTS} endpoints for consistent_hash`);
    }
    this.source = context.loads;
    this.state = seedFrom(context.random);
    // Canonical order: by endpoint hash, then input index (the snapshot's key order), packed in one
    // double (32 + 20 bits, exact) so a plain numeric sort does it: a comparator sort costs ms at 10k.
    const byHash = new Float64Array(n);
    for (let i = 0; i < n; i++) byHash[i] = hashString(endpoints[i].key, ENDPOINT_SEED) * MAX_ENDPOINTS + i;
    byHash.sort();
    const hashes = new Uint32Array(n);
    const ordered: Endpoint[] = new Array(n);
    for (let i = 0; i < n; i++) {
      hashes[i] = Math.floor(byHash[i] / MAX_ENDPOINTS);
      ordered[i] = endpoints[byHash[i] % MAX_ENDPOINTS];
    }
    this.endpoints = ordered;
    this.loads = loadRecordsOf(this.endpoints, context);
    this.size = size;
    this.table = populate(this.endpoints, hashes, totalWeight, size);
    this.capScale = new Float64Array(boundedLoadFactor === undefined ? 0 : n);
    if (boundedLoadFactor !== undefined) {
      for (let i = 0; i < n; i++) this.capScale[i] = (boundedLoadFactor * this.endpoints[i].weight) / totalWeight;
    }
  }

  pick(context?: PickContext): Endpoint | undefined {
    const key = context?.key;
    if (key === undefined || key === '') {
      this.state = advance(advance(this.state));
      return this.endpoints[lessLoadedOfTwo(this.loads, this.state)];
    }
    let slot = hashString(key) % this.size;
    let index = this.table[slot];
    if (this.capScale.length === 0) return this.endpoints[index];
    // Bounded load: skip an endpoint already holding its share of (in flight + this call) × factor.
    const demand = this.totalInFlight() + 1;
    for (let walked = 0; this.loads[index].inFlight >= Math.ceil(this.capScale[index] * demand); walked++) {
      if (walked === this.size) return this.endpoints[this.leastLoaded()];
      slot = slot + 1 === this.size ? 0 : slot + 1;
      index = this.table[slot];
    }
    return this.endpoints[index];
  }

  /** The endpoint index a key maps to, ignoring load (for tests and diagnostics). */
  slotOwner(key: string): Endpoint {
    return this.endpoints[this.table[hashString(key) % this.size]];
  }

  private totalInFlight(): number {
    if (this.source.totalInFlight !== undefined) return this.source.totalInFlight();
    // A source without totals costs a scan; LoadTracker keeps the total.
    let total = 0;
    for (let i = 0; i < this.loads.length; i++) total += this.loads[i].inFlight;
    return total;
  }

  /** Only reached when every endpoint in the table is at its bound (an endpoint too light to own a slot). */
  private leastLoaded(): number {
    let best = 0;
    for (let i = 1; i < this.loads.length; i++) if (this.loads[i].inFlight < this.loads[best].inFlight) best = i;
    return best;
  }
}

/** Options of {@link ConsistentHashStrategy}. */
export interface ConsistentHashOptions {
  /** Name to register this configuration under (default `consistent_hash`). */
  name?: string;
  /**
   * Bounded load (Mirrokni et al.): an endpoint already holding
   * ceil(factor × weight share × (calls in flight + 1)) calls is skipped and
   * the walk continues through the table, so one hot key cannot overload an
   * endpoint. A number >= 1 (1.25 is a common choice); off when unset.
   */
  boundedLoadFactor?: number;
  /**
   * Table size (rounded up to a prime); default {@link DEFAULT_TABLE_SIZE}.
   * Every client of a service must use the same size to agree on key owners.
   */
  tableSize?: number;
}

/**
 * `consistent_hash`: calls with the same key go to the same endpoint while
 * the membership is unchanged, and a membership change moves only about the
 * share of keys of the endpoint that came or went. The key is `PickContext.key`
 * (the `x-hash-key` header or `{ key }` on a call); a call without a key (or
 * with an empty one) goes to the less loaded of two random endpoints.
 * Weights scale an endpoint's share of keys and must be finite and > 0.
 *
 * @example
 * DiscoveryModule.forRoot({ strategies: [new ConsistentHashStrategy({ name: 'bounded_hash', boundedLoadFactor: 1.25 })], loadBalance: 'bounded_hash' });
 */
export class ConsistentHashStrategy implements BalancingStrategy {
  readonly name: string;
  private readonly boundedLoadFactor: number | undefined;
  private readonly tableSize: number;

  constructor(options: ConsistentHashOptions = {}) {
    const factor = options.boundedLoadFactor;
    if (factor !== undefined && (typeof factor !== 'number' || !Number.isFinite(factor) || factor < 1)) {
      throw ConfigurationError.single('consistent_hash.boundedLoadFactor', factor, 'a number >= 1 (e.g. 1.25)');
    }
    const size = options.tableSize;
    if (size !== undefined && (!Number.isInteger(size) || size < 2 || size > 2 ** 24)) {
      throw ConfigurationError.single('consistent_hash.tableSize', size, 'an integer from 2 to 16777216');
    }
    this.name = options.name ?? 'consistent_hash';
    this.boundedLoadFactor = factor;
    this.tableSize = size === undefined ? DEFAULT_TABLE_SIZE : nextPrime(size);
  }

  build(endpoints: readonly Endpoint[], context: PickerBuildContext): Picker {
    if (endpoints.length === 0) return EMPTY_PICKER;
    const total = assertPositiveWeights(endpoints, this.name);
    return new MaglevPicker(endpoints, total, context, this.boundedLoadFactor, this.tableSize);
  }
}
