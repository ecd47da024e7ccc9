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
 *
 * A backend is reachable until a request fails (a registry that has not
 * asked its server yet counts as reachable); it becomes reachable again
 * with the next answer. One state per outage: its reason is the first
 * failure's. Backends with no server are reachable unless their source
 * fails: `memory` follows its store's `setReachable`, `local` whether its
 * folder can be read, `static` (a list in the configuration) always is.
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
  private closed = false;

  constructor(
    /** Resolves when the server answers, rejects (with the reason) when it does not. */
    private readonly check: () => Promise<void> = async () => undefined,
    initial: Omit<ReachabilityState, 'since'> = { reachable: true, reason: undefined },
  ) {
    this.subject = new BehaviorSubject<ReachabilityState>({ ...initial, since: Date.now() });
    this.state$ = this.subject.pipe(distinctUntilChanged());
  }

  get current(): ReachabilityState {
    return this.subject.value;
  }

  /** Records a successful request. */
  reachable(): void {
    if (!this.subject.value.reachable && !this.closed) {
      this.subject.next({ reachable: true, reason: undefined, since: Date.now() });
    }
  }

  /**
   * Records a failed request. One state per outage: while unreachable, a
   * new reason is not recorded (the reason stays that of the outage's start).
   */
  unreachable(reason: string): void {
    if (this.closed || !this.subject.value.reachable) return;
    this.subject.next({ reachable: false, reason, since: Date.now() });
  }

  async probe(): Promise<ReachabilityState> {
    // A closed registry asks nobody: its connections are gone.
    if (this.closed) return this.current;
    try {
      await this.check();
      this.reachable();
    } catch (error) {
      this.unreachable((error as Error)?.message ?? String(error));
    }
    return this.current;
  }

  /** Completes `state$`; later reports and probes change nothing. */
  close(): void {
    this.closed = true;
    this.subject.complete();
  }
}
