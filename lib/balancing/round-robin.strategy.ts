import type { Endpoint } from '../core/endpoint.js';
import { EMPTY_PICKER } from './empty-picker.js';
import type { BalancingStrategy, Picker, PickerBuildContext } from './picker.js';
import { randomIndex } from './picker-random.js';

/** Cycles through the endpoints in snapshot order. */
export class RoundRobinPicker implements Picker {
  private position: number;
  private readonly size: number;

  constructor(
    private readonly endpoints: readonly Endpoint[],
    start: number,
  ) {
    this.position = start;
    this.size = endpoints.length;
  }

  pick(): Endpoint | undefined {
    const i = this.position;
    this.position = i + 1 < this.size ? i + 1 : 0;
    return this.endpoints[i];
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
  /** Picks ignore `context.key`. */
  readonly usesKey = false;

  build(endpoints: readonly Endpoint[], context: PickerBuildContext): Picker {
    if (endpoints.length === 0) return EMPTY_PICKER;
    let start = -1;
    const upcoming = context.previous instanceof RoundRobinPicker ? context.previous.upcoming() : undefined;
    if (upcoming !== undefined) start = endpoints.findIndex((e) => e.key === upcoming.key);
    if (start < 0) start = randomIndex(context.random, endpoints.length);
    // A plain copy: snapshots hand out frozen arrays, which V8 indexes slower on every pick.
    return new RoundRobinPicker(endpoints.slice(), start);
  }
}
