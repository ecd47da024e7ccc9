import type { Endpoint } from '../core/endpoint.js';
import { EMPTY_PICKER } from './empty-picker.js';
import type { BalancingStrategy, Picker, PickerBuildContext } from './picker.js';
import { randomIndex } from './picker-random.js';

/** Cycles through the endpoints in snapshot order. */
export class RoundRobinPicker implements Picker {
  private position: number;

  constructor(
    private readonly endpoints: readonly Endpoint[],
    start: number,
  ) {
    this.position = start;
  }

  pick(): Endpoint | undefined {
    const endpoint = this.endpoints[this.position];
    this.position = this.position + 1 === this.endpoints.length ? 0 : this.position + 1;
    return endpoint;
  }

  /** The endpoint the next pick returns (used to carry the position into the next picker). */
  upcoming(): Endpoint | undefined {
    return this.endpoints[this.position];
  }
}

/**
 * `round_robin`: each endpoint in turn. A new picker starts where the previous
 * one would have continued when that endpoint is still present (a membership
 * change does not reset the rotation and overload the first endpoint), and
 * otherwise at a random offset, so many clients started together do not all
 * hit the same endpoint first.
 *
 * @example
 * const picker = new RoundRobinStrategy().build(set.endpoints, { loads, random: Math.random });
 */
export class RoundRobinStrategy implements BalancingStrategy {
  readonly name = 'round_robin';

  build(endpoints: readonly Endpoint[], context: PickerBuildContext): Picker {
    if (endpoints.length === 0) return EMPTY_PICKER;
    let start = -1;
    const upcoming = context.previous instanceof RoundRobinPicker ? context.previous.upcoming() : undefined;
    if (upcoming !== undefined) start = endpoints.findIndex((e) => e.key === upcoming.key);
    if (start < 0) start = randomIndex(context.random, endpoints.length);
    return new RoundRobinPicker(endpoints, start);
  }
}
