/** Share of one core that picker rebuilds may use on average, process-wide, before further ones wait. */
const SHARE = 0.2;
/** Rebuild time that may be spent at once after a quiet spell, ms. */
const BURST_MS = 50;
/** The longest a changed set waits for its picker while rebuilds are over budget, ms (Envoy's default update merge window). */
export const MAX_DEFER_MS = 1_000;

/**
 * How much CPU the clients of one process spend rebuilding pickers. A
 * picker over a large set costs milliseconds to build (a Maglev table of
 * 65,537 slots: ~2.5 ms), and a service that changes many times a second
 * while it is called would rebuild on nearly every pick: 100 such services
 * kept a core busy. With the budget spent, a changed service keeps picking
 * from its previous picker (never an endpoint that left: such a pick
 * rebuilds at once) until the budget refills or {@link MAX_DEFER_MS}
 * passed, so a burst of changes costs one rebuild.
 *
 * A token bucket in milliseconds of rebuild time: it refills at 20 % of a
 * core and holds at most 50 ms, so a quiet process rebuilds at once and
 * only sustained churn of large sets waits.
 *
 * @example
 * if (pickerRebuilds.due(staleSince)) { const t = pickerRebuilds.now(); rebuild(); pickerRebuilds.spend(pickerRebuilds.now() - t); }
 */
export class RebuildBudget {
  private tokensMs: number;
  private at: number;

  constructor(
    private readonly share = SHARE,
    private readonly burstMs = BURST_MS,
    /** The clock rebuilds and deferrals are timed with, ms. */
    readonly now: () => number = () => performance.now(),
  ) {
    this.tokensMs = burstMs;
    this.at = now();
  }

  /**
   * Whether a picker stale since `staleSince` (on {@link now}) should be
   * rebuilt now: within budget, or it waited `maxWaitMs` (at most
   * {@link MAX_DEFER_MS}; callers pass a jittered share of it, so services
   * that went stale together do not all rebuild in the same turn).
   */
  due(staleSince: number, maxWaitMs = MAX_DEFER_MS): boolean {
    return this.allows() || this.now() - staleSince >= Math.min(maxWaitMs, MAX_DEFER_MS);
  }

  /** Whether a rebuild may run now. */
  allows(): boolean {
    this.refill();
    return this.tokensMs > 0;
  }

  /** Records `ms` spent rebuilding (the balance may go below zero: the next rebuilds wait it out). */
  spend(ms: number): void {
    this.refill();
    this.tokensMs -= ms;
  }

  private refill(): void {
    const now = this.now();
    this.tokensMs = Math.min(this.burstMs, this.tokensMs + (now - this.at) * this.share);
    this.at = now;
  }
}

/** The budget every client of the process shares. */
export const pickerRebuilds = new RebuildBudget();
