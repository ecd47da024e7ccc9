/** Exponential backoff with full jitter (AWS architecture blog's "full jitter"). */
export interface BackoffOptions {
  /** First delay ceiling, ms. Default 100. */
  initialMs?: number;
  /** Largest delay ceiling, ms. Default 10 000. */
  maxMs?: number;
  /** Growth per attempt. Default 2. */
  factor?: number;
  /** Random source in [0, 1); injectable for deterministic tests. */
  random?: () => number;
}

/**
 * The delay before retry number `attempt` (0-based): a uniformly random
 * value in [0, min(max, initial * factor^attempt)].
 *
 * @example
 * await sleep(backoffDelay(attempt, { initialMs: 50, maxMs: 2_000 }));
 */
export function backoffDelay(attempt: number, options: BackoffOptions = {}): number {
  const initial = options.initialMs ?? 100;
  const max = options.maxMs ?? 10_000;
  const factor = options.factor ?? 2;
  const random = options.random ?? Math.random;
  const ceiling = Math.min(max, initial * Math.pow(factor, Math.max(0, attempt)));
  return Math.floor(random() * ceiling);
}

/** A stateful backoff: `next()` returns the next delay, `reset()` after a success. */
export class Backoff {
  private attempt = 0;
  constructor(private readonly options: BackoffOptions = {}) {}

  next(): number {
    // Never 0 ms in a loop: keep a floor of a tenth of the first delay.
    const floor = Math.ceil((this.options.initialMs ?? 100) / 10);
    return Math.max(floor, backoffDelay(this.attempt++, this.options));
  }

  reset(): void {
    this.attempt = 0;
  }

  get attempts(): number {
    return this.attempt;
  }
}
