import type { Endpoint } from '../core/endpoint.js';
import { EMPTY_PICKER } from './empty-picker.js';
import { assertPositiveWeights } from './endpoint-weights.js';
import type { BalancingStrategy, Picker, PickerBuildContext } from './picker.js';
import { advance, seedFrom, unitAt } from './picker-random.js';

/**
 * Weighted random choice in O(1) per pick with Vose's alias method: column i
 * keeps endpoint i with probability `keep[i]` and otherwise yields
 * `alias[i]`. One 32-bit draw of the picker's own generator (seeded at
 * build) chooses both the column and the coin.
 */
export class WeightedRandomPicker implements Picker {
  private readonly keep: Float64Array;
  private readonly alias: Int32Array;
  private state: number;

  constructor(
    private readonly endpoints: readonly Endpoint[],
    totalWeight: number,
    seed: number,
  ) {
    this.state = seed;
    const n = endpoints.length;
    this.keep = new Float64Array(n);
    this.alias = new Int32Array(n);
    const scaled = new Float64Array(n);
    const small = new Int32Array(n);
    const large = new Int32Array(n);
    let smallTop = 0;
    let largeTop = 0;
    for (let i = 0; i < n; i++) {
      scaled[i] = (endpoints[i].weight * n) / totalWeight;
      if (scaled[i] < 1) small[smallTop++] = i;
      else large[largeTop++] = i;
    }
    while (smallTop > 0 && largeTop > 0) {
      const s = small[--smallTop];
      const l = large[largeTop - 1];
      this.keep[s] = scaled[s];
      this.alias[s] = l;
      scaled[l] = scaled[l] + scaled[s] - 1;
      if (scaled[l] < 1) {
        largeTop--;
        small[smallTop++] = l;
      }
    }
    // What is left is 1 up to rounding error.
    while (largeTop > 0) {
      const l = large[--largeTop];
      this.keep[l] = 1;
      this.alias[l] = l;
    }
    while (smallTop > 0) {
      const s = small[--smallTop];
      this.keep[s] = 1;
      this.alias[s] = s;
    }
  }

  /**
   * The exact probability of each endpoint (snapshot order) implied by the
   * table, for tests and diagnostics.
   */
  probabilities(): Float64Array {
    const n = this.endpoints.length;
    const p = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      p[i] += this.keep[i] / n;
      if (this.alias[i] !== i) p[this.alias[i]] += (1 - this.keep[i]) / n;
    }
    return p;
  }

  pick(): Endpoint | undefined {
    this.state = advance(this.state);
    const r = unitAt(this.state) * this.endpoints.length;
    const column = Math.floor(r);
    return this.endpoints[r - column < this.keep[column] ? column : this.alias[column]];
  }
}

/**
 * `weighted_random`: each call independently picks an endpoint with
 * probability weight / Σweight. Weights must be finite and > 0.
 *
 * @example
 * const picker = new WeightedRandomStrategy().build(set.endpoints, { loads, random: Math.random });
 */
export class WeightedRandomStrategy implements BalancingStrategy {
  readonly name = 'weighted_random';
  /** Picks ignore `context.key`. */
  readonly usesKey = false;

  build(endpoints: readonly Endpoint[], context: PickerBuildContext): Picker {
    if (endpoints.length === 0) return EMPTY_PICKER;
    const total = assertPositiveWeights(endpoints, this.name);
    return new WeightedRandomPicker(endpoints, total, seedFrom(context.random));
  }
}
