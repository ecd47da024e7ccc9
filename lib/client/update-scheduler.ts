/** Work done on updates in one turn of the event loop before the rest waits for the next turn, ms. */
const SLICE_MS = 4;

/**
 * Runs the clients' set updates (a registry snapshot through health, marks
 * and priority levels) so that a burst never starves the event loop: an
 * update runs at once while the current turn has spent less than 4 ms on
 * updates; after that, updates queue for the next turn (setImmediate), after
 * the registry's I/O callbacks, and run in arrival order, 4 ms at a time. A
 * client whose update is still queued when a newer one arrives has the older
 * one replaced: a burst of changes to one service costs one update.
 *
 * Nothing is deferred while the process is idle, so a lone change is
 * served at once; a burst of start-up answers or churn is spread over turns,
 * and registry calls (keepalives, reads) get their turn between them.
 *
 * @example
 * updates.submit(this, () => this.ingest(set));
 */
export class UpdateScheduler {
  /** Queued updates by owner, in arrival order (a Map keeps insertion order; replacing keeps the place). */
  private readonly queued = new Map<object, () => void>();
  private spentMs = 0;
  private turnOpen = false;
  private drainScheduled = false;

  constructor(private readonly sliceMs = SLICE_MS) {}

  /** Updates waiting for a later turn. */
  get backlog(): number {
    return this.queued.size;
  }

  /** Runs `update` for `owner` now, or queues it (replacing an update of `owner` already queued). */
  submit(owner: object, update: () => void): void {
    if (this.queued.has(owner) || this.queued.size > 0 || this.spentMs >= this.sliceMs) {
      this.queued.set(owner, update);
      this.scheduleDrain();
      return;
    }
    this.run(update);
  }

  /** Drops an update of `owner` still queued (the owner closed). */
  cancel(owner: object): void {
    this.queued.delete(owner);
  }

  private run(update: () => void): void {
    if (!this.turnOpen) {
      // The time spent is counted per turn of the event loop.
      this.turnOpen = true;
      setImmediate(() => {
        this.turnOpen = false;
        this.spentMs = 0;
      });
    }
    const started = performance.now();
    try {
      update();
    } finally {
      this.spentMs += performance.now() - started;
    }
  }

  private scheduleDrain(): void {
    if (this.drainScheduled) return;
    this.drainScheduled = true;
    setImmediate(() => this.drain());
  }

  private drain(): void {
    this.drainScheduled = false;
    this.spentMs = 0;
    for (const [owner, update] of this.queued) {
      if (this.spentMs >= this.sliceMs) break;
      this.queued.delete(owner);
      try {
        this.run(update);
      } catch {
        // Owners report their own failures (ServedEndpoints logs them); one must not stop the others.
      }
    }
    if (this.queued.size > 0) this.scheduleDrain();
  }
}

/** The scheduler every client of the process shares: one budget per turn of the event loop. */
export const clientUpdates = new UpdateScheduler();
