import { Subject, type Observable, type Subscription } from 'rxjs';
import { Backoff } from '../core/backoff.js';
import { ConfigurationError, NotSupportedError, RegistrationError } from '../core/errors.js';
import type { ServiceInstance } from '../core/service-instance.js';
import type { DiscoveryLogger, Registration, Registry, RegistrationTiming } from '../registry/registry.interface.js';
import { abortableSleep } from '../registry/shared/abortable-sleep.js';

/** Lifecycle events of the app's own instance. */
export type ServiceRegistryEvent =
  | { type: 'registered'; instance: ServiceInstance; at: number }
  | { type: 'lost'; instance: ServiceInstance; reason: string; at: number }
  | { type: 'restored'; instance: ServiceInstance; at: number }
  | { type: 'deregistered'; instance: ServiceInstance; at: number }
  | { type: 'failed'; instance: ServiceInstance; error: Error; at: number };

/** `unregistered` → `registering` → `registered` (⇄ `lost`) → `deregistered`. */
export type RegistrationState =
  'unregistered' | 'registering' | 'registered' | 'lost' | 'deregistered' | 'failed' | 'disabled';

/**
 * The app's own instance in the registry: registration with retry, events,
 * heartbeat, update and deregistration.
 *
 * @example
 * constructor(@InjectServiceRegistry() private readonly self: ServiceRegistry) {}
 * this.self.events$.subscribe((e) => console.log(e.type));
 */
export class ServiceRegistry {
  private readonly events = new Subject<ServiceRegistryEvent>();
  /** registered | lost | restored | deregistered (| failed when registration gives up). */
  readonly events$: Observable<ServiceRegistryEvent> = this.events.asObservable();
  private registration: Registration | undefined;
  private registrationEvents: Subscription | undefined;
  private current: ServiceInstance | undefined;
  private status: RegistrationState;
  private readonly abort = new AbortController();
  private starting: Promise<void> | undefined;

  constructor(
    private readonly registry: Registry | undefined,
    instance: ServiceInstance | undefined,
    private readonly timing: RegistrationTiming,
    private readonly logger: DiscoveryLogger,
  ) {
    this.current = instance;
    this.status = instance && registry && !registry.readOnly ? 'unregistered' : 'disabled';
  }

  /** The instance this app registers as (undefined for client-only apps). */
  instance(): ServiceInstance | undefined {
    return this.current;
  }

  get state(): RegistrationState {
    return this.status;
  }

  /** Backend name of the registry. */
  get backend(): string | undefined {
    return this.registry?.backend;
  }

  /**
   * Registers the instance, retrying transient failures with jittered
   * backoff until it succeeds or `deregister()`/`close()` is called.
   * Permanent failures (duplicate id, invalid data) reject at once.
   */
  register(): Promise<void> {
    if (this.status === 'disabled') return Promise.resolve();
    this.starting ??= this.registerWithRetry();
    return this.starting;
  }

  /** Refreshes the registration now. */
  async heartbeat(): Promise<void> {
    await this.registration?.heartbeat();
  }

  /** Replaces the registered instance (same id), e.g. to change weight or tags. */
  async updateInstance(instance: ServiceInstance): Promise<void> {
    if (this.current && instance.id !== this.current.id) {
      throw new RegistrationError(
        `updateInstance must keep the instance id '${this.current.id}' (got '${instance.id}')`,
      );
    }
    this.current = instance;
    await this.registration?.update(instance);
  }

  /** Removes the instance from the registry; idempotent. Stops a pending registration. */
  async deregister(): Promise<void> {
    this.abort.abort();
    await this.starting?.catch(() => undefined);
    const registration = this.registration;
    this.registration = undefined;
    this.registrationEvents?.unsubscribe();
    if (registration) {
      await registration.deregister();
      this.status = 'deregistered';
      this.events.next({ type: 'deregistered', instance: registration.instance, at: Date.now() });
    } else if (this.status !== 'disabled' && this.status !== 'failed') {
      this.status = 'deregistered';
    }
  }

  /**
   * Ends this registration and completes `events$`. By default it
   * deregisters; with `{ deregister: false }` (the configuration's
   * `deregister_on_shutdown = false`) it only stops refreshing, and the
   * registry drops the instance when its TTL runs out.
   */
  async close(options: { deregister?: boolean } = {}): Promise<void> {
    if (options.deregister === false) await this.stopRefreshing();
    else await this.deregister();
    this.events.complete();
  }

  /** Stops refreshing the registration without removing it (it expires by TTL). */
  private async stopRefreshing(): Promise<void> {
    this.abort.abort();
    await this.starting?.catch(() => undefined);
    const registration = this.registration;
    this.registration = undefined;
    this.registrationEvents?.unsubscribe();
    if (!registration) return;
    await registration.stop();
    this.logger.log(
      `'${registration.instance.id}' left registered (deregister_on_shutdown = false); it expires by TTL`,
    );
  }

  private async registerWithRetry(): Promise<void> {
    const instance = this.current!;
    const registry = this.registry!;
    const backoff = new Backoff({ initialMs: 200, maxMs: 10_000 });
    this.status = 'registering';
    for (;;) {
      if (this.abort.signal.aborted) return;
      try {
        const registration = await registry.register(this.current ?? instance, this.timing);
        if (this.abort.signal.aborted) {
          await registration.deregister();
          return;
        }
        this.registration = registration;
        this.status = 'registered';
        this.registrationEvents = registration.events$.subscribe((event) => {
          this.status = event.type === 'lost' ? 'lost' : 'registered';
          if (event.type === 'lost') this.logger.warn(`registration of '${event.instance.id}' lost: ${event.reason}`);
          else this.logger.log(`registration of '${event.instance.id}' restored`);
          this.events.next(event);
        });
        this.logger.log(
          `registered '${instance.service}' instance '${instance.id}' at ${instance.address} (${registry.backend})`,
        );
        this.events.next({ type: 'registered', instance: registration.instance, at: Date.now() });
        return;
      } catch (error) {
        const err = error as Error;
        if (
          error instanceof RegistrationError ||
          error instanceof NotSupportedError ||
          error instanceof ConfigurationError
        ) {
          this.status = 'failed';
          this.events.next({ type: 'failed', instance, error: err, at: Date.now() });
          throw error;
        }
        const delay = backoff.next();
        this.logger.warn(
          `registration of '${instance.id}' in ${registry.backend} failed (${err.message}); retrying in ${delay} ms`,
        );
        await abortableSleep(delay, this.abort.signal);
      }
    }
  }
}
