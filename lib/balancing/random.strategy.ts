import type { Endpoint } from '../core/endpoint.js';
import { EMPTY_PICKER } from './empty-picker.js';
import type { BalancingStrategy, Picker, PickerBuildContext } from './picker.js';

/** Uniformly random endpoint per pick. */
export class RandomPicker implements Picker {
  constructor(
    private readonly endpoints: readonly Endpoint[],
    private readonly random: () => number,
  ) {}

  pick(): Endpoint | undefined {
    const n = this.endpoints.length;
    const i = Math.floor(this.random() * n);
    return this.endpoints[i < n ? i : n - 1];
  }
}

/**
 * `random`: every endpoint equally likely, independently per call. Needs no
 * coordination, which makes it a good default for many short-lived clients.
 *
 * @example
 * const picker = new RandomStrategy().build(set.endpoints, { loads, random: Math.random });
 */
export class RandomStrategy implements BalancingStrategy {
  readonly name = 'random';

  build(endpoints: readonly Endpoint[], context: PickerBuildContext): Picker {
    if (endpoints.length === 0) return EMPTY_PICKER;
    return new RandomPicker(endpoints, context.random);
  }
}
