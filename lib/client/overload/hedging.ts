import type { CallOutcome } from '../../core/call-outcome.js';
import type { PickContext } from '../../balancing/picker.js';
import type { CallHandle } from '../call-handle.js';
import type { ResolvedRetryOptions } from '../retry-policy.js';
import { startAdmitted, type AttemptHost, type AttemptPlan } from '../retry-loop.js';

/** What hedging needs from the client core besides what retries need. */
export interface HedgingHost extends AttemptHost {
  /** How long to wait before the next hedged attempt, ms; undefined: do not hedge (yet). */
  hedgeDelayMs(): number | undefined;
}

/**
 * Hedged calls (for idempotent calls only): the first attempt goes out, and
 * if it has not answered after the hedging delay a second goes to another
 * endpoint, then a third ... up to `maxAttempts`, each only while the retry
 * budget allows. The first success wins; the others run to their end and are
 * ignored (or, with `cancel`, are aborted through their `signal` and complete
 * as `neutral`). A failure that may be retried starts
 * the next attempt at once; one that may not ends the call with it (gRPC's
 * fatal status codes). When every attempt failed, the last failure is thrown.
 */
export function runHedged<T>(
  host: HedgingHost,
  plan: AttemptPlan<T>,
  retry: ResolvedRetryOptions,
  maxAttempts: number,
  options: { key?: string; timeoutMs?: number },
  cancel = false,
): Promise<T> {
  const deadline = options.timeoutMs !== undefined ? new Date(Date.now() + options.timeoutMs) : undefined;
  const context: PickContext = { key: options.key };
  const tried = new Set<string>();
  return new Promise<T>((resolve, reject) => {
    const inFlight = new Map<CallHandle, AbortController>();
    let started = 0;
    let settled = false;
    let timer: NodeJS.Timeout | undefined;

    const finish = (error: unknown, value?: T) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      // The attempts still out either run to their end (their outcome still feeds load and outlier
      // detection, and no stream is reset: servers behind nghttp2 close a connection that resets
      // more than ~33 streams a second) or, with hedging.cancel, are aborted now.
      if (cancel) {
        for (const [call, controller] of inFlight) {
          controller.abort();
          call.complete('neutral');
        }
        inFlight.clear();
      }
      if (error === undefined) resolve(value as T);
      // The transport's own error, rethrown as it came.
      // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors
      else reject(error);
    };

    const launch = () => {
      if (settled) return;
      clearTimeout(timer);
      let call: CallHandle;
      try {
        call = startAdmitted(host, context, tried);
      } catch (error) {
        // No endpoint or an overload refusal: the attempts already out may still answer.
        if (inFlight.size === 0) finish(error);
        return;
      }
      started++;
      tried.add(call.endpoint.key);
      const controller = new AbortController();
      inFlight.set(call, controller);
      const delay = started < maxAttempts ? host.hedgeDelayMs() : undefined;
      if (delay !== undefined) timer = setTimeout(hedge, delay);
      plan.run(call.endpoint, started, deadline, call, controller.signal).then(
        (value) => {
          if (!inFlight.delete(call)) return;
          if (!plan.completesOnSuccess) call.complete(plan.succeeded?.(value) ?? 'success');
          host.budget.onSuccess();
          finish(undefined, value);
        },
        (error: unknown) => {
          if (!inFlight.delete(call)) return;
          const outcome: CallOutcome = plan.classify(error);
          call.complete(outcome);
          if (settled) return;
          // As gRPC hedging: a failure that may not be retried ends the call; one that may starts the next attempt now.
          if (!plan.retryable(error, outcome, retry)) return finish(error);
          host.budget.onFailure();
          if (started < maxAttempts && host.budget.canRetry() && !host.closing.aborted) return launch();
          if (inFlight.size === 0) finish(error);
        },
      );
    };

    const hedge = () => {
      if (settled || started >= maxAttempts) return;
      if (host.budget.canRetry() && !host.closing.aborted) launch();
    };

    const begin = host.hasEndpoints() ? Promise.resolve() : host.awaitEndpoints();
    begin.then(launch, (error: unknown) => finish(error));
  });
}
