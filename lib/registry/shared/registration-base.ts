import { Observable, Subject } from 'rxjs';
import { Backoff, type BackoffOptions } from '../../core/backoff.js';
import { RegistrationError } from '../../core/errors.js';
import type { ServiceInstance } from '../../core/service-instance.js';
import type { Registration, RegistrationEvent, RegistrationTiming } from '../registry.interface.js';

export interface RegistrationBaseOptions {
  /** Pacing of retries after a failed refresh (full jitter). Default 100 ms (at most a quarter heartbeat) up to one heartbeat. */
  backoff?: BackoffOptions;
  /** Called once when the registration ends (deregistered or stopped). */
  onEnd?: () => void;
}

/** What the first attempt's failure means: keep retrying in the background (`pending`), or give up (`fail`). */
export type FirstAttemptOutcome = { pending: string } | { fail: unknown };

type LostEvent = Extract<RegistrationEvent, { type: 'lost' }>;

/**
 * What every backend's registration shares (moleculer's discoverer base,
 * for registrations): the heartbeat schedule, retries with jittered backoff
 * that never wait longer than a heartbeat, `lost` / `restored` events
 * emitted once per loss, one operation at a time in call order, and an
 * idempotent end. A backend implements `refresh`, `write` and `remove`
 * with its own protocol.
 *
 * `events$` replays the current `lost` event to a new subscriber, so one
 * that subscribes after `register()` returned still learns that the
 * registration is pending (registry down at start-up).
 *
 * @example
 * class FileRegistration extends RegistrationBase { protected async refresh() { await touch(this.file); } ... }
 */
export abstract class RegistrationBase implements Registration {
  readonly #events = new Subject<RegistrationEvent>();
  readonly events$: Observable<RegistrationEvent>;
  #lostEvent: LostEvent | undefined;
  #timer: NodeJS.Timeout | undefined;
  #queue: Promise<unknown> = Promise.resolve();
  #ended = false;
  /** Set by `begin`: a registration that never began (memory) has no timer. */
  #heartbeating = false;
  #ending: Promise<void> | undefined;
  readonly #abortController = new AbortController();
  readonly #options: RegistrationBaseOptions;
  protected readonly backoff: Backoff;

  protected constructor(
    protected current: ServiceInstance,
    readonly timing: RegistrationTiming,
    options: RegistrationBaseOptions = {},
  ) {
    this.#options = options;
    this.backoff = new Backoff({
      initialMs: Math.min(100, timing.heartbeatMs / 4),
      maxMs: timing.heartbeatMs,
      ...options.backoff,
    });
    this.events$ = new Observable<RegistrationEvent>((subscriber) => {
      if (this.#lostEvent) subscriber.next(this.#lostEvent);
      return this.#events.subscribe(subscriber);
    });
  }

  get instance(): ServiceInstance {
    return this.current;
  }

  /** True until `deregister()` or `stop()`. */
  get active(): boolean {
    return !this.#ended;
  }

  /** Refreshes the registration now (serialised with the timer's heartbeats); rejects when the refresh fails. */
  heartbeat(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    return this.serial(() => this.#tick(true));
  }

  /** Replaces the registered instance (same id), serialised with heartbeats. */
  async update(instance: ServiceInstance): Promise<void> {
    if (instance.id !== this.current.id) {
      throw new RegistrationError(`update must keep instance id '${this.current.id}' (got '${instance.id}')`);
    }
    this.checkUpdate(instance);
    await this.serial(() => this.write(instance));
  }

  /** Stops the heartbeat and removes the instance from the registry; idempotent (later calls wait for the first). */
  deregister(): Promise<void> {
    return this.#end(true);
  }

  /**
   * Stops the heartbeat without removing the instance: the registry drops
   * it when its TTL runs out (`deregister_on_shutdown = false`). Idempotent.
   */
  stop(): Promise<void> {
    return this.#end(false);
  }

  /** One refresh of the registration; throws when it failed (the base retries). */
  protected abstract refresh(): Promise<void>;
  /** Stores `instance` in place of the current one (and sets `current`). */
  protected abstract write(instance: ServiceInstance): Promise<void>;
  /** Removes the instance from the registry; logs rather than throws. */
  protected abstract remove(): Promise<void>;

  /** Checks an update before anything changes (throw to refuse it). */
  protected checkUpdate(_instance: ServiceInstance): void {}

  /** Delay before retrying a failed refresh; backends log here and may retry sooner. */
  protected retryDelay(_error: unknown): number {
    return Math.min(this.backoff.next(), this.timing.heartbeatMs);
  }

  /** Aborted when the registration ends (before `remove` runs): requests given it stop with it. */
  protected get signal(): AbortSignal {
    return this.#abortController.signal;
  }

  /**
   * The first registration. On success the heartbeat starts; on failure
   * `onFailure` decides: `pending` marks the registration lost (with that
   * reason) and retries in the background, `fail` ends it and throws.
   */
  protected async begin(first: () => Promise<void>, onFailure: (error: unknown) => FirstAttemptOutcome): Promise<void> {
    this.#heartbeating = true;
    try {
      await this.serial(first);
    } catch (error) {
      const outcome = onFailure(error);
      if ('fail' in outcome) {
        await this.#end(false);
        throw outcome.fail;
      }
      this.markLost(outcome.pending);
      this.#schedule(this.backoff.next());
      return;
    }
    this.#schedule(this.timing.heartbeatMs);
  }

  /** Emits `lost` unless the registration is already lost or ended; true when it did. */
  protected markLost(reason: string): boolean {
    if (this.#lostEvent || !this.active) return false;
    this.#lostEvent = { type: 'lost', instance: this.current, reason, at: Date.now() };
    this.#events.next(this.#lostEvent);
    return true;
  }

  /** Emits `restored` after a loss; returns how long the loss lasted (ms), undefined when nothing was lost. */
  protected markRestored(): number | undefined {
    const lost = this.#lostEvent;
    if (!lost || !this.active) return undefined;
    this.#lostEvent = undefined;
    this.#events.next({ type: 'restored', instance: this.current, at: Date.now() });
    return Date.now() - lost.at;
  }

  /** Runs operations one at a time, in call order. */
  protected serial<T>(operation: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(operation, operation);
    this.#queue = run.catch(() => undefined);
    return run;
  }

  async #tick(manual: boolean): Promise<void> {
    if (!this.active) return;
    try {
      await this.refresh();
    } catch (error) {
      if (!this.active) return;
      this.#schedule(this.retryDelay(error));
      if (manual) throw error;
      return;
    }
    this.backoff.reset();
    this.#schedule(this.timing.heartbeatMs);
  }

  #schedule(delayMs: number): void {
    if (!this.active || !this.#heartbeating) return;
    clearTimeout(this.#timer);
    // A chain of timeouts, not an interval: a slow registry never stacks heartbeats.
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.serial(() => this.#tick(false));
    }, delayMs);
    // A registration must not keep a process alive on its own.
    this.#timer.unref();
  }

  #end(remove: boolean): Promise<void> {
    if (!this.#ending) {
      this.#ended = true;
      clearTimeout(this.#timer);
      this.#timer = undefined;
      this.#abortController.abort();
      this.#ending = this.#finish(remove);
    }
    return this.#ending;
  }

  async #finish(remove: boolean): Promise<void> {
    await this.#queue;
    if (remove) await this.remove();
    this.#lostEvent = undefined;
    this.#events.complete();
    this.#options.onEnd?.();
  }
}
