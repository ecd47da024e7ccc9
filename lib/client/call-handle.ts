import type { CallOutcome } from '../core/call-outcome.js';
import type { Endpoint } from '../core/endpoint.js';
import { onCallEnd, onCallStart } from '../balancing/endpoint-load.js';
import type { EndpointLoad } from '../balancing/picker.js';

/** Where a finished call's outcome goes (the client core: outlier detection, activity counters). */
export interface OutcomeSink {
  callFinished(endpoint: Endpoint, outcome: CallOutcome): void;
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
  private readonly startedAt: number;

  constructor(
    readonly endpoint: Endpoint,
    private readonly load: EndpointLoad,
    private readonly sink: OutcomeSink,
  ) {
    onCallStart(load);
    this.startedAt = performance.now();
  }

  /** Ends the call; a `neutral` outcome (cancelled by the caller) gives no latency sample. */
  complete(outcome: CallOutcome): void {
    if (this.done) return;
    this.done = true;
    const now = performance.now();
    onCallEnd(this.load, outcome === 'neutral' ? -1 : now - this.startedAt, now);
    this.sink.callFinished(this.endpoint, outcome);
  }
}
