import type { Endpoint } from '../core/endpoint.js';
import { EMPTY_PICKER } from './empty-picker.js';
import { assertPositiveWeights } from './endpoint-weights.js';
import type { BalancingStrategy, Picker, PickerBuildContext } from './picker.js';
import { randomIndex } from './picker-random.js';

/*
 * Why a tree and not nginx's smooth WRR or a flat EDF heap:
 * - nginx's smooth WRR scans every endpoint per pick: O(n), too slow at 10k endpoints.
 * - A flat EDF heap is O(log n) but bursty: endpoints of equal weight share a
 *   deadline phase, so a heavy endpoint gets long runs between them
 *   (weights 100,1,...,1 give runs of ~50 where 11 are possible).
 * - Here: a Huffman tree over the weights (the two lightest subtrees merged
 *   first). Each internal node splits its traffic between its two children by
 *   the Sainte-Laguë divisor rule, which interleaves two streams as evenly as
 *   possible. The heaviest endpoints sit near the root, so a walk takes
 *   log2(total / weight) steps: on average at most log2(n) + 1 (Huffman
 *   optimality). Over any Σw consecutive picks (integer weights) every
 *   endpoint is picked exactly w times, and no endpoint gets more than
 *   max(ceil(w/Σw·n), ceil(w/(Σw−w))) + 1 picks in a row.
 * - The walk is ~14 dependent, unpredictable branches at 10,000 endpoints, so
 *   when the weights are integers or short decimals whose cycle (Σw in
 *   lowest terms) is at most 131,072 picks (the usual case), the picker
 *   stores the cycle as it walks it: after one cycle a pick is one array
 *   read. Filling it lazily, not at build, keeps a rebuild O(n): a new
 *   picker after each membership change costs a tree, not Σw walks.
 *   Otherwise it walks the tree per pick, still O(log n) on average and
 *   allocation-free.
 * - The random phase (so clients built together do not move in lockstep)
 *   is set in closed form: the picks a node has seen after t picks at the
 *   root are split between its children exactly as t Sainte-Laguë turns
 *   would split them, which a binary search finds; a new picker starts as
 *   if t picks had been made, without making them.
 */

/** Largest precomputed cycle, in picks: 4 bytes each. */
const MAX_SCHEDULE = 1 << 17;

function gcd(a: number, b: number): number {
  while (b !== 0) [a, b] = [b, a % b];
  return a;
}

/**
 * The weights as the smallest integers in the same proportions, when the
 * weights have at most three decimals (1, 2.5, 0.125 ...): the tree's
 * sequence depends only on proportions, so the cycle is Σ of these. Undefined
 * for weights that are not such decimals.
 */
function integerWeights(endpoints: readonly Endpoint[]): Float64Array | undefined {
  const n = endpoints.length;
  const scaled = new Float64Array(n);
  for (const scale of [1, 10, 100, 1000]) {
    let divisor = 0;
    let exact = true;
    for (let i = 0; i < n && exact; i++) {
      const value = endpoints[i].weight * scale;
      const rounded = Math.round(value);
      if (!(rounded > 0) || Math.abs(value - rounded) > 1e-9 * rounded) exact = false;
      scaled[i] = rounded;
      divisor = gcd(rounded, divisor);
    }
    if (!exact) continue;
    for (let i = 0; i < n; i++) scaled[i] /= divisor;
    return scaled;
  }
  return undefined;
}

/**
 * Indices 0..n-1 sorted by weight, then index. Weights are usually small
 * integers (1, 1–3, 100): a counting sort is O(n), where a comparator sort
 * of 10,000 indices costs milliseconds.
 */
function byWeight(weights: ArrayLike<number>, n: number): Int32Array {
  const order = new Int32Array(n);
  let min = Number.POSITIVE_INFINITY;
  let max = 0;
  let integral = true;
  for (let i = 0; i < n; i++) {
    const w = weights[i];
    if (w < min) min = w;
    if (w > max) max = w;
    if (integral && !Number.isInteger(w)) integral = false;
  }
  if (integral && max - min < 1 << 16) {
    // Integer weights in a narrow range (1, 1–3, 100): bucket offsets in a typed array.
    const next = new Int32Array(max - min + 2);
    for (let i = 0; i < n; i++) next[weights[i] - min + 1]++;
    for (let b = 1; b < next.length; b++) next[b] += next[b - 1];
    for (let i = 0; i < n; i++) order[next[weights[i] - min]++] = i;
    return order;
  }
  const sorted = Array.from({ length: n }, (_, i) => i).sort((a, b) => weights[a] - weights[b] || a - b);
  order.set(sorted);
  return order;
}

/**
 * How many of `picks` Sainte-Laguë turns between weights `a` (ties) and `b`
 * go to `a`: the largest x with (x − ½)·b ≤ (picks − x + ½)·a, the very
 * comparison a pick makes (so the result is exact in floating point too).
 */
function leftShare(picks: number, a: number, b: number): number {
  let low = 0;
  let high = picks;
  while (low < high) {
    const middle = low + Math.floor((high - low + 1) / 2);
    if ((middle - 0.5) * b <= (picks - middle + 0.5) * a) low = middle;
    else high = middle - 1;
  }
  return low;
}

/** A leaf is stored as `~endpointIndex` (negative); an internal node as its index (>= 0). */
type NodeRef = number;

/** Weighted round robin that walks a Huffman tree of two-way smooth splits on each pick. */
export class WeightedRoundRobinTreePicker implements Picker {
  /**
   * Per internal node, four doubles: left weight, right weight, left picks,
   * right picks. Counters are exact integers up to 2^53 picks.
   */
  private readonly split: Float64Array;
  /** Per internal node: left child, right child. */
  private readonly children: Int32Array;
  private readonly root: NodeRef;

  /**
   * @param weights the weights to split by, per endpoint; default the
   *   endpoints' own (the schedule builder passes them scaled to integers)
   * @param skip picks to start after (the random phase), set in closed form
   */
  constructor(
    private readonly endpoints: readonly Endpoint[],
    skip: number,
    weights: ArrayLike<number> = endpoints.map((e) => e.weight),
  ) {
    const n = endpoints.length;
    const internal = n - 1;
    this.split = new Float64Array(internal * 4);
    this.children = new Int32Array(internal * 2);
    const nodeWeight = new Float64Array(internal);
    const leaves = byWeight(weights, n);
    // Two-queue Huffman: leaves by weight, internal nodes in creation order (weights never decrease).
    let leafHead = 0;
    let nodeHead = 0;
    let created = 0;
    const takeLightest = (): NodeRef => {
      if (leafHead < n && (nodeHead >= created || weights[leaves[leafHead]] <= nodeWeight[nodeHead])) {
        return ~leaves[leafHead++];
      }
      return nodeHead++;
    };
    const weightOf = (ref: NodeRef): number => (ref < 0 ? weights[~ref] : nodeWeight[ref]);
    while (created < internal) {
      const lighter = takeLightest();
      const heavier = takeLightest();
      const node = created++;
      // Heavier child on the left: ties in the split go to it, which keeps runs of the light side short.
      this.children[node * 2] = heavier;
      this.children[node * 2 + 1] = lighter;
      this.split[node * 4] = weightOf(heavier);
      this.split[node * 4 + 1] = weightOf(lighter);
      nodeWeight[node] = weightOf(heavier) + weightOf(lighter);
    }
    this.root = internal > 0 ? internal - 1 : ~0;
    if (skip > 0) this.startAfter(skip);
  }

  /**
   * Sets every node's counters as they stand after `picks` picks from the
   * start: a node's picks split between its children by {@link leftShare}.
   * Children are created before their parent, so walking the nodes from the
   * root down visits each parent first. O(n log picks).
   */
  private startAfter(picks: number): void {
    const internal = this.children.length / 2;
    const seen = new Float64Array(internal);
    if (internal > 0) seen[internal - 1] = picks;
    for (let node = internal - 1; node >= 0; node--) {
      const s = node * 4;
      const left = leftShare(seen[node], this.split[s], this.split[s + 1]);
      this.split[s + 2] = left;
      this.split[s + 3] = seen[node] - left;
      const l = this.children[node * 2];
      const r = this.children[node * 2 + 1];
      if (l >= 0) seen[l] = left;
      if (r >= 0) seen[r] = seen[node] - left;
    }
  }

  pick(): Endpoint | undefined {
    return this.endpoints[this.nextIndex()];
  }

  /** Index (in the snapshot) of the next endpoint; advances the counters on the path. */
  nextIndex(): number {
    const split = this.split;
    const children = this.children;
    let node = this.root;
    while (node >= 0) {
      const s = node * 4;
      // Sainte-Laguë: serve the side whose next "seat" is due first, (count + 1/2) / weight.
      if ((split[s + 2] + 0.5) * split[s + 1] <= (split[s + 3] + 0.5) * split[s]) {
        split[s + 2]++;
        node = children[node * 2];
      } else {
        split[s + 3]++;
        node = children[node * 2 + 1];
      }
    }
    return ~node;
  }
}

/**
 * Weighted round robin over the cycle of a tree (integer weights), stored as
 * it is walked: the first pass over the cycle walks the tree, later ones read
 * one array entry per pick.
 */
export class WeightedRoundRobinSchedulePicker implements Picker {
  /** Position in the cycle, counted from the picker's first pick. */
  private position = 0;
  /** Entries of `schedule` walked so far (positions below it are stored). */
  private filled = 0;
  private tree: WeightedRoundRobinTreePicker | undefined;

  constructor(
    private readonly endpoints: readonly Endpoint[],
    tree: WeightedRoundRobinTreePicker,
    /** The cycle's endpoint indices from the picker's phase on, filled as picks walk it. */
    private readonly schedule: Int32Array,
  ) {
    this.tree = tree;
  }

  pick(): Endpoint | undefined {
    const p = this.position;
    let index: number;
    if (p < this.filled) index = this.schedule[p];
    else {
      index = this.tree!.nextIndex();
      this.schedule[p] = index;
      this.filled = p + 1;
      // A whole cycle stored: the tree is no longer needed.
      if (this.filled === this.schedule.length) this.tree = undefined;
    }
    this.position = p + 1 === this.schedule.length ? 0 : p + 1;
    return this.endpoints[index];
  }
}

/**
 * `weighted_round_robin`: deterministic and smooth. An endpoint of weight 3
 * gets three times the calls of one of weight 1, interleaved (a b a a b a ...),
 * never in bursts. Weights must be finite and > 0.
 *
 * @example
 * const picker = new WeightedRoundRobinStrategy().build(set.endpoints, { loads, random: Math.random });
 */
export class WeightedRoundRobinStrategy implements BalancingStrategy {
  readonly name = 'weighted_round_robin';
  /** Picks ignore `context.key`. */
  readonly usesKey = false;

  build(endpoints: readonly Endpoint[], context: PickerBuildContext): Picker {
    if (endpoints.length === 0) return EMPTY_PICKER;
    assertPositiveWeights(endpoints, this.name);
    const weights = integerWeights(endpoints);
    let cycle = Number.POSITIVE_INFINITY;
    if (weights !== undefined) {
      cycle = 0;
      for (let i = 0; i < weights.length; i++) cycle += weights[i];
    }
    // A plain copy: pickers index it on every call, and frozen arrays index slower in V8.
    const list = Array.from(endpoints);
    if (!(cycle <= Math.max(MAX_SCHEDULE, endpoints.length))) {
      // A random phase (up to n picks) so clients built at the same moment do not move in lockstep.
      return new WeightedRoundRobinTreePicker(list, randomIndex(context.random, endpoints.length));
    }
    const tree = new WeightedRoundRobinTreePicker(list, randomIndex(context.random, cycle), weights);
    return new WeightedRoundRobinSchedulePicker(list, tree, new Int32Array(cycle));
  }
}
