/**
 * Events in the last minute, in six 10-second buckets: O(1) per count, no
 * allocation, read by the admin view (picks and failures per endpoint).
 */
export class MinuteCounter {
  private readonly buckets = new Float64Array(6);
  private bucketStart = 0;
  private bucketIndex = 0;

  constructor(private readonly now: () => number = Date.now) {}

  add(n = 1): void {
    this.rotate();
    this.buckets[this.bucketIndex] += n;
  }

  /** Events counted over roughly the last 60 s. */
  total(): number {
    this.rotate();
    let sum = 0;
    for (let i = 0; i < 6; i++) sum += this.buckets[i];
    return sum;
  }

  private rotate(): void {
    const now = this.now();
    if (this.bucketStart === 0) {
      this.bucketStart = now;
      return;
    }
    let steps = Math.floor((now - this.bucketStart) / 10_000);
    if (steps <= 0) return;
    this.bucketStart += steps * 10_000;
    if (steps > 6) steps = 6;
    for (let i = 0; i < steps; i++) {
      this.bucketIndex = (this.bucketIndex + 1) % 6;
      this.buckets[this.bucketIndex] = 0;
    }
  }
}
