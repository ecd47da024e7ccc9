const SIZE = 256;
const RECOMPUTE_EVERY = 32;

/**
 * The p95 of a client's recent successful call latencies (the last 256),
 * for hedging after "the p95 of recent latency". Recording is O(1) with no
 * allocation; the percentile is recomputed every 32 samples.
 */
export class LatencyWindow {
  private readonly samples = new Float64Array(SIZE);
  private readonly sorted = new Float64Array(SIZE);
  private count = 0;
  private next = 0;
  private sinceRecompute = 0;
  private p95 = Number.NaN;

  record(latencyMs: number): void {
    if (!(latencyMs >= 0)) return;
    this.samples[this.next] = latencyMs;
    this.next = (this.next + 1) % SIZE;
    if (this.count < SIZE) this.count++;
    if (++this.sinceRecompute >= RECOMPUTE_EVERY) this.recompute();
  }

  /** The p95 in ms, or undefined before 32 samples. */
  percentile95(): number | undefined {
    return Number.isNaN(this.p95) ? undefined : this.p95;
  }

  private recompute(): void {
    this.sinceRecompute = 0;
    const view = this.sorted.subarray(0, this.count);
    view.set(this.samples.subarray(0, this.count));
    view.sort();
    this.p95 = view[Math.min(this.count - 1, Math.floor(this.count * 0.95))];
  }
}
