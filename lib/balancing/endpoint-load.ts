import type { Endpoint } from '../core/endpoint.js';
import type { EndpointLoad, LoadSource, PickerBuildContext } from './picker.js';

/**
 * Time constant of the peak-EWMA latency, ms: a sample's influence falls to
 * 1/e after this long. Finagle and linkerd both default to 10 s.
 */
export const DEFAULT_EWMA_DECAY_MS = 10_000;

/** Smallest latency recorded, so a measured endpoint never looks "never measured" (ewmaMs 0). */
const MIN_LATENCY_MS = 1e-3;

/**
 * A fresh load record: nothing in flight, latency not measured yet.
 *
 * @example
 * const load = createEndpointLoad();
 */
export function createEndpointLoad(): EndpointLoad {
  return { inFlight: 0, ewmaMs: 0, stampMs: 0 };
}

/**
 * Load record that also keeps a shared total up to date, so bounded-load
 * hashing can read the average in O(1). Created by {@link LoadTracker}.
 */
class TrackedLoad implements EndpointLoad {
  inFlight = 0;
  ewmaMs = 0;
  stampMs = 0;
  constructor(readonly totals: { inFlight: number }) {}
}

/**
 * Records the start of a call on an endpoint. Call exactly once per call,
 * before sending it; pair with {@link onCallEnd}.
 *
 * @example
 * const load = tracker.load(endpoint); onCallStart(load);
 */
export function onCallStart(load: EndpointLoad): void {
  load.inFlight++;
  if (load instanceof TrackedLoad) load.totals.inFlight++;
}

/**
 * Records the end of a call (success or failure) and folds its latency into
 * the peak-EWMA: a sample above the current estimate replaces it at once (a
 * slowing endpoint is noticed on the first slow answer); a lower one is
 * blended in with weight `1 - exp(-elapsed / decayMs)`, so improvement is
 * believed only gradually. Pass a negative `latencyMs` to end a call without
 * a latency sample (e.g. cancelled before it was sent).
 *
 * @example
 * const t0 = performance.now(); onCallStart(load); await call(); const t1 = performance.now(); onCallEnd(load, t1 - t0, t1);
 */
export function onCallEnd(load: EndpointLoad, latencyMs: number, nowMs: number, decayMs = DEFAULT_EWMA_DECAY_MS): void {
  if (load.inFlight > 0) {
    load.inFlight--;
    if (load instanceof TrackedLoad && load.totals.inFlight > 0) load.totals.inFlight--;
  }
  if (!(latencyMs >= 0) || !Number.isFinite(nowMs)) return;
  const sample = latencyMs > MIN_LATENCY_MS ? latencyMs : MIN_LATENCY_MS;
  if (load.ewmaMs === 0 || sample > load.ewmaMs) {
    load.ewmaMs = sample;
  } else {
    const elapsed = nowMs > load.stampMs ? nowMs - load.stampMs : 0;
    const keep = Math.exp(-elapsed / decayMs);
    load.ewmaMs = load.ewmaMs * keep + sample * (1 - keep);
  }
  load.stampMs = nowMs;
}

/**
 * The latency estimate as seen at `nowMs`: it decays toward 0 while no answer
 * arrives, so an endpoint that was slow once is probed again after a while
 * instead of being starved forever (Finagle does the same on read). Returns
 * 0 for an endpoint never measured. Pure: does not modify `load`.
 *
 * @example
 * const ms = decayedLatency(load, performance.now());
 */
export function decayedLatency(load: EndpointLoad, nowMs: number, decayMs = DEFAULT_EWMA_DECAY_MS): number {
  const ewma = load.ewmaMs;
  if (ewma === 0) return 0;
  const elapsed = nowMs - load.stampMs;
  return elapsed > 0 ? ewma * Math.exp(-elapsed / decayMs) : ewma;
}

/**
 * Resolves the load record of each endpoint once, at build time, so a pick
 * reads `records[i].inFlight` instead of looking the endpoint up. The source
 * must keep returning the same record per endpoint (LoadTracker does).
 *
 * @example
 * const records = loadRecordsOf(endpoints, context);
 */
export function loadRecordsOf(endpoints: readonly Endpoint[], context: PickerBuildContext): EndpointLoad[] {
  return endpoints.map((endpoint) => context.loads.load(endpoint));
}

/**
 * The load records of one client: one per endpoint key, created on first use,
 * kept across snapshots (so in-flight counts survive a rebuild) and pruned by
 * {@link LoadTracker.retain} when an endpoint has left and has nothing in flight.
 *
 * @example
 * const loads = new LoadTracker(); const picker = strategy.build(set.endpoints, { loads, random: Math.random });
 * loads.retain(set.endpoints); // on every new snapshot
 */
export class LoadTracker implements LoadSource {
  private readonly records = new Map<string, TrackedLoad>();
  private readonly totals = { inFlight: 0 };

  load(endpoint: Endpoint): EndpointLoad {
    let record = this.records.get(endpoint.key);
    if (record === undefined) {
      record = new TrackedLoad(this.totals);
      this.records.set(endpoint.key, record);
    }
    return record;
  }

  /** The record of `key`, if one exists (does not create one). */
  peek(key: string): EndpointLoad | undefined {
    return this.records.get(key);
  }

  totalInFlight(): number {
    return this.totals.inFlight;
  }

  /** Number of records held. */
  get size(): number {
    return this.records.size;
  }

  /**
   * Drops the records of endpoints that left (`removed`, from a snapshot's
   * diff), except those with calls still in flight: what {@link retain}
   * does, at the cost of what changed.
   */
  forget(removed: readonly Endpoint[]): void {
    for (const endpoint of removed) {
      const record = this.records.get(endpoint.key);
      if (record !== undefined && record.inFlight === 0) this.records.delete(endpoint.key);
    }
  }

  /**
   * Drops the records of endpoints not in `endpoints`, except those with calls
   * still in flight: their calls will end and decrement them, and if the
   * endpoint comes back its count is still right. Call on each snapshot.
   */
  retain(endpoints: readonly Endpoint[]): void {
    const keep = new Set<string>();
    for (const endpoint of endpoints) keep.add(endpoint.key);
    for (const [key, record] of this.records) {
      if (!keep.has(key) && record.inFlight === 0) this.records.delete(key);
    }
  }
}
