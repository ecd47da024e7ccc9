import { status } from '@grpc/grpc-js';
import { outcomeOfSocketError, type CallOutcome } from '../../core/call-outcome.js';
import type { ResolvedRetryOptions } from '../../client/retry-policy.js';

const OUTCOME_BY_STATUS = new Map<number, CallOutcome>([
  [status.OK, 'success'],
  [status.UNAVAILABLE, 'connection-failure'],
  [status.DEADLINE_EXCEEDED, 'timeout'],
  [status.RESOURCE_EXHAUSTED, 'overload'],
  [status.CANCELLED, 'neutral'],
]);

/**
 * gRPC's mapper onto the shared outcomes: OK → success; UNAVAILABLE (the
 * call never reached the application) and socket errors → connection-failure;
 * DEADLINE_EXCEEDED → timeout; RESOURCE_EXHAUSTED → overload; CANCELLED and
 * errors that are not gRPC's (a bug in the calling code) → neutral; any other
 * status is the application's answer.
 *
 * @example
 * grpcOutcome(grpc.status.INVALID_ARGUMENT); // 'application-error'
 */
export function grpcOutcome(codeOrError: unknown): CallOutcome {
  if (codeOrError === null || codeOrError === undefined) return 'success';
  const code = typeof codeOrError === 'object' ? (codeOrError as { code?: unknown }).code : codeOrError;
  if (typeof code !== 'number') return outcomeOfSocketError(codeOrError) ?? 'neutral';
  return OUTCOME_BY_STATUS.get(code) ?? 'application-error';
}

const STATUS_NAME = new Map<number, string>(
  Object.entries(status)
    .filter(([, value]) => typeof value === 'number')
    .map(([name, value]) => [value as number, name]),
);

/**
 * Whether `call()` retries a failure: gRPC statuses listed in
 * `retryableStatusCodes` (default UNAVAILABLE), and socket errors that mean
 * the call never left (as safe as UNAVAILABLE, so retried when it is listed).
 */
export function grpcRetryable(error: unknown, outcome: CallOutcome, retry: ResolvedRetryOptions): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'number') return retry.retryableStatusCodes.includes(STATUS_NAME.get(code) ?? '');
  return outcome === 'connection-failure' && retry.retryableStatusCodes.includes('UNAVAILABLE');
}
