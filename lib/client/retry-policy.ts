import { ConfigurationError } from '../core/errors.js';

/**
 * Retries of one service: for `ServiceClient.call()` and, as gRPC's own
 * retry policy in the resolver's service config, for any grpc-js client on
 * `discovery:///<service>`.
 */
export interface RetryOptions {
  /** Attempts in all, the first included. Default 3; 1 disables retries. */
  maxAttempts?: number;
  /** Backoff before the first retry, ms (full jitter). Default 50. */
  initialBackoffMs?: number;
  /** Backoff ceiling, ms. Default 1 000. */
  maxBackoffMs?: number;
  /** Default 2. */
  backoffMultiplier?: number;
  /** gRPC status names retried. Default `['UNAVAILABLE']` (safe: the call never reached the application). */
  retryableStatusCodes?: readonly string[];
  /**
   * Retry budget: retries stop while more than this share of recent calls
   * failed (gRPC retry throttling: tokens start at `maxTokens`, -1 per
   * failure, +`tokenRatio` per success, retries only above half). Default 10 / 0.1.
   */
  budget?: { maxTokens: number; tokenRatio: number };
}

export interface ResolvedRetryOptions {
  maxAttempts: number;
  initialBackoffMs: number;
  maxBackoffMs: number;
  backoffMultiplier: number;
  retryableStatusCodes: string[];
  budget: { maxTokens: number; tokenRatio: number };
}

const STATUS_NAMES = new Set([
  'CANCELLED',
  'UNKNOWN',
  'INVALID_ARGUMENT',
  'DEADLINE_EXCEEDED',
  'NOT_FOUND',
  'ALREADY_EXISTS',
  'PERMISSION_DENIED',
  'RESOURCE_EXHAUSTED',
  'FAILED_PRECONDITION',
  'ABORTED',
  'OUT_OF_RANGE',
  'UNIMPLEMENTED',
  'INTERNAL',
  'UNAVAILABLE',
  'DATA_LOSS',
  'UNAUTHENTICATED',
]);

export function resolveRetryOptions(retry: RetryOptions | false | undefined, path = 'retry'): ResolvedRetryOptions {
  const r = retry === false ? { maxAttempts: 1 } : (retry ?? {});
  const out: ResolvedRetryOptions = {
    maxAttempts: r.maxAttempts ?? 3,
    initialBackoffMs: r.initialBackoffMs ?? 50,
    maxBackoffMs: r.maxBackoffMs ?? 1_000,
    backoffMultiplier: r.backoffMultiplier ?? 2,
    retryableStatusCodes: (r.retryableStatusCodes ?? ['UNAVAILABLE']).map((s) => s.toUpperCase()),
    budget: r.budget ?? { maxTokens: 10, tokenRatio: 0.1 },
  };
  if (!Number.isInteger(out.maxAttempts) || out.maxAttempts < 1 || out.maxAttempts > 5) {
    throw ConfigurationError.single(
      `${path}.maxAttempts`,
      out.maxAttempts,
      'an integer from 1 to 5 (gRPC caps attempts at 5)',
    );
  }
  if (!(out.initialBackoffMs > 0))
    throw ConfigurationError.single(`${path}.initialBackoffMs`, out.initialBackoffMs, 'a number > 0');
  if (!(out.maxBackoffMs >= out.initialBackoffMs))
    throw ConfigurationError.single(`${path}.maxBackoffMs`, out.maxBackoffMs, 'a number >= initialBackoffMs');
  if (!(out.backoffMultiplier >= 1))
    throw ConfigurationError.single(`${path}.backoffMultiplier`, out.backoffMultiplier, 'a number >= 1');
  out.retryableStatusCodes.forEach((code, i) => {
    if (!STATUS_NAMES.has(code))
      throw ConfigurationError.single(
        `${path}.retryableStatusCodes[${i}]`,
        code,
        'a gRPC status name such as UNAVAILABLE',
      );
  });
  if (!(out.budget.maxTokens > 0 && out.budget.maxTokens <= 1000))
    throw ConfigurationError.single(`${path}.budget.maxTokens`, out.budget.maxTokens, 'a number in (0, 1000]');
  if (!(out.budget.tokenRatio > 0))
    throw ConfigurationError.single(`${path}.budget.tokenRatio`, out.budget.tokenRatio, 'a number > 0');
  return out;
}

/** A token bucket with gRPC's retry-throttling semantics: the retry budget of one client, shared by its transports. */
export class RetryBudget {
  private tokens: number;

  constructor(private readonly budget: { maxTokens: number; tokenRatio: number }) {
    this.tokens = budget.maxTokens;
  }

  /** True when a retry may be sent now. */
  canRetry(): boolean {
    return this.tokens > this.budget.maxTokens / 2;
  }

  onFailure(): void {
    this.tokens = Math.max(0, this.tokens - 1);
  }

  onSuccess(): void {
    this.tokens = Math.min(this.budget.maxTokens, this.tokens + this.budget.tokenRatio);
  }
}
