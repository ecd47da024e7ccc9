import { backoffDelay } from '../core/backoff.js';
import type { CallOutcome } from '../core/call-outcome.js';
import type { Endpoint } from '../core/endpoint.js';
import type { PickContext } from '../balancing/picker.js';
import { abortableSleep } from '../registry/shared/abortable-sleep.js';
import { OverloadedError } from '../core/errors.js';
import type { CallHandle } from './call-handle.js';
import type { ResolvedRetryOptions, RetryBudget } from './retry-policy.js';

/** What one transport contributes to a retried call. */
export interface AttemptPlan<T> {
  /**
   * Sends one attempt to `endpoint`. `call` is the attempt's handle (see
   * `completesOnSuccess`); `signal` aborts a hedged attempt that lost, when
   * hedging.cancel is on.
   */
  run(
    endpoint: Endpoint,
    attempt: number,
    deadline: Date | undefined,
    call: CallHandle,
    signal?: AbortSignal,
  ): Promise<T>;
  /** The transport's mapping of a failure onto the shared outcomes. */
  classify(error: unknown): CallOutcome;
  /** May this failure be retried on another endpoint? (the transport's safety rules) */
  retryable(error: unknown, outcome: CallOutcome, retry: ResolvedRetryOptions): boolean;
  /** The outcome of an attempt that succeeded; default `success`. A fire-and-forget write says `neutral`: its latency is not the endpoint's. */
  succeeded?(result: T): CallOutcome;
  /**
   * The transport completes the handle of an attempt that resolved itself,
   * later and with its own outcome (HTTP: when the response body ends, with
   * the status's outcome). Default: completed as `success` when `run` resolves.
   */
  completesOnSuccess?: boolean;
  /**
   * True when a retryable failure provably never left this process (the
   * connection was refused): like gRPC's transparent retries, retrying it
   * loads no server, so it spends an attempt but not the retry budget.
   */
  neverSent?(error: unknown): boolean;
}

/** The client core, as the retry loop uses it. */
export interface AttemptHost {
  readonly service: string;
  readonly random: () => number;
  readonly budget: RetryBudget;
  /** Aborted when the client closes: a backoff in progress ends at once. */
  readonly closing: AbortSignal;
  /** Waits for the first endpoints (bounded by the client's ready timeout and circuit_breaker.max_pending). */
  awaitEndpoints(): Promise<void>;
  hasEndpoints(): boolean;
  /** Endpoints served now. */
  servedCount(): number;
  /** A pick that avoids endpoints this call already failed on, when others exist. */
  pickAvoiding(context: PickContext, tried: ReadonlySet<string>): Endpoint;
  startCall(endpoint: Endpoint): CallHandle;
}

/**
 * Runs a call with retries on other endpoints: exponential backoff with full
 * jitter, at most `maxAttempts`, within the call's deadline and the client's
 * retry budget (gRPC retry throttling). Every attempt is counted in the
 * endpoint's load and its outcome reaches outlier detection. Shared by every
 * transport, so "retried" means the same over gRPC, HTTP and TCP.
 */
export async function runWithRetries<T>(
  host: AttemptHost,
  plan: AttemptPlan<T>,
  retry: ResolvedRetryOptions,
  options: { key?: string; timeoutMs?: number },
): Promise<T> {
  const deadline = options.timeoutMs !== undefined ? new Date(Date.now() + options.timeoutMs) : undefined;
  const context: PickContext = { key: options.key };
  const tried = new Set<string>();
  for (let attempt = 1; ; attempt++) {
    if (!host.hasEndpoints()) await host.awaitEndpoints();
    const call = startAdmitted(host, context, tried);
    try {
      const result = await plan.run(call.endpoint, attempt, deadline, call);
      if (!plan.completesOnSuccess) call.complete(plan.succeeded?.(result) ?? 'success');
      host.budget.onSuccess();
      return result;
    } catch (error) {
      const outcome = plan.classify(error);
      call.complete(outcome);
      const retryable = plan.retryable(error, outcome, retry);
      const transparent = retryable && plan.neverSent?.(error) === true;
      if (retryable && !transparent) host.budget.onFailure();
      tried.add(call.endpoint.key);
      const delay = backoffDelay(attempt - 1, {
        initialMs: retry.initialBackoffMs,
        maxMs: retry.maxBackoffMs,
        factor: retry.backoffMultiplier,
        random: host.random,
      });
      const outOfTime = deadline !== undefined && Date.now() + delay >= deadline.getTime();
      const budgetAllows = transparent || host.budget.canRetry();
      if (!retryable || attempt >= retry.maxAttempts || outOfTime || !budgetAllows || host.closing.aborted) {
        throw error;
      }
      await abortableSleep(delay, host.closing);
      if (host.closing.aborted) throw error;
    }
  }
}

/**
 * Starts a call on a picked endpoint the circuit breaker admits: an endpoint
 * at its own in-flight limit is passed over for another; any other refusal
 * (service limit, throttling) is thrown at once, never retried.
 */
export function startAdmitted(host: AttemptHost, context: PickContext, tried: Set<string>): CallHandle {
  const passed = new Set(tried);
  for (;;) {
    const endpoint = host.pickAvoiding(context, passed);
    try {
      return host.startCall(endpoint);
    } catch (error) {
      const full = error instanceof OverloadedError && error.reason === 'max-requests-per-endpoint';
      if (!full || passed.has(endpoint.key) || passed.size + 1 >= host.servedCount()) throw error;
      passed.add(endpoint.key);
    }
  }
}
