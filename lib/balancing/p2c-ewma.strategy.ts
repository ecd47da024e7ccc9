import type { Endpoint } from '../core/endpoint.js';
import { ConfigurationError } from '../core/errors.js';
import { EMPTY_PICKER } from './empty-picker.js';
import { DEFAULT_EWMA_DECAY_MS, decayedLatency, loadRecordsOf } from './endpoint-load.js';
import type { BalancingStrategy, EndpointLoad, Picker, PickerBuildContext } from './picker.js';
import { advance, indexAt, otherIndexAt, seedFrom } from './picker-random.js';

/**
 * Cost of an endpoint never measured but already busy: above any real
 * latency × load, so it gets one probe call at a time until its first answer
 * (Finagle's rule); an idle unmeasured endpoint costs 0 and is tried at once.
 */
const UNMEASURED_BUSY_COST = 1e12;

/**
 * Peak-EWMA cost of an endpoint at `nowMs`: expected latency × (calls in
 * flight + 1), i.e. roughly how long a new call would wait there.
 *
 * @example
 * const cost = peakEwmaCost(tracker.load(endpoint), performance.now());
 */
export function peakEwmaCost(load: EndpointLoad, nowMs: number, decayMs = DEFAULT_EWMA_DECAY_MS): number {
  const latency = decayedLatency(load, nowMs, decayMs);
  if (latency === 0) return load.inFlight === 0 ? 0 : UNMEASURED_BUSY_COST + load.inFlight;
  return latency * (load.inFlight + 1);
}

/**
 * Power of two choices by peak-EWMA cost. Needs no clock: decay multiplies
 * both candidates' latency by the same e^(-now/τ), so comparing them as of
 * the later of their two timestamps gives the same answer as comparing them
 * now, and saves a clock read (tens of ns) per pick.
 */
export class P2cEwmaPicker implements Picker {
  private state: number;

  constructor(
    private readonly endpoints: readonly Endpoint[],
    private readonly loads: readonly EndpointLoad[],
    seed: number,
    private readonly decayMs: number,
  ) {
    this.state = seed;
  }

  pick(): Endpoint | undefined {
    const n = this.endpoints.length;
    if (n === 1) return this.endpoints[0];
    this.state = advance(this.state);
    const first = indexAt(this.state, n);
    this.state = advance(this.state);
    const second = otherIndexAt(this.state, first, n);
    const a = this.loads[first];
    const b = this.loads[second];
    const asOf = a.stampMs > b.stampMs ? a.stampMs : b.stampMs;
    return this.endpoints[peakEwmaCost(b, asOf, this.decayMs) < peakEwmaCost(a, asOf, this.decayMs) ? second : first];
  }
}

/** Options of {@link P2cEwmaStrategy}. */
export interface P2cEwmaOptions {
  /** Name to register this configuration under (default `p2c_ewma`). */
  name?: string;
  /**
   * Time constant of the latency average, ms (default 10 000). Must match the
   * `decayMs` given to `onCallEnd` by the call path.
   */
  decayMs?: number;
}

/**
 * `p2c_ewma`: power of two choices by peak-EWMA latency × (in flight + 1), as
 * in Finagle and linkerd. Reacts to an endpoint that slows down on its first
 * slow answer (peak sensitivity) and forgets it gradually. Needs the call
 * path to report `onCallStart` / `onCallEnd(load, latencyMs, nowMs)`.
 *
 * @example
 * const picker = new P2cEwmaStrategy({ decayMs: 5_000 }).build(set.endpoints, { loads: new LoadTracker(), random: Math.random });
 */
export class P2cEwmaStrategy implements BalancingStrategy {
  readonly name: string;
  /** Picks ignore `context.key`. */
  readonly usesKey = false;
  private readonly decayMs: number;

  constructor(options: P2cEwmaOptions = {}) {
    const decayMs = options.decayMs ?? DEFAULT_EWMA_DECAY_MS;
    if (typeof decayMs !== 'number' || !Number.isFinite(decayMs) || decayMs <= 0) {
      throw ConfigurationError.single('p2c_ewma.decayMs', decayMs, 'a number of milliseconds > 0');
    }
    this.name = options.name ?? 'p2c_ewma';
    this.decayMs = decayMs;
  }

  build(endpoints: readonly Endpoint[], context: PickerBuildContext): Picker {
    if (endpoints.length === 0) return EMPTY_PICKER;
    return new P2cEwmaPicker(endpoints, loadRecordsOf(endpoints, context), seedFrom(context.random), this.decayMs);
  }
}
