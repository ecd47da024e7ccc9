import type { Endpoint } from '../core/endpoint.js';
import { lowerBound } from '../core/endpoint-set.js';
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
 * `round_robin`: each endpoint in turn. A new picker keeps the previous one's
 * place: it starts at the endpoint the previous one would have returned next,
 * or, when that one left, at the one after it in key order (a membership
 * change neither resets the rotation nor overloads the first endpoint). A
 * first picker starts at a random offset, so many clients started together
 * do not all hit the same endpoint first.
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
    const upcoming = context.previous instanceof RoundRobinPicker ? context.previous.upcoming() : undefined;
    const start =
      upcoming === undefined ? randomIndex(context.random, endpoints.length) : placeOf(endpoints, upcoming.key);
    // A plain copy: snapshots hand out frozen arrays, which V8 indexes slower on every pick
    // (Array.from, not slice: slice copies a frozen array element by element).
    return new RoundRobinPicker(Array.from(endpoints), start);
  }
}

/**
 * Where the rotation continues: the index of `key`, or of the first key
 * after it (snapshots are sorted by key, so this is a binary search; an
 * unsorted list is searched through).
 */
function placeOf(endpoints: readonly Endpoint[], key: string): number {
  const low = lowerBound(endpoints, key);
  if (endpoints[low]?.key === key) return low;
  const found = endpoints.findIndex((e) => e.key === key);
  if (found >= 0) return found;
  return low < endpoints.length ? low : 0;
}
