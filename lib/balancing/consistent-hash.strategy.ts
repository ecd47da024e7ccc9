import type { Endpoint } from '../core/endpoint.js';
import { ConfigurationError } from '../core/errors.js';
import { EMPTY_PICKER } from './empty-picker.js';
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
 * Table size: a prime from a fixed ladder (4,099, 16,411, 65,537), the
 * smallest that gives every endpoint at least 100 slots (the paper's advice
 * for near-minimal disruption), capped at 65,537 (Envoy's default size;
 * still ~6.5 slots per endpoint at 10,000, key shares within ±8 %, which
 * bounded load evens out). The size depends only on the endpoint count, so
 * every client builds the same table from the same set; filling costs about
 * M·ln M probes, so a 100-endpoint service fills 16,411 slots (32 KB), not
 * 65,537 (128 KB), in a quarter of the time. The price: when a service's size
 * crosses a rung (40 -> 41, 164 -> 165, 655 -> 656 endpoints) the table size
 * changes and nearly every key moves once, as if hashing started afresh.
 * `tableSize` pins one size for every count (no such move, ever).
 */

/** The largest (and the pre-0.2 fixed) table size, a prime: Uint16 slots, 128 KB per picker. */
export const DEFAULT_TABLE_SIZE = 65_537;

/** The rungs of table sizes (primes just above 4^k · 1,024), smallest first. */
const TABLE_SIZE_LADDER: readonly number[] = [4_099, 16_411, DEFAULT_TABLE_SIZE];

/** Slots per endpoint the ladder aims for (until the cap). */
const MIN_SLOTS_PER_ENDPOINT = 100;

/**
 * The table size for `n` endpoints: the smallest rung of at least 100 slots
 * per endpoint, or the largest rung. Every client computes the same.
 *
 * @example
 * tableSizeFor(100); // 16411
 */
export function tableSizeFor(n: number): number {
  for (const size of TABLE_SIZE_LADDER) if (size >= n * MIN_SLOTS_PER_ENDPOINT) return size;
  return DEFAULT_TABLE_SIZE;
}

/** Endpoints a table may hold (a bound on build time and memory; past the table size most would own no slot). */
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
 * The indices of `keys` in ascending key order, ties in index order: a
 * stable radix sort in three passes of 11-bit digits (about 0.1 ms at
 * 10,000, against 0.7 ms for a typed-array sort of packed keys; small
 * digits keep it cheap for a handful of endpoints too).
 */
function sortedOrder(keys: Uint32Array): Uint32Array {
  const n = keys.length;
  let from = new Uint32Array(n);
  let to = new Uint32Array(n);
  for (let i = 0; i < n; i++) from[i] = i;
  const counts = new Uint32Array(0x800);
  for (let shift = 0; shift < 32; shift += 11) {
    counts.fill(0);
    for (let i = 0; i < n; i++) counts[(keys[i] >>> shift) & 0x7ff]++;
    let sum = 0;
    for (let d = 0; d < 0x800; d++) {
      const c = counts[d];
      counts[d] = sum;
      sum += c;
    }
    for (let i = 0; i < n; i++) {
      const index = from[i];
      to[counts[(keys[index] >>> shift) & 0x7ff]++] = index;
    }
    [from, to] = [to, from];
  }
  return from;
}

/** Endpoint i claims the next free slot of its permutation (offset + j·skip mod size): marks it used, returns it. */
function claimSlot(i: number, next: Int32Array, skip: Int32Array, used: Uint32Array, size: number): number {
  const step = skip[i];
  let slot = next[i];
  while ((used[slot >>> 5] & (1 << (slot & 31))) !== 0) {
    slot += step;
    if (slot >= size) slot -= size;
  }
  used[slot >>> 5] |= 1 << (slot & 31);
  const after = slot + step;
  next[i] = after >= size ? after - size : after;
  return slot;
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
  let equal = true;
  for (let i = 1; i < n && equal; i++) equal = endpoints[i].weight === endpoints[0].weight;
  // Equal weights (the usual case): one turn each per round, without the credit arithmetic.
  if (equal) {
    for (let filled = 0; filled < size;)
      for (let i = 0; i < n && filled < size; i++, filled++) table[claimSlot(i, next, skip, used, size)] = i;
    return table;
  }
  for (let filled = 0; filled < size;) {
    for (let i = 0; i < n && filled < size; i++) {
      credit[i] += share[i];
      while (credit[i] >= 1 && filled < size) {
        credit[i] -= 1;
        table[claimSlot(i, next, skip, used, size)] = i;
        filled++;
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
  /** Load records, resolved on the first pick that reads them (keyless, or bounded load). */
  private loadRecords: readonly EndpointLoad[] | undefined;
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
    // Canonical order: by endpoint hash, then input index (the snapshot's key order).
    const raw = new Uint32Array(n);
    for (let i = 0; i < n; i++) raw[i] = hashString(endpoints[i].key, ENDPOINT_SEED);
    const order = sortedOrder(raw);
    const hashes = new Uint32Array(n);
    const ordered: Endpoint[] = new Array(n);
    for (let i = 0; i < n; i++) {
      hashes[i] = raw[order[i]];
      ordered[i] = endpoints[order[i]];
    }
    this.endpoints = ordered;
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
      return this.endpoints[lessLoadedOfTwo(this.loadRecords ?? this.resolveLoads(), this.state)];
    }
    let slot = hashString(key) % this.size;
    let index = this.table[slot];
    if (this.capScale.length === 0) return this.endpoints[index];
    // Bounded load: skip an endpoint already holding its share of (in flight + this call) × factor.
    const demand = this.totalInFlight() + 1;
    const loads = this.loadRecords ?? this.resolveLoads();
    for (let walked = 0; loads[index].inFlight >= Math.ceil(this.capScale[index] * demand); walked++) {
      if (walked === this.size) return this.endpoints[this.leastLoaded()];
      slot = slot + 1 === this.size ? 0 : slot + 1;
      index = this.table[slot];
    }
    return this.endpoints[index];
  }

  /**
   * The load records in table order. Looking up 10,000 records costs more
   * than filling a small table, and keyed picks without bounded load never
   * read them: resolved on first use (the source keeps one record per key).
   * Callers read `this.loadRecords ?? this.resolveLoads()`: a getter with
   * `??=` made V8 allocate 40 B per keyless pick once two pickers existed.
   */
  private resolveLoads(): readonly EndpointLoad[] {
    const loads = this.endpoints.map((endpoint) => this.source.load(endpoint));
    this.loadRecords = loads;
    return loads;
  }

  /** The endpoint index a key maps to, ignoring load (for tests and diagnostics). */
  slotOwner(key: string): Endpoint {
    return this.endpoints[this.table[hashString(key) % this.size]];
  }

  private totalInFlight(): number {
    if (this.source.totalInFlight !== undefined) return this.source.totalInFlight();
    // A source without totals costs a scan; LoadTracker keeps the total.
    const loads = this.loadRecords ?? this.resolveLoads();
    let total = 0;
    for (let i = 0; i < loads.length; i++) total += loads[i].inFlight;
    return total;
  }

  /** Only reached when every endpoint in the table is at its bound (an endpoint too light to own a slot). */
  private leastLoaded(): number {
    const loads = this.loadRecords ?? this.resolveLoads();
    let best = 0;
    for (let i = 1; i < loads.length; i++) if (loads[i].inFlight < loads[best].inFlight) best = i;
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
   * A fixed table size (rounded up to a prime) for every endpoint count;
   * default: by count ({@link tableSizeFor}: 4,099 to 65,537). Every client
   * of a service must use the same setting to agree on key owners.
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
  /** The pinned size, or undefined for a size by endpoint count. */
  private readonly tableSize: number | undefined;

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
    this.tableSize = size === undefined ? undefined : nextPrime(size);
  }

  build(endpoints: readonly Endpoint[], context: PickerBuildContext): Picker {
    if (endpoints.length === 0) return EMPTY_PICKER;
    const total = assertPositiveWeights(endpoints, this.name);
    const size = this.tableSize ?? tableSizeFor(endpoints.length);
    return new MaglevPicker(endpoints, total, context, this.boundedLoadFactor, size);
  }
}
