import { describe, expect, it } from 'vitest';
import {
  httpErrorOutcome,
  httpRetryable,
  httpStatusOutcome,
  HttpStatusFailure,
  isReplayableBody,
  retryAfterMs,
} from '../../../../lib/transports/http/http-outcome.js';

const coded = (code: string) => Object.assign(new Error(code), { code });

describe('HTTP outcomes', () => {
  it('maps statuses: 429 and 503 with Retry-After are overload; 5xx only by choice a failure', () => {
    expect(httpStatusOutcome(200, false, false)).toBe('success');
    expect(httpStatusOutcome(304, false, false)).toBe('success');
    expect(httpStatusOutcome(404, false, false)).toBe('application-error');
    expect(httpStatusOutcome(429, false, false)).toBe('overload');
    expect(httpStatusOutcome(503, true, false)).toBe('overload');
    expect(httpStatusOutcome(503, false, false)).toBe('application-error');
    expect(httpStatusOutcome(503, false, true)).toBe('server-error');
    expect(httpStatusOutcome(500, false, true)).toBe('server-error');
  });

  it('maps transport errors: connection errors, timeouts, parser errors; an abort says nothing', () => {
    expect(httpErrorOutcome(coded('ECONNREFUSED'))).toBe('connection-failure');
    expect(httpErrorOutcome(coded('ECONNRESET'))).toBe('connection-failure');
    expect(httpErrorOutcome(coded('UND_ERR_SOCKET'))).toBe('connection-failure');
    expect(httpErrorOutcome(coded('UND_ERR_CONNECT_TIMEOUT'))).toBe('connection-failure');
    expect(httpErrorOutcome(coded('UND_ERR_HEADERS_TIMEOUT'))).toBe('timeout');
    expect(httpErrorOutcome(Object.assign(new Error('Response does not match'), { name: 'HTTPParserError' }))).toBe(
      'connection-failure',
    );
    expect(httpErrorOutcome(new DOMException('aborted', 'AbortError'))).toBe('neutral');
    expect(httpErrorOutcome(new Error('a bug'))).toBe('neutral');
    expect(httpErrorOutcome(new Error('wrapped', { cause: coded('ECONNRESET') }))).toBe('connection-failure');
    expect(httpErrorOutcome(new HttpStatusFailure(429, 'overload'))).toBe('overload');
  });

  it('retries what never left, and what is idempotent with a body it can send again', () => {
    const post = { idempotent: false, replayableBody: false };
    const get = { idempotent: true, replayableBody: true };
    const putStream = { idempotent: true, replayableBody: false };
    expect(httpRetryable(coded('ECONNREFUSED'), 'connection-failure', post)).toBe(true);
    expect(httpRetryable(coded('ECONNRESET'), 'connection-failure', post)).toBe(false);
    expect(httpRetryable(coded('ECONNRESET'), 'connection-failure', get)).toBe(true);
    expect(httpRetryable(coded('ECONNRESET'), 'connection-failure', putStream)).toBe(false);
    expect(httpRetryable(coded('ECONNREFUSED'), 'connection-failure', putStream)).toBe(true);
    expect(httpRetryable(coded('UND_ERR_HEADERS_TIMEOUT'), 'timeout', get)).toBe(true);
    expect(httpRetryable(new HttpStatusFailure(429, 'overload'), 'overload', post)).toBe(false);
    expect(httpRetryable(new HttpStatusFailure(429, 'overload'), 'overload', get)).toBe(true);
    expect(httpRetryable(new DOMException('aborted', 'AbortError'), 'neutral', get)).toBe(false);
  });

  it('knows which bodies can be sent again', () => {
    expect(isReplayableBody(null)).toBe(true);
    expect(isReplayableBody(undefined)).toBe(true);
    expect(isReplayableBody('text')).toBe(true);
    expect(isReplayableBody(Buffer.from('x'))).toBe(true);
    expect(isReplayableBody((async function* () {})())).toBe(false);
  });

  it('reads Retry-After as seconds or a date, capped', () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(retryAfterMs('3', now, 300_000)).toBe(3_000);
    expect(retryAfterMs(' 0 ', now, 300_000)).toBe(0);
    expect(retryAfterMs('Thu, 01 Jan 2026 00:00:10 GMT', now, 300_000)).toBe(10_000);
    expect(retryAfterMs('Wed, 31 Dec 2025 23:59:00 GMT', now, 300_000)).toBe(0);
    expect(retryAfterMs('86400', now, 300_000)).toBe(300_000);
    expect(retryAfterMs('soon', now, 300_000)).toBeUndefined();
    expect(retryAfterMs(undefined, now, 300_000)).toBeUndefined();
  });
});
