import type { Endpoint } from '../core/endpoint.js';
import { EMPTY_PICKER } from './empty-picker.js';
import { loadRecordsOf } from './endpoint-load.js';
import type { BalancingStrategy, EndpointLoad, PickerBuildContext, Picker } from './picker.js';
import { advance, indexAt, otherIndexAt, seedFrom } from './picker-random.js';

/**
 * Power of two choices: draws two distinct endpoints from a generator state
 * (the draws of `state` and `advance(state)`) and returns the index of the
 * one with fewer calls in flight (the first on a tie). Two random probes
 * avoid both the herd behaviour of "always the least loaded" and the O(n)
 * scan it needs, and still keep the maximum load within O(log log n) of the
 * average.
 *
 * @example
 * this.state = advance(advance(this.state)); const i = lessLoadedOfTwo(this.loads, this.state);
 */
export function lessLoadedOfTwo(loads: readonly EndpointLoad[], state: number): number {
  const n = loads.length;
  if (n < 2) return 0;
  const first = indexAt(state, n);
  const second = otherIndexAt(advance(state), first, n);
  return loads[second].inFlight < loads[first].inFlight ? second : first;
}

/** Least connections by power of two choices over in-flight counts. */
export class LeastConnectionsPicker implements Picker {
  private state: number;

  constructor(
    private readonly endpoints: readonly Endpoint[],
    private readonly loads: readonly EndpointLoad[],
    seed: number,
  ) {
    this.state = seed;
  }

  pick(): Endpoint | undefined {
    this.state = advance(advance(this.state));
    return this.endpoints[lessLoadedOfTwo(this.loads, this.state)];
  }
}

/**
 * `least_connections`: sends each call to the less busy of two random
 * endpoints, by calls in flight from this client (fed by `onCallStart` /
 * `onCallEnd`). Adapts to slow or overloaded endpoints without any latency
 * measurement.
 *
 * @example
 * const picker = new LeastConnectionsStrategy().build(set.endpoints, { loads: new LoadTracker(), random: Math.random });
 */
export class LeastConnectionsStrategy implements BalancingStrategy {
  readonly name = 'least_connections';
  /** Picks ignore `context.key`. */
  readonly usesKey = false;

  build(endpoints: readonly Endpoint[], context: PickerBuildContext): Picker {
    if (endpoints.length === 0) return EMPTY_PICKER;
    return new LeastConnectionsPicker(endpoints, loadRecordsOf(endpoints, context), seedFrom(context.random));
  }
}
