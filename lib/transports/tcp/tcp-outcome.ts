import type { CallOutcome } from '../../core/call-outcome.js';
import { DiscoveryError } from '../../core/errors.js';

/**
 * A send() or emit() that failed on one endpoint below the application: no
 * connection, a write that did not leave this process, a connection lost
 * before the answer, or no answer in time. `written` says whether the
 * packet's bytes reached the socket (and so maybe the server): that decides
 * whether another endpoint may be tried.
 */
export class TcpTransportError extends DiscoveryError {
  constructor(
    message: string,
    /** `host:port` of the endpoint. */
    readonly endpoint: string,
    readonly written: boolean,
    readonly timedOut: boolean,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The caller unsubscribed (or the client closed) while the attempt ran: says nothing about the endpoint. */
export class TcpAttemptCancelledError extends DiscoveryError {}

/**
 * The server answered with an error (its handler threw, or it has no
 * handler for the pattern). Carried through the retry loop in this wrapper
 * and handed to the subscriber as Nest's ClientTCP would: the `err` itself.
 */
export class TcpErrorReply extends Error {
  constructor(readonly err: unknown) {
    super('the server answered with an error');
  }
}

/**
 * TCP's mapper onto the shared outcomes: no connection, a lost connection
 * (including an endpoint that does not speak Nest's protocol) →
 * connection-failure; no answer or no connection in time → timeout; an
 * error answered by the server → application-error; a cancelled attempt or
 * an error raised on this side (a serializer that threw) → neutral.
 *
 * @example
 * tcpOutcome(new TcpErrorReply('no handler')); // 'application-error'
 */
export function tcpOutcome(error: unknown): CallOutcome {
  if (error instanceof TcpTransportError) return error.timedOut ? 'timeout' : 'connection-failure';
  if (error instanceof TcpErrorReply) return 'application-error';
  return 'neutral';
}

/**
 * Whether a failed attempt may be repeated on another endpoint: never once
 * a value reached the subscriber (it would see values twice); always when
 * the packet was never written (no server saw it); after it was written
 * only for an idempotent pattern, and only for a lost connection or a
 * timeout (an answered error is the application's verdict).
 *
 * @example
 * tcpRetryable(error, { idempotent: false, delivered: false }); // true only when !error.written
 */
export function tcpRetryable(error: unknown, request: { idempotent: boolean; delivered: boolean }): boolean {
  if (request.delivered || !(error instanceof TcpTransportError)) return false;
  return !error.written || request.idempotent;
}
