import type { CallOutcome } from '../../core/call-outcome.js';
import type { Endpoint } from '../../core/endpoint.js';
import type { CallHandle } from '../../client/call-handle.js';
import { rawHeader } from './dispatch-headers.js';
import { httpErrorOutcome, httpStatusOutcome, HttpStatusFailure, neverSent } from './http-outcome.js';
import type { ExchangeContext } from './balanced-exchange.js';
import type { LegacyHandler } from './legacy-handler.js';

/** How long an endpoint that refused a connection is picked around (gRPC's reconnect backoff cap here). */
const RECONNECT_BACKOFF_MS = 1_000;

/** What an attempt needs from the request it belongs to (BalancedExchange). */
export interface AttemptOwner {
  readonly context: ExchangeContext;
  /** The caller's handler: it sees one response. */
  readonly handler: LegacyHandler;
  /** May an answer that says overload or server-error be held back for a retry? */
  mayRetryAnswer(): boolean;
  /** A 429 / 503 answer, with its Retry-After. */
  noteOverload(endpoint: Endpoint, retryAfter: string | undefined): void;
  /** The error the caller sees for a transport failure at `endpoint`. */
  describe(error: Error, endpoint: Endpoint): Error;
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

/**
 * One attempt of a request on one endpoint: the handler undici's pool
 * drives. It settles the attempt for the retry loop (resolves when the
 * answer is the caller's, rejects on a transport failure or an answer that
 * may be retried), forwards a committed answer to the caller's handler, and
 * ends its call handle with the outcome when the response body ends.
 */
export class HttpAttempt implements LegacyHandler {
  private state: AttemptState = 'pending';
  private outcome: CallOutcome = 'success';
  private held: HeldAnswer | undefined;
  private abortRequest: ((reason?: Error) => void) | undefined;
  private error: Error | undefined;

  constructor(
    private readonly exchange: AttemptOwner,
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
