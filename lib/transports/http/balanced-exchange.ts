import type { Dispatcher } from 'undici';
import type { CallOutcome } from '../../core/call-outcome.js';
import type { Endpoint } from '../../core/endpoint.js';
import type { CallHandle } from '../../client/call-handle.js';
import { runWithRetries, type AttemptPlan } from '../../client/retry-loop.js';
import type { ResolvedRetryOptions } from '../../client/retry-policy.js';
import type { ServiceClient } from '../../client/service-client.js';
import { rawHeader, requestHeader } from './dispatch-headers.js';
import { HttpEndpointError } from './http-errors.js';
import {
  httpErrorOutcome,
  httpRetryable,
  httpStatusOutcome,
  HttpStatusFailure,
  isReplayableBody,
  neverSent,
  retryAfterMs,
  type HttpRetrySafety,
} from './http-outcome.js';
import type { HttpPools } from './http-pools.js';
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

/** How long an endpoint that refused a connection is picked around (gRPC's reconnect backoff cap here). */
const RECONNECT_BACKOFF_MS = 1_000;

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
export class BalancedExchange implements AttemptPlan<void> {
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

type AttemptState = 'pending' | 'committed' | 'held' | 'discarding' | 'done';

/** An answer held back while the retry loop decides. */
interface HeldAnswer {
  status: number;
  rawHeaders: Buffer[];
  resume: () => void;
  statusText: string;
  trailers?: string[] | Buffer[] | null;
  error?: Error;
}

/** One attempt on one endpoint: the handler undici's pool drives. */
class HttpAttempt implements LegacyHandler {
  private state: AttemptState = 'pending';
  private outcome: CallOutcome = 'success';
  private held: HeldAnswer | undefined;
  private abortRequest: ((reason?: Error) => void) | undefined;
  private error: Error | undefined;

  constructor(
    private readonly exchange: BalancedExchange,
    readonly endpoint: Endpoint,
    private readonly call: CallHandle,
    private readonly resolve: () => void,
    private readonly reject: (error: unknown) => void,
  ) {}

  get isHeld(): boolean {
    return this.state === 'held';
  }

  /** Running on the wire: an abort goes to undici, which reports it through onError. */
  get abortable(): boolean {
    return (this.state === 'pending' || this.state === 'committed') && this.abortRequest !== undefined;
  }

  /** True when `error` is what this attempt failed with on the wire. */
  failedWith(error: Error): boolean {
    return this.error === error;
  }

  abort(reason: Error): void {
    this.abortRequest?.(reason);
  }

  onConnect(abort: (reason?: Error) => void): void {
    this.abortRequest = abort;
  }

  onHeaders(status: number, rawHeaders: Buffer[], resume: () => void, statusText: string): boolean {
    const user = this.exchange.handler;
    if (status < 200) return user.onHeaders?.(status, rawHeaders, resume, statusText) ?? true;
    const retryAfter = status === 429 || status === 503 ? rawHeader(rawHeaders, 'retry-after') : undefined;
    const context = this.exchange.context;
    this.outcome = httpStatusOutcome(status, retryAfter !== undefined, context.treat5xxAsFailure);
    if (this.outcome === 'overload') this.exchange.noteOverload(this.endpoint, retryAfter);
    if ((this.outcome === 'overload' || this.outcome === 'server-error') && this.exchange.mayRetryAnswer()) {
      this.state = 'held';
      this.held = { status, rawHeaders, resume, statusText };
      this.reject(new HttpStatusFailure(status, this.outcome));
      return false;
    }
    this.state = 'committed';
    this.resolve();
    user.onResponseStarted?.();
    return user.onHeaders?.(status, rawHeaders, resume, statusText) ?? true;
  }

  onData(chunk: Buffer): boolean {
    if (this.state === 'committed') return this.exchange.handler.onData?.(chunk) ?? true;
    return true;
  }

  onComplete(trailers: string[] | Buffer[] | null): void {
    if (this.state === 'held' && this.held) {
      this.held.trailers = trailers;
      return;
    }
    const committed = this.state === 'committed';
    this.state = 'done';
    this.call.complete(this.outcome);
    if (committed) this.exchange.handler.onComplete?.(trailers);
  }

  onError(error: Error): void {
    switch (this.state) {
      case 'pending':
        this.state = 'done';
        this.error = error;
        // Not accepting connections: picks go around it for a reconnect backoff, as gRPC picks
        // around a subchannel in TRANSIENT_FAILURE (outlier detection decides about ejection).
        if (neverSent(error))
          this.exchange.context.client.avoidEndpoint(this.endpoint, Date.now() + RECONNECT_BACKOFF_MS);
        this.reject(error);
        return;
      case 'committed':
        this.state = 'done';
        this.call.complete(httpErrorOutcome(error));
        this.exchange.handler.onError?.(this.exchange.describe(error, this.endpoint));
        return;
      case 'held':
        if (this.held) this.held.error = error;
        return;
      default:
        this.state = 'done';
    }
  }

  onUpgrade(status: number, rawHeaders: Buffer[] | string[] | null, socket: unknown): void {
    this.state = 'done';
    this.resolve();
    this.call.complete('success');
    this.exchange.handler.onUpgrade?.(status, rawHeaders, socket);
  }

  onBodySent(chunkSize: number, totalBytesSent: number): void {
    this.exchange.handler.onBodySent?.(chunkSize, totalBytesSent);
  }

  onRequestSent(): void {
    this.exchange.handler.onRequestSent?.();
  }

  /** The retry loop gave up on a held answer: the caller gets it as it came. */
  release(): void {
    const held = this.held;
    if (this.state !== 'held' || !held) return;
    this.state = 'committed';
    this.held = undefined;
    const user = this.exchange.handler;
    if (held.error) {
      this.state = 'done';
      user.onError?.(this.exchange.describe(held.error, this.endpoint));
      return;
    }
    user.onResponseStarted?.();
    const proceed = user.onHeaders?.(held.status, held.rawHeaders, held.resume, held.statusText) ?? true;
    if (held.trailers !== undefined) {
      this.state = 'done';
      user.onComplete?.(held.trailers);
      return;
    }
    if (proceed !== false) held.resume();
  }

  /** Another attempt replaces this one: a held body is drained (the connection stays in the pool). */
  discard(): void {
    if (this.state !== 'held') return;
    const held = this.held;
    this.held = undefined;
    this.state = held?.trailers !== undefined || held?.error ? 'done' : 'discarding';
    if (this.state === 'discarding') held?.resume();
  }
}
