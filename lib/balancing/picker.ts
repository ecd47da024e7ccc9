import type { Endpoint } from '../core/endpoint.js';

/** Per-pick input. `key` drives consistent hashing; other strategies ignore it. */
export interface PickContext {
  key?: string;
}

/**
 * Picks one endpoint per call. A picker is built for one snapshot and is
 * rebuilt when the snapshot changes; state that changes per call lives in
 * the picker (or in the shared {@link EndpointLoad} records), nothing else.
 * `pick` must not allocate and must be O(1) or O(log n).
 */
export interface Picker {
  /** Undefined only when the picker has no endpoints. */
  pick(context?: PickContext): Endpoint | undefined;
}

/** Live load of one endpoint, fed by the call path and read by load-aware strategies. */
export interface EndpointLoad {
  /** Calls started and not yet finished. */
  inFlight: number;
  /** Peak-EWMA latency, ms (0 until measured). */
  ewmaMs: number;
  /** Last update of `ewmaMs`, ms since epoch (performance clock). */
  stampMs: number;
}

/** Looks up (and lazily creates) the load record of an endpoint. */
export interface LoadSource {
  load(endpoint: Endpoint): EndpointLoad;
  /**
   * Sum of `inFlight` over every record of this source. Optional; when
   * present, bounded-load consistent hashing reads it in O(1) instead of
   * summing the picker's endpoints.
   */
  totalInFlight?(): number;
}

/** What a strategy gets when it builds a picker. */
export interface PickerBuildContext {
  /** Shared load records (in-flight, latency) of the client. */
  loads: LoadSource;
  /** Random source in [0, 1); injectable for deterministic tests. */
  random: () => number;
  /** The picker built for the previous snapshot, to carry state across rebuilds. */
  previous?: Picker;
}

/**
 * A load-balancing strategy: a named factory of pickers.
 *
 * @example
 * class FirstPicker implements Picker { constructor(private e: readonly Endpoint[]) {} pick() { return this.e[0]; } }
 * const first: BalancingStrategy = { name: 'first', build: (endpoints) => new FirstPicker(endpoints) };
 */
export interface BalancingStrategy {
  readonly name: string;
  /**
   * False when picks ignore `context.key`, so transports need not read a
   * key per call (every built-in but consistent_hash). Default true.
   */
  readonly usesKey?: boolean;
  build(endpoints: readonly Endpoint[], context: PickerBuildContext): Picker;
}
