import { waitFor } from '../../support/wait-for.js';
import { nextSequence } from './event-sequence.js';

/** The outcome of one call. Times are ms since epoch; sequences order it against other events (see {@link nextSequence}). */
export interface CallRecord {
  start: number;
  end: number;
  startSequence: number;
  endSequence: number;
  ok: boolean;
  instance?: string;
  error?: string;
}

/** Calls the load generator was due to start but did not (see {@link LoadGenerator}). */
export interface SkippedCalls {
  /** Index of the first skipped call in the schedule (call i is due i / rate seconds after start). */
  from: number;
  count: number;
  cause: 'event-loop lag' | 'too many in flight';
}

/** What share of a fault window's scheduled calls the load generator did not make. */
export interface WindowLoad {
  windowMs: number;
  scheduled: number;
  skipped: number;
  skippedShare: number;
}

/**
 * Steady, open-loop call load: `ratePerSecond` calls are started whatever
 * the answers do (a closed loop would slow down exactly when things break
 * and hide failures). Every call's outcome is recorded with timestamps.
 *
 * When this process's event loop stalls (a loaded machine), the calls that
 * fell due meanwhile start late, up to {@link CATCH_UP_MS} worth at once;
 * calls due longer ago than that, and calls beyond `maxInFlight`, are not
 * made. Those are counted with their place in the schedule, so a scenario
 * can say how many calls of its fault window were never made
 * ({@link windowLoad}) and fail when that share is too large to claim the rate.
 *
 * @example
 * const load = new LoadGenerator(() => helloThrough(client), { ratePerSecond: 300 }); load.start(); ...; const calls = await load.stop();
 */
export class LoadGenerator {
  /** Calls due at most this long ago are still started (late) after an event-loop stall; older ones are skipped. */
  static readonly CATCH_UP_MS = 250;
  readonly records: CallRecord[] = [];
  /** Every run of calls that was due but not started. */
  readonly skips: SkippedCalls[] = [];
  private timer: NodeJS.Timeout | undefined;
  private readonly inFlight = new Set<Promise<void>>();
  private startedAt = 0;
  private startedAtEpoch = 0;
  private launched = 0;

  /** Calls finished, and finished successfully (kept even when only failures are recorded). */
  completed = 0;
  succeeded = 0;

  constructor(
    private readonly call: () => Promise<string>,
    private readonly options: {
      ratePerSecond: number;
      maxInFlight?: number;
      /** `failures`: keep only failed calls (long runs, where a record per call would itself look like a leak). Default `all`. */
      keep?: 'all' | 'failures';
    },
  ) {}

  start(): this {
    this.startedAt = performance.now();
    this.startedAtEpoch = Date.now();
    this.timer = setInterval(() => this.tick(), 5);
    return this;
  }

  /** Calls not started because `maxInFlight` were already waiting (the client is overloaded). */
  get notStarted(): number {
    return this.skipped('too many in flight');
  }

  /** Calls skipped because this process's own event loop fell behind the schedule by more than {@link CATCH_UP_MS}. */
  get lagged(): number {
    return this.skipped('event-loop lag');
  }

  private skipped(cause: SkippedCalls['cause']): number {
    return this.skips.reduce((sum, s) => sum + (s.cause === cause ? s.count : 0), 0);
  }

  /** When call `index` of the schedule was due (ms since epoch). */
  private dueAt(index: number): number {
    return this.startedAtEpoch + (index * 1000) / this.options.ratePerSecond;
  }

  /**
   * The calls due between `from` and `to` (ms since epoch, e.g. when a fault
   * began and when the client had recovered) and how many of them were never made.
   */
  windowLoad(from: number, to: number): WindowLoad {
    const scheduled =
      Math.max(0, Math.floor(((to - this.startedAtEpoch) * this.options.ratePerSecond) / 1000)) -
      Math.max(0, Math.ceil(((from - this.startedAtEpoch) * this.options.ratePerSecond) / 1000));
    let skipped = 0;
    for (const run of this.skips)
      for (let i = run.from; i < run.from + run.count; i++) {
        const due = this.dueAt(i);
        if (due >= from && due < to) skipped++;
      }
    return {
      windowMs: to - from,
      scheduled: Math.max(0, scheduled),
      skipped,
      skippedShare: scheduled > 0 ? skipped / scheduled : 0,
    };
  }

  /** Stops starting calls and waits for the ones in flight. */
  async stop(): Promise<CallRecord[]> {
    clearInterval(this.timer);
    this.timer = undefined;
    await Promise.all([...this.inFlight]);
    return this.records;
  }

  get failures(): CallRecord[] {
    return this.records.filter((r) => !r.ok);
  }

  /** Completed successful calls started at or after `since`. */
  successesSince(since: number): number {
    let n = 0;
    for (const r of this.records) if (r.ok && r.start >= since) n++;
    return n;
  }

  /** Resolves once `count` more calls succeeded (load is really flowing). */
  async flowing(count = 50, timeoutMs = 15_000): Promise<void> {
    const target = this.succeeded + count;
    await waitFor(() => this.succeeded >= target, { timeoutMs, what: `${count} successful calls` });
  }

  /** A summary for the results table. */
  summary(): {
    calls: number;
    failed: number;
    skipped: number;
    notStarted: number;
    lagged: number;
    servedBy: Record<string, number>;
    firstErrors: string[];
  } {
    const servedBy: Record<string, number> = {};
    for (const r of this.records) if (r.instance) servedBy[r.instance] = (servedBy[r.instance] ?? 0) + 1;
    const failures = this.failures;
    return {
      calls: this.completed,
      failed: failures.length,
      skipped: this.notStarted + this.lagged,
      notStarted: this.notStarted,
      lagged: this.lagged,
      servedBy,
      firstErrors: [...new Set(failures.map((f) => f.error ?? ''))].slice(0, 3),
    };
  }

  private skip(from: number, count: number, cause: SkippedCalls['cause']): void {
    const last = this.skips.at(-1);
    if (last && last.cause === cause && last.from + last.count === from) last.count += count;
    else this.skips.push({ from, count, cause });
  }

  private tick(): void {
    const due = Math.floor(((performance.now() - this.startedAt) / 1000) * this.options.ratePerSecond);
    // After an event-loop stall, start what fell due in the last CATCH_UP_MS (late); older calls are skipped and counted.
    const maxBurst = Math.ceil((this.options.ratePerSecond * LoadGenerator.CATCH_UP_MS) / 1000);
    if (due - this.launched > maxBurst) {
      this.skip(this.launched, due - this.launched - maxBurst, 'event-loop lag');
      this.launched = due - maxBurst;
    }
    const first = this.launched;
    const batch = due - this.launched;
    this.launched = due;
    for (let i = 0; i < batch; i++) {
      if (this.inFlight.size >= (this.options.maxInFlight ?? 1_000)) {
        this.skip(first + i, 1, 'too many in flight');
        continue;
      }
      const record: CallRecord = {
        start: Date.now(),
        end: 0,
        startSequence: nextSequence(),
        endSequence: 0,
        ok: false,
      };
      const done = this.call().then(
        (instance) => {
          record.ok = true;
          record.instance = instance;
        },
        (error: Error & { code?: unknown }) => {
          record.error =
            `${typeof error?.code === 'string' ? error.code : ''} ${error?.message ?? String(error)}`.trim();
        },
      );
      const tracked = done.then(() => {
        record.end = Date.now();
        record.endSequence = nextSequence();
        this.completed++;
        if (record.ok) this.succeeded++;
        if (!record.ok || this.options.keep !== 'failures') this.records.push(record);
        this.inFlight.delete(tracked);
      });
      this.inFlight.add(tracked);
    }
  }
}
