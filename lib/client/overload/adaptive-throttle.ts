import type { OverloadSettings } from '../../core/config/overload-options.js';

const BUCKETS = 12;

/**
 * Client-side adaptive throttling (Google SRE book, "Handling Overload"):
 * over a sliding window the client counts the requests it attempted and
 * those the service accepted, and sheds a new request locally with
 * probability `max(0, (requests - K × accepts) / (requests + 1))`. It only
 * acts when the service refuses more than `1 - 1/K` of the calls (half, with
 * K = 2), and stops as soon as it accepts again. One departure from the book:
 * nothing is shed before the window holds `min_requests` requests, so one
 * refusal to a quiet client does not shed half of its next calls. O(1), no
 * allocation.
 */
export class AdaptiveThrottle {
  private readonly requests = new Float64Array(BUCKETS);
  private readonly accepts = new Float64Array(BUCKETS);
  private readonly bucketMs: number;
  private bucketStart = 0;
  private index = 0;
  private totalRequests = 0;
  private totalAccepts = 0;

  constructor(
    private readonly settings: OverloadSettings['throttling'],
    private readonly now: () => number = () => Date.now(),
  ) {
    this.bucketMs = Math.max(1, settings.windowMs / BUCKETS);
  }

  get enabled(): boolean {
    return this.settings.enabled;
  }

  /** The probability a new request is shed now (0 below `min_requests` in the window). */
  rejectProbability(): number {
    if (!this.settings.enabled) return 0;
    this.rotate();
    if (this.totalRequests < this.settings.minRequests) return 0;
    const p = (this.totalRequests - this.settings.k * this.totalAccepts) / (this.totalRequests + 1);
    return p > 0 ? p : 0;
  }

  /** One request attempted; `accepted` when the service processed it (not refused for load, not lost). */
  record(accepted: boolean): void {
    if (!this.settings.enabled) return;
    this.rotate();
    this.requests[this.index]++;
    this.totalRequests++;
    if (accepted) {
      this.accepts[this.index]++;
      this.totalAccepts++;
    }
  }

  private rotate(): void {
    const now = this.now();
    if (this.bucketStart === 0) {
      this.bucketStart = now;
      return;
    }
    let steps = Math.floor((now - this.bucketStart) / this.bucketMs);
    if (steps <= 0) return;
    if (steps > BUCKETS) steps = BUCKETS;
    for (let i = 0; i < steps; i++) {
      this.index = (this.index + 1) % BUCKETS;
      this.totalRequests -= this.requests[this.index];
      this.totalAccepts -= this.accepts[this.index];
      this.requests[this.index] = 0;
      this.accepts[this.index] = 0;
    }
    this.bucketStart += steps * this.bucketMs;
    if (now - this.bucketStart >= this.bucketMs) this.bucketStart = now;
  }
}
