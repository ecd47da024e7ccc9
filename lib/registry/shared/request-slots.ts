/**
 * At most `limit` requests in flight, the rest waiting their turn in arrival
 * order: what keeps a registry client from storming its server (1,000
 * services reading at start-up, or re-reading together after an outage).
 * A request's deadline should start when it is sent — inside `run` — not
 * when it is queued, or the queue itself would time requests out.
 *
 * @example
 * const reads = new RequestSlots(16); const answer = await reads.run(() => client.range(request));
 */
export class RequestSlots {
  private active = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(readonly limit: number) {}

  /** Requests in flight now. */
  get inFlight(): number {
    return this.active;
  }

  /** Requests waiting for a slot. */
  get queued(): number {
    return this.waiting.length;
  }

  /** Runs `request` once a slot is free; the slot is released when it settles. */
  async run<T>(request: () => Promise<T>): Promise<T> {
    if (this.active >= this.limit) await new Promise<void>((resolve) => this.waiting.push(resolve));
    else this.active++;
    try {
      return await request();
    } finally {
      // Hand the slot straight to the next waiter (active stays counted), or free it.
      const next = this.waiting.shift();
      if (next) next();
      else this.active--;
    }
  }
}
