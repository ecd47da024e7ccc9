import type { CallOutcome } from '../core/call-outcome.js';
import type { Endpoint } from '../core/endpoint.js';
import type { EndpointLoad } from '../balancing/picker.js';

/** The client core's two ends of a call (ServiceClient implements it). */
export interface CallTracker {
  /** Counts the pick and the call in flight; returns the endpoint's load record. */
  callStarted(endpoint: Endpoint): EndpointLoad;
  /** Ends the call: in flight -1, latency to the EWMA (negative: none), outcome to outlier detection. */
  callEnded(endpoint: Endpoint, load: EndpointLoad, latencyMs: number, outcome: CallOutcome): void;
}

/**
 * One call in flight on a picked endpoint. Made by `ServiceClient.startCall()`
 * (which counts the call in the endpoint's load), completed once by the
 * transport with the call's outcome: that ends the in-flight count, feeds the
 * latency to the load-aware strategies and the outcome to outlier detection.
 * Completing twice is a no-op, so a transport may complete on every path
 * without bookkeeping.
 *
 * @example
 * const call = client.startCall(client.pickEndpoint()); try { await send(call.endpoint); call.complete('success'); } catch (e) { call.complete(outcomeOf(e)); throw e; }
 */
export class CallHandle {
  private done = false;
  private readonly load: EndpointLoad;
  private readonly startedAt: number;

  constructor(
    readonly endpoint: Endpoint,
    private readonly tracker: CallTracker,
  ) {
    this.load = tracker.callStarted(endpoint);
    this.startedAt = performance.now();
  }

  /** Ends the call; a `neutral` outcome (cancelled by the caller) gives no latency sample. */
  complete(outcome: CallOutcome): void {
    if (this.done) return;
    this.done = true;
    const latency = outcome === 'neutral' ? -1 : performance.now() - this.startedAt;
    this.tracker.callEnded(this.endpoint, this.load, latency, outcome);
  }
}
