import type { Endpoint } from '../core/endpoint.js';
import { EMPTY_PICKER } from './empty-picker.js';
import type { BalancingStrategy, Picker, PickerBuildContext } from './picker.js';
import { advance, indexAt, seedFrom } from './picker-random.js';

/** Uniformly random endpoint per pick, from the picker's own generator (seeded at build). */
export class RandomPicker implements Picker {
  private state: number;

  constructor(
    private readonly endpoints: readonly Endpoint[],
    seed: number,
  ) {
    this.state = seed;
  }

  pick(): Endpoint | undefined {
    this.state = advance(this.state);
    return this.endpoints[indexAt(this.state, this.endpoints.length)];
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
  /** Picks ignore `context.key`. */
  readonly usesKey = false;

  build(endpoints: readonly Endpoint[], context: PickerBuildContext): Picker {
    if (endpoints.length === 0) return EMPTY_PICKER;
    return new RandomPicker(endpoints, seedFrom(context.random));
  }
}
