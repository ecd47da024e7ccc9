import { onCallEnd, onCallStart, type LoadTracker } from '../../../../lib/balancing/endpoint-load.js';
import type { Picker } from '../../../../lib/balancing/picker.js';
import type { Endpoint } from '../../../../lib/core/index.js';

/** What a simulated run observed. */
export interface SimulationResult {
  /** Calls sent to each endpoint key. */
  calls: Map<string, number>;
  /** Highest in-flight count seen on each endpoint key. */
  peakInFlight: Map<string, number>;
}

/**
 * A discrete-time simulation of a client: one call starts every `intervalMs`
 * of simulated time, goes to `picker.pick`, and ends after
 * `latencyMs(endpoint, nowMs)`, feeding `onCallStart` / `onCallEnd` exactly as
 * the call path does. No real time passes.
 */
export function simulateCalls(options: {
  picker: Picker;
  loads: LoadTracker;
  calls: number;
  intervalMs: number;
  latencyMs: (endpoint: Endpoint, nowMs: number) => number;
  startMs?: number;
}): SimulationResult {
  const calls = new Map<string, number>();
  const peakInFlight = new Map<string, number>();
  // Pending completions kept sorted by end time (small simulations: insertion is fine).
  const pending: { endMs: number; startMs: number; endpoint: Endpoint }[] = [];
  let now = options.startMs ?? 1_000;
  const finishUntil = (t: number) => {
    while (pending.length > 0 && pending[0].endMs <= t) {
      const done = pending.shift()!;
      onCallEnd(options.loads.load(done.endpoint), done.endMs - done.startMs, done.endMs);
    }
  };
  for (let i = 0; i < options.calls; i++) {
    now += options.intervalMs;
    finishUntil(now);
    const endpoint = options.picker.pick()!;
    const load = options.loads.load(endpoint);
    onCallStart(load);
    calls.set(endpoint.key, (calls.get(endpoint.key) ?? 0) + 1);
    peakInFlight.set(endpoint.key, Math.max(peakInFlight.get(endpoint.key) ?? 0, load.inFlight));
    const endMs = now + options.latencyMs(endpoint, now);
    let at = pending.length;
    while (at > 0 && pending[at - 1].endMs > endMs) at--;
    pending.splice(at, 0, { endMs, startMs: now, endpoint });
  }
  finishUntil(Number.POSITIVE_INFINITY);
  return { calls, peakInFlight };
}
