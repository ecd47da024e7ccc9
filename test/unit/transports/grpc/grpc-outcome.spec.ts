import { status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { endpointVerdict } from '../../../../lib/core/call-outcome.js';
import { resolveRetryOptions } from '../../../../lib/client/retry-policy.js';
import { grpcOutcome, grpcRetryable } from '../../../../lib/transports/grpc/grpc-outcome.js';

describe('grpcOutcome (gRPC onto the shared outcomes)', () => {
  it('counts only transport failures against an endpoint', () => {
    expect(grpcOutcome(status.UNAVAILABLE)).toBe('connection-failure');
    expect(grpcOutcome({ code: status.UNAVAILABLE, details: 'x' })).toBe('connection-failure');
    expect(grpcOutcome(status.DEADLINE_EXCEEDED)).toBe('timeout');
    for (const code of ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE']) {
      expect(grpcOutcome({ code })).toBe('connection-failure');
    }
    for (const outcome of ['connection-failure', 'timeout'] as const) expect(endpointVerdict(outcome)).toBe('failure');
  });

  it('treats any other answer as proof the endpoint is alive, overload as overload, and says nothing for cancellations or foreign errors', () => {
    expect(grpcOutcome(null)).toBe('success');
    expect(grpcOutcome(status.OK)).toBe('success');
    for (const code of [status.INVALID_ARGUMENT, status.NOT_FOUND, status.INTERNAL, status.PERMISSION_DENIED]) {
      expect(grpcOutcome(code)).toBe('application-error');
    }
    expect(grpcOutcome(status.RESOURCE_EXHAUSTED)).toBe('overload');
    expect(endpointVerdict('overload')).toBe('answered');
    expect(grpcOutcome(status.CANCELLED)).toBe('neutral');
    expect(grpcOutcome(new TypeError('bug in the caller'))).toBe('neutral');
    expect(grpcOutcome({ code: 'ENOENT' })).toBe('neutral');
    expect(endpointVerdict('neutral')).toBe('unknown');
  });

  it('retries UNAVAILABLE and refused connections by default, and exactly the listed statuses otherwise', () => {
    const defaults = resolveRetryOptions(undefined);
    const refused = { code: 'ECONNREFUSED' };
    expect(grpcRetryable({ code: status.UNAVAILABLE }, 'connection-failure', defaults)).toBe(true);
    expect(grpcRetryable(refused, grpcOutcome(refused), defaults)).toBe(true);
    expect(grpcRetryable({ code: status.DEADLINE_EXCEEDED }, 'timeout', defaults)).toBe(false);
    expect(grpcRetryable({ code: status.INTERNAL }, 'application-error', defaults)).toBe(false);
    const aborted = resolveRetryOptions({ retryableStatusCodes: ['ABORTED'] });
    expect(grpcRetryable({ code: status.ABORTED }, 'application-error', aborted)).toBe(true);
    expect(grpcRetryable({ code: status.UNAVAILABLE }, 'connection-failure', aborted)).toBe(false);
    expect(grpcRetryable(refused, 'connection-failure', aborted)).toBe(false);
  });
});
