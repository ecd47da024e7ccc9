import { outcomeOfSocketError, type CallOutcome } from '../../core/call-outcome.js';

/** Methods that are safe to send twice (RFC 9110 §9.2.2), before the user's own additions. */
export const IDEMPOTENT_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);

/**
 * Errors that prove nothing of the request left this process: the
 * connection was never established (refused, unreachable, timed out while
 * connecting, the name did not resolve). undici writes nothing — and pulls
 * no byte of a body — before its socket is connected.
 */
const NEVER_SENT_CODES: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'UND_ERR_CONNECT_TIMEOUT',
]);

/** undici errors that mean "no answer in time". */
const TIMEOUT_CODES: ReadonlySet<string> = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);

/** undici errors of the connection itself (closed under the request, garbage on the wire). */
const CONNECTION_CODES: ReadonlySet<string> = new Set([
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_INFO',
  'UND_ERR_RES_CONTENT_LENGTH_MISMATCH',
]);

/** The `code` of an error, or of its cause (undici wraps socket errors). */
export function errorCode(error: unknown): string | undefined {
  const e = error as { code?: unknown; cause?: { code?: unknown } } | null | undefined;
  if (typeof e?.code === 'string') return e.code;
  return typeof e?.cause?.code === 'string' ? e.cause.code : undefined;
}

/**
 * HTTP's mapper of a failed attempt onto the shared outcomes: socket and
 * connection errors (refused, reset, closed, an answer that is not HTTP) →
 * connection-failure; header and body timeouts → timeout; the caller's
 * abort, and anything that is not about the endpoint → neutral.
 *
 * @example
 * httpErrorOutcome(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })); // 'connection-failure'
 */
export function httpErrorOutcome(error: unknown): CallOutcome {
  if (error instanceof HttpStatusFailure) return error.outcome;
  // An answer that is not HTTP (a gRPC port, a database): the endpoint's fault. undici often leaves its code unset.
  if (isParserError(error)) return 'connection-failure';
  const code = errorCode(error);
  if (code === undefined) return 'neutral';
  if (TIMEOUT_CODES.has(code)) return 'timeout';
  if (CONNECTION_CODES.has(code) || code.startsWith('HPE_')) return 'connection-failure';
  return outcomeOfSocketError({ code }) ?? (NEVER_SENT_CODES.has(code) ? 'connection-failure' : 'neutral');
}

/**
 * The outcome of an HTTP answer: 429, and 503 with `Retry-After` → overload
 * (busy, not broken: never an ejection); other 5xx → server-error when
 * `treat5xxAsFailure`, else the application's answer; 4xx →
 * application-error; everything else → success.
 *
 * @example
 * httpStatusOutcome(429, false, false); // 'overload'
 */
export function httpStatusOutcome(status: number, hasRetryAfter: boolean, treat5xxAsFailure: boolean): CallOutcome {
  if (status < 400) return 'success';
  if (status === 429 || (status === 503 && hasRetryAfter)) return 'overload';
  if (status >= 500) return treat5xxAsFailure ? 'server-error' : 'application-error';
  return 'application-error';
}

/**
 * `Retry-After` as ms from `now`: delay-seconds or an HTTP date, at most
 * `maxMs`; undefined when absent or unreadable.
 *
 * @example
 * retryAfterMs('2', Date.now(), 300_000); // 2000
 */
export function retryAfterMs(value: string | undefined, now: number, maxMs: number): number | undefined {
  if (value === undefined) return undefined;
  const text = value.trim();
  let ms: number;
  if (/^\d+$/.test(text)) ms = Number(text) * 1000;
  else {
    const at = Date.parse(text);
    if (Number.isNaN(at)) return undefined;
    ms = at - now;
  }
  return Math.min(Math.max(0, ms), maxMs);
}

/** What decides whether one HTTP request may be sent again, to another endpoint. */
export interface HttpRetrySafety {
  /** Safe to send twice: an idempotent method (or one the user marked). */
  idempotent: boolean;
  /** The body can be sent again as it was (none, a string or bytes); a stream cannot. */
  replayableBody: boolean;
}

/**
 * The retry rules of HTTP: a failed attempt goes to another endpoint only
 * when the request provably never reached a server (the connection was
 * never made), or when the method is idempotent and the body can be sent
 * again (a stream that was read is never replayed). A caller's abort is
 * never retried. A POST that reached a server — even one that died before
 * answering — is never sent twice.
 *
 * @example
 * httpRetryable(refusedError, 'connection-failure', { idempotent: false, replayableBody: false }); // true
 */
export function httpRetryable(error: unknown, outcome: CallOutcome, safety: HttpRetrySafety): boolean {
  if (outcome === 'neutral' || outcome === 'success' || outcome === 'application-error') return false;
  if (!(error instanceof HttpStatusFailure) && neverSent(error)) return true;
  return safety.idempotent && safety.replayableBody;
}

/** undici could not parse the answer as HTTP/1.1. */
export function isParserError(error: unknown): boolean {
  return (
    (error as { name?: unknown } | null)?.name === 'HTTPParserError' || Boolean(errorCode(error)?.startsWith('HPE_'))
  );
}

/** True when the error proves the request was never written (see NEVER_SENT_CODES). */
export function neverSent(error: unknown): boolean {
  const code = errorCode(error);
  return code !== undefined && NEVER_SENT_CODES.has(code);
}

/** Whether undici can write this body again as it is. */
export function isReplayableBody(body: unknown): boolean {
  return body === undefined || body === null || typeof body === 'string' || body instanceof Uint8Array;
}

/** An answer whose status may send the request elsewhere (429, 503, 5xx counted as failures). */
export class HttpStatusFailure extends Error {
  constructor(
    readonly status: number,
    readonly outcome: CallOutcome,
  ) {
    super(`HTTP ${status}`);
    this.name = 'HttpStatusFailure';
  }
}
