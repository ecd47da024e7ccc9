import type { CallOutcome } from '../../core/call-outcome.js';
import type { OverloadSettings } from '../../core/config/overload-options.js';
import type { Endpoint } from '../../core/endpoint.js';
import { OverloadedError } from '../../core/errors.js';
import { advance, seedFrom, unitAt } from '../../balancing/picker-random.js';
import type { EndpointLoad, LoadSource } from '../../balancing/picker.js';
import { AdaptiveThrottle } from './adaptive-throttle.js';

/**
 * Whether a new call may go out now: the circuit breaker's limits (calls in
 * flight to the service and to one endpoint, calls waiting for a first
 * endpoint) and adaptive throttling. Refusals are OverloadedErrors, returned
 * rather than thrown so that the gRPC LB policy can turn one into a failed
 * pick without a try/catch per call. Every transport asks the same object.
 */
export class Admission {
  private readonly throttle: AdaptiveThrottle;
  private state: number;
  private pending = 0;

  constructor(
    private readonly service: string,
    private readonly settings: OverloadSettings,
    private readonly loads: LoadSource,
    random: () => number,
  ) {
    this.throttle = new AdaptiveThrottle(settings.throttling);
    this.state = seedFrom(random);
  }

  /** Undefined when a call to `endpoint` (whose load record is `load`) may start now. */
  refusal(endpoint: Endpoint, load: EndpointLoad): OverloadedError | undefined {
    const { maxRequests, maxRequestsPerEndpoint } = this.settings.circuitBreaker;
    if (maxRequests > 0 && (this.loads.totalInFlight?.() ?? 0) >= maxRequests) {
      return new OverloadedError(this.service, 'max-requests', maxRequests);
    }
    if (maxRequestsPerEndpoint > 0 && load.inFlight >= maxRequestsPerEndpoint) {
      return new OverloadedError(this.service, 'max-requests-per-endpoint', maxRequestsPerEndpoint, endpoint.address);
    }
    if (this.throttle.enabled) {
      const p = this.throttle.rejectProbability();
      if (p > 0) {
        this.state = advance(this.state);
        if (unitAt(this.state) < p) {
          this.throttle.record(false);
          return new OverloadedError(this.service, 'throttled', Math.round(p * 100));
        }
      }
    }
    return undefined;
  }

  /**
   * Feeds a finished call to throttling: accepted when the service processed
   * it, rejected when it refused for load. Connection failures and timeouts
   * are outlier detection's business, not throttling's: they are not counted.
   */
  finished(outcome: CallOutcome): void {
    if (outcome === 'success' || outcome === 'application-error') this.throttle.record(true);
    else if (outcome === 'overload') this.throttle.record(false);
  }

  /** Counts a caller waiting for a first endpoint; throws OverloadedError past `max_pending`. Pair with `leavePending`. */
  enterPending(): void {
    const max = this.settings.circuitBreaker.maxPending;
    if (max > 0 && this.pending >= max) throw new OverloadedError(this.service, 'max-pending', max);
    this.pending++;
  }

  leavePending(): void {
    if (this.pending > 0) this.pending--;
  }
}
