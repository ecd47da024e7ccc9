import type { Dispatcher } from 'undici';
import type { CallOutcome } from '../../core/call-outcome.js';
import type { Endpoint } from '../../core/endpoint.js';
import type { CallHandle } from '../../client/call-handle.js';
import { runWithRetries, type AttemptPlan } from '../../client/retry-loop.js';
import type { ResolvedRetryOptions } from '../../client/retry-policy.js';
import type { ServiceClient } from '../../client/service-client.js';
import { requestHeader } from './dispatch-headers.js';
import { HttpEndpointError } from './http-errors.js';
import {
  httpErrorOutcome,
  httpRetryable,
  HttpStatusFailure,
  isReplayableBody,
  neverSent,
  retryAfterMs,
  type HttpRetrySafety,
} from './http-outcome.js';
import type { HttpPools } from './http-pools.js';
import { HttpAttempt, type AttemptOwner } from './http-attempt.js';
import type { LegacyHandler } from './legacy-handler.js';

/** What every request of one service shares. */
export interface ExchangeContext {
  readonly client: ServiceClient;
  readonly pools: HttpPools;
  readonly retry: ResolvedRetryOptions;
  /** Request header carrying the consistent-hash key (lower case). */
  readonly hashHeader: string;
  readonly treat5xxAsFailure: boolean;
  readonly idempotentMethods: ReadonlySet<string>;
  readonly maxRetryAfterMs: number;
}

const noop = (): void => undefined;

/**
 * One HTTP request through the balanced dispatcher: picks an endpoint,
 * sends the request on that endpoint's pool and, when an attempt fails in a
 * way HTTP's rules allow (see httpRetryable), sends it again to another
 * endpoint through the shared retry loop (backoff, deadline, budget).
 *
 * The caller's handler sees exactly one response. An answer that may send
 * the request elsewhere (429, 503 with Retry-After, a 5xx counted as a
 * failure) is held, paused, until the retry loop decides: when it retries,
 * the held body is drained (the connection stays usable); when it does not,
 * the held answer is delivered as it came. The attempt's call handle ends
 * with the response body, so in-flight counts cover the whole exchange.
 */
export class BalancedExchange implements AttemptPlan<void>, AttemptOwner {
  readonly completesOnSuccess = true;
  private current: HttpAttempt | undefined;
  private finished = false;
  private abortReason: Error | undefined;
  private readonly safety: HttpRetrySafety;

  constructor(
    readonly context: ExchangeContext,
    readonly options: Dispatcher.DispatchOptions,
    readonly handler: LegacyHandler,
  ) {
    const method = (options.method ?? 'GET').toUpperCase();
    this.safety = {
      idempotent: context.idempotentMethods.has(method),
      replayableBody: isReplayableBody(options.body),
    };
  }

  start(): void {
    // The caller's abort reaches whichever attempt is running, or stops the retries.
    this.handler.onConnect?.((reason) => this.abort(reason));
    const key = requestHeader(this.options.headers, this.context.hashHeader);
    runWithRetries(this.context.client, this, this.context.retry, key === undefined ? {} : { key }).then(
      noop,
      (error: unknown) => this.fail(error),
    );
  }

  run(endpoint: Endpoint, _attempt: number, _deadline: Date | undefined, call: CallHandle): Promise<void> {
    if (this.abortReason) return Promise.reject(this.abortReason);
    this.current?.discard();
    return new Promise<void>((resolve, reject) => {
      const attempt = new HttpAttempt(this, endpoint, call, resolve, reject);
      this.current = attempt;
      try {
        this.context.pools.get(endpoint).pool.dispatch(this.options, attempt);
      } catch (error) {
        attempt.onError(error as Error);
      }
    });
  }

  classify(error: unknown): CallOutcome {
    return httpErrorOutcome(error);
  }

  retryable(error: unknown, outcome: CallOutcome): boolean {
    return this.abortReason === undefined && httpRetryable(error, outcome, this.safety);
  }

  /** A refused connection: retried like gRPC's transparent retries, without spending the budget. */
  neverSent(error: unknown): boolean {
    return !(error instanceof HttpStatusFailure) && neverSent(error);
  }

  /** May an answer with this outcome be held back for a retry? (idempotent, body replayable, not aborted) */
  mayRetryAnswer(): boolean {
    return this.abortReason === undefined && this.safety.idempotent && this.safety.replayableBody;
  }

  /** A 429 / 503 answer: with Retry-After, the endpoint is avoided that long. Never an ejection. */
  noteOverload(endpoint: Endpoint, retryAfter: string | undefined): void {
    const now = Date.now();
    const ms = retryAfterMs(retryAfter, now, this.context.maxRetryAfterMs);
    if (ms !== undefined && ms > 0) this.context.client.avoidEndpoint(endpoint, now + ms);
  }

  /** The error the caller sees for a transport failure at `endpoint`. */
  describe(error: Error, endpoint: Endpoint): Error {
    if (error === this.abortReason || httpErrorOutcome(error) === 'neutral') return error;
    return new HttpEndpointError(this.context.client.service, endpoint, error);
  }

  private abort(reason: Error | undefined): void {
    if (this.finished) return;
    const why = reason ?? new DOMException('This operation was aborted', 'AbortError');
    this.abortReason = why;
    const attempt = this.current;
    if (attempt !== undefined && attempt.abortable) {
      attempt.abort(why);
      return;
    }
    // Between attempts (backoff), before the first, or while an answer is held: end here.
    this.finished = true;
    attempt?.discard();
    this.handler.onError?.(why);
  }

  private fail(error: unknown): void {
    if (this.finished) return;
    this.finished = true;
    const attempt = this.current;
    if (error instanceof HttpStatusFailure && attempt?.isHeld) {
      attempt.release();
      return;
    }
    const err = error instanceof Error ? error : new Error(String(error));
    this.handler.onError?.(
      attempt !== undefined && attempt.failedWith(err) ? this.describe(err, attempt.endpoint) : err,
    );
  }
}
