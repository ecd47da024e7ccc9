import { BehaviorSubject, distinctUntilChanged, type Observable } from 'rxjs';

/** Whether a backend's server answered, since when, and why not. */
export interface ReachabilityState {
  readonly reachable: boolean;
  /** Why it is unreachable (undefined while reachable). */
  readonly reason: string | undefined;
  /** When this state began, ms since epoch. */
  readonly since: number;
}

/**
 * The reachability contract every backend implements, read by the health
 * report, the admin view and metrics without knowing which backend it is.
 * Backends with no server (memory, static, local) are reachable unless
 * their store says otherwise.
 */
export interface Reachability {
  /** Replays the current state, then each change. Completes when the registry closes. */
  readonly state$: Observable<ReachabilityState>;
  /** The latest state. */
  readonly current: ReachabilityState;
  /** Asks the server now (one cheap request) and returns the resulting state. */
  probe(): Promise<ReachabilityState>;
}

/**
 * The one implementation of {@link Reachability}: backends report what their
 * requests saw (`reachable()` / `unreachable(reason)`), and `probe` runs the
 * backend's own check.
 *
 * @example
 * const reachability = new ReachabilityTracker(async () => { await client.status(); });
 */
export class ReachabilityTracker implements Reachability {
  private readonly subject: BehaviorSubject<ReachabilityState>;
  readonly state$: Observable<ReachabilityState>;

  constructor(
    /** Resolves when the server answers, rejects (with the reason) when it does not. */
    private readonly check: () => Promise<void> = async () => undefined,
    initial: Omit<ReachabilityState, 'since'> = { reachable: true, reason: undefined },
  ) {
    this.subject = new BehaviorSubject<ReachabilityState>({ ...initial, since: Date.now() });
    this.state$ = this.subject.pipe(distinctUntilChanged((a, b) => a === b));
  }

  get current(): ReachabilityState {
    return this.subject.value;
  }

  /** Records a successful request. */
  reachable(): void {
    if (!this.subject.value.reachable && !this.subject.closed) {
      this.subject.next({ reachable: true, reason: undefined, since: Date.now() });
    }
  }

  /** Records a failed request; the reason replaces the previous one, `since` keeps the start of the outage. */
  unreachable(reason: string): void {
    const now = this.subject.value;
    if (this.subject.closed || (!now.reachable && now.reason === reason)) return;
    this.subject.next({ reachable: false, reason, since: now.reachable ? Date.now() : now.since });
  }

  async probe(): Promise<ReachabilityState> {
    try {
      await this.check();
      this.reachable();
    } catch (error) {
      this.unreachable((error as Error)?.message ?? String(error));
    }
    return this.current;
  }

  /** Completes `state$`. */
  close(): void {
    this.subject.complete();
  }
}
