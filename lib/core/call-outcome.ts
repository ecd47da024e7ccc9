/**
 * How one call ended, in terms every layer agrees on. Each transport maps
 * its own results (a gRPC status, an HTTP response, a socket error) onto
 * this with a small mapper; retries and outlier detection both read it, so
 * "may this be retried" and "is this endpoint broken" never disagree.
 *
 * - `success`: the endpoint answered and the call succeeded.
 * - `application-error`: the endpoint answered with an error of the
 *   application (gRPC INVALID_ARGUMENT, HTTP 404 ...): the endpoint is fine.
 * - `connection-failure`: the request never reached the application
 *   (connection refused or reset before it was written, gRPC UNAVAILABLE):
 *   the endpoint's fault, and safe to retry elsewhere.
 * - `timeout`: no answer in time; the request may have been processed, so it
 *   is retried only when the call is idempotent. Counts against the endpoint.
 * - `overload`: the endpoint refused for load (gRPC RESOURCE_EXHAUSTED,
 *   HTTP 429/503 with Retry-After): not broken, only busy.
 * - `server-error`: the endpoint answered that it failed (HTTP 5xx, where
 *   the transport is configured to count those): counts against the
 *   endpoint like a timeout; retried only when the call is idempotent.
 * - `neutral`: the caller gave up (cancelled), or the error did not come from
 *   the endpoint (a bug in the calling code): says nothing about the endpoint.
 */
export type CallOutcome =
  'success' | 'application-error' | 'connection-failure' | 'timeout' | 'server-error' | 'overload' | 'neutral';

/** Socket error codes meaning the endpoint could not be reached or dropped the connection. */
export const CONNECTION_ERROR_CODES: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
  'ETIMEDOUT',
  'ECONNABORTED',
]);

/**
 * The outcome of a plain Node.js error (a socket's `code`), for transports
 * that see raw socket errors.
 *
 * @example
 * outcomeOfSocketError(Object.assign(new Error('refused'), { code: 'ECONNREFUSED' })); // 'connection-failure'
 */
export function outcomeOfSocketError(error: unknown): CallOutcome | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && CONNECTION_ERROR_CODES.has(code)) return 'connection-failure';
  return undefined;
}

/** What outlier detection makes of an outcome: the endpoint failed, answered, or nothing is known. */
export function endpointVerdict(outcome: CallOutcome): 'failure' | 'answered' | 'unknown' {
  switch (outcome) {
    case 'connection-failure':
    case 'timeout':
    case 'server-error':
      return 'failure';
    case 'neutral':
      return 'unknown';
    default:
      return 'answered';
  }
}
