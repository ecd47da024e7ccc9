import { Observable, Subject } from 'rxjs';
import { Backoff } from '../../core/backoff.js';
import { RegistrationError } from '../../core/errors.js';
import type { ServiceInstance } from '../../core/service-instance.js';
import type { DiscoveryLogger, Registration, RegistrationEvent, RegistrationTiming } from '../registry.interface.js';
import type { ConsulAgentApi } from './consul-agent-api.js';
import { ConsulRequestError } from './consul-http.js';
import { checkIdOf, toServiceDefinition, type ConsulServiceDefinition } from './consul-service-codec.js';
import type { ConsulSettings } from './consul-settings.js';

export interface ConsulRegistrationDeps {
  api: ConsulAgentApi;
  settings: ConsulSettings;
  logger: DiscoveryLogger;
  /** Called once the registration is deregistered or stopped. */
  onDone: (registration: ConsulRegistration) => void;
}

const DEREGISTER_ATTEMPTS = 3;

/**
 * One instance registered with the local Consul agent. A timer refreshes it
 * every `heartbeatMs`: a TTL check is passed; an HTTP/gRPC check's
 * registration is read back. When the agent no longer knows the instance
 * (agent restarted, dev mode lost its state) it is registered again at once
 * and `lost` then `restored` are emitted. Failures are retried with jittered
 * backoff, never slower than the heartbeat.
 *
 * `events$` replays the current `lost` event to a new subscriber, so one
 * that subscribes after `register()` returned still learns that the
 * registration is pending (agent down at start-up).
 *
 * @example
 * const registration = await registry.register(instance, { ttlMs: 9_000, heartbeatMs: 3_000 });
 * registration.events$.subscribe((e) => console.log(e.type));
 */
export class ConsulRegistration implements Registration {
  private readonly events = new Subject<RegistrationEvent>();
  readonly events$: Observable<RegistrationEvent>;
  private definition: ConsulServiceDefinition;
  /** The agent must be sent the definition again (never registered, or it forgot us). */
  private needsPut = true;
  private lostEvent: Extract<RegistrationEvent, { type: 'lost' }> | undefined;
  private lastSuccessAt = Date.now();
  private timer: NodeJS.Timeout | undefined;
  private chain: Promise<unknown> = Promise.resolve();
  private readonly abort = new AbortController();
  private readonly backoff: Backoff;
  private stopped = false;

  private constructor(
    private current: ServiceInstance,
    readonly timing: RegistrationTiming,
    private readonly deps: ConsulRegistrationDeps,
  ) {
    this.definition = toServiceDefinition(current, deps.settings, timing);
    this.backoff = new Backoff({ initialMs: 200, maxMs: Math.max(200, timing.heartbeatMs) });
    this.events$ = new Observable<RegistrationEvent>((subscriber) => {
      if (this.lostEvent) subscriber.next(this.lostEvent);
      return this.events.subscribe(subscriber);
    });
  }

  /**
   * Registers with the agent. A transient failure (agent down or without a
   * leader) leaves the registration pending and retried in the background,
   * unless `strict`; a refusal (ACL, bad definition) throws
   * {@link RegistrationError}.
   */
  static async start(
    instance: ServiceInstance,
    timing: RegistrationTiming,
    deps: ConsulRegistrationDeps,
  ): Promise<ConsulRegistration> {
    const registration = new ConsulRegistration(instance, timing, deps);
    try {
      await registration.put();
      registration.schedule(timing.heartbeatMs);
    } catch (error) {
      if (!(error instanceof ConsulRequestError) || !error.transient || deps.settings.strict) {
        registration.stop();
        throw toRegistrationError(instance, error);
      }
      deps.logger.warn(
        `consul: instance '${instance.id}' of '${instance.service}' not registered yet (${error.message}); retrying with backoff`,
      );
      registration.markLost(`registration pending: ${error.message}`);
      registration.schedule(registration.backoff.next());
    }
    return registration;
  }

  get instance(): ServiceInstance {
    return this.current;
  }

  /** True while the agent holds the registration as far as this process knows. */
  get registered(): boolean {
    return !this.stopped && !this.needsPut && this.lostEvent === undefined;
  }

  heartbeat(): Promise<void> {
    return this.enqueue(() => this.beat());
  }

  async update(instance: ServiceInstance): Promise<void> {
    if (instance.id !== this.current.id) {
      throw new RegistrationError(`update must keep instance id '${this.current.id}' (got '${instance.id}')`);
    }
    // Validate before anything changes: a value Consul cannot store throws here.
    const definition = toServiceDefinition(instance, this.deps.settings, this.timing);
    this.current = instance;
    this.definition = definition;
    this.needsPut = true;
    await this.enqueue(async () => {
      if (this.stopped || !this.needsPut) return;
      await this.put();
    });
  }

  async deregister(): Promise<void> {
    if (this.stopped) return;
    this.stop();
    await this.chain.catch(() => undefined);
    const id = this.current.id;
    const backoff = new Backoff({ initialMs: 100, maxMs: 1_000 });
    for (let attempt = 1; ; attempt++) {
      try {
        await this.deps.api.deregisterService(id);
        return;
      } catch (error) {
        if (error instanceof ConsulRequestError && error.kind === 'not-found') return;
        const retry = error instanceof ConsulRequestError && error.transient && attempt < DEREGISTER_ATTEMPTS;
        if (!retry) {
          // The check fails without heartbeats and Consul reaps the instance later.
          this.deps.logger.warn(
            `consul: could not deregister instance '${id}' of '${this.current.service}' (${(error as Error).message}); Consul removes it after its check stays critical`,
          );
          return;
        }
        await new Promise((resolve) => setTimeout(resolve, backoff.next()));
      }
    }
  }

  /** Stops the heartbeat and completes `events$` without deregistering (the check then expires). */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    clearTimeout(this.timer);
    this.abort.abort();
    this.events.complete();
    this.deps.onDone(this);
  }

  private enqueue<T>(task: () => Promise<T>): Promise<T> {
    const run = this.chain.then(task, task);
    this.chain = run.catch(() => undefined);
    return run;
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.heartbeat().then(
        () => {
          this.backoff.reset();
          this.schedule(this.timing.heartbeatMs);
        },
        (error: unknown) => {
          if (this.stopped) return;
          this.deps.logger.debug?.(
            `consul: heartbeat of instance '${this.current.id}' failed: ${(error as Error).message}`,
          );
          this.schedule(Math.min(this.timing.heartbeatMs, this.backoff.next()));
        },
      );
    }, delayMs);
    // The registration must not keep a process alive on its own.
    this.timer.unref();
  }

  private async beat(): Promise<void> {
    if (this.stopped) return;
    if (this.needsPut) {
      await this.put();
      return;
    }
    try {
      if (this.deps.settings.check.kind === 'ttl') {
        await this.deps.api.passCheck(checkIdOf(this.current.id), this.abort.signal);
      } else if (!(await this.deps.api.hasService(this.current.id, this.abort.signal))) {
        throw new ConsulRequestError(
          'not-found',
          404,
          `instance '${this.current.id}' is not registered with the agent`,
        );
      }
    } catch (error) {
      if (this.stopped || !(error instanceof ConsulRequestError)) throw error;
      if (await this.agentForgotUs(error)) {
        this.needsPut = true;
        this.markLost(
          `consul agent lost the registration (${error.status === undefined ? error.kind : `HTTP ${error.status}`}); registering again`,
        );
        await this.put();
        return;
      }
      // Past the TTL without a successful heartbeat the check has expired, whatever the cause (agent down, token revoked).
      if (Date.now() - this.lastSuccessAt > this.timing.ttlMs) {
        this.markLost(`no heartbeat succeeded for longer than the TTL (${this.timing.ttlMs} ms): ${error.message}`);
      }
      throw error;
    }
    this.succeeded();
  }

  /**
   * Consul 1.8 answers a pass of an unknown check with 500 (newer ones with
   * 404), and its client may hide the text; asking whether the service still
   * exists tells "forgotten" apart from any other server error.
   */
  private async agentForgotUs(error: ConsulRequestError): Promise<boolean> {
    if (error.kind === 'not-found') return true;
    if (error.kind !== 'server') return false;
    try {
      return !(await this.deps.api.hasService(this.current.id, this.abort.signal));
    } catch {
      return false;
    }
  }

  /** Sends the definition; a TTL check is passed at once (re-registering keeps its old status). */
  private async put(): Promise<void> {
    await this.deps.api.registerService(this.definition, this.abort.signal);
    if (this.deps.settings.check.kind === 'ttl')
      await this.deps.api.passCheck(checkIdOf(this.current.id), this.abort.signal);
    this.needsPut = false;
    this.succeeded();
  }

  private succeeded(): void {
    this.lastSuccessAt = Date.now();
    if (this.lostEvent && !this.stopped) {
      this.lostEvent = undefined;
      this.deps.logger.log(`consul: instance '${this.current.id}' of '${this.current.service}' is registered again`);
      this.events.next({ type: 'restored', instance: this.current, at: Date.now() });
    }
  }

  private markLost(reason: string): void {
    if (this.lostEvent || this.stopped) return;
    this.lostEvent = { type: 'lost', instance: this.current, reason, at: Date.now() };
    this.deps.logger.warn(`consul: instance '${this.current.id}' of '${this.current.service}' lost: ${reason}`);
    this.events.next(this.lostEvent);
  }
}

function toRegistrationError(instance: ServiceInstance, error: unknown): RegistrationError {
  if (error instanceof RegistrationError) return error;
  const message = error instanceof Error ? error.message : String(error);
  if (error instanceof ConsulRequestError && error.kind === 'permission') {
    return new RegistrationError(
      `Consul refused to register instance '${instance.id}' of service '${instance.service}': permission denied. ` +
        `Set backend_config.token to an ACL token with service:write on '${instance.service}'. (${message})`,
    );
  }
  return new RegistrationError(
    `Could not register instance '${instance.id}' of service '${instance.service}' with Consul: ${message}`,
  );
}
