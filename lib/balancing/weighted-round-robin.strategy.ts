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
 *   lowest terms) is at most 131,072 picks (the usual case), the picker walks
 *   the tree once per cycle slot at build and stores the cycle: a pick is
 *   then one array read. Otherwise it walks the tree per pick, still
 *   O(log n) on average and allocation-free.
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
function integerWeights(endpoints: readonly Endpoint[]): number[] | undefined {
  for (const scale of [1, 10, 100, 1000]) {
    const scaled = endpoints.map((e) => Math.round(e.weight * scale));
    if (!endpoints.every((e, i) => Math.abs(e.weight * scale - scaled[i]) <= 1e-9 * scaled[i] && scaled[i] > 0))
      continue;
    const divisor = scaled.reduce(gcd, 0);
    return scaled.map((w) => w / divisor);
  }
  return undefined;
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
   * @param skip picks to advance before the first one (the random phase)
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
    const leaves = Array.from({ length: n }, (_, i) => i).sort((a, b) => weights[a] - weights[b] || a - b);
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
    for (let i = 0; i < skip; i++) this.nextIndex();
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

/** Weighted round robin over a precomputed cycle (integer weights): one array read per pick. */
export class WeightedRoundRobinSchedulePicker implements Picker {
  private position: number;

  constructor(
    private readonly endpoints: readonly Endpoint[],
    private readonly schedule: Int32Array,
    start: number,
  ) {
    this.position = start;
  }

  pick(): Endpoint | undefined {
    const endpoint = this.endpoints[this.schedule[this.position]];
    this.position = this.position + 1 === this.schedule.length ? 0 : this.position + 1;
    return endpoint;
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
    const cycle = weights === undefined ? Number.POSITIVE_INFINITY : weights.reduce((sum, w) => sum + w, 0);
    if (!(cycle <= Math.max(MAX_SCHEDULE, endpoints.length))) {
      // A random phase (up to n picks) so clients built at the same moment do not move in lockstep.
      return new WeightedRoundRobinTreePicker(endpoints, randomIndex(context.random, endpoints.length));
    }
    const tree = new WeightedRoundRobinTreePicker(endpoints, 0, weights);
    const schedule = new Int32Array(cycle);
    for (let i = 0; i < cycle; i++) schedule[i] = tree.nextIndex();
    return new WeightedRoundRobinSchedulePicker(endpoints, schedule, randomIndex(context.random, cycle));
  }
}
