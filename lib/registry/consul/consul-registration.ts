import { RegistrationError } from '../../core/errors.js';
import type { ServiceInstance } from '../../core/service-instance.js';
import type { DiscoveryLogger, RegistrationTiming } from '../registry.interface.js';
import { abortableSleep } from '../shared/abortable-sleep.js';
import { RegistrationBase } from '../shared/registration-base.js';
import { Backoff } from '../../core/backoff.js';
import type { ConsulAgentApi } from './consul-agent-api.js';
import { ConsulRequestError } from './consul-http.js';
import { checkIdOf, toServiceDefinition, type ConsulServiceDefinition } from './consul-service-codec.js';
import type { ConsulSettings } from './consul.schema.js';

export interface ConsulRegistrationDeps {
  api: ConsulAgentApi;
  settings: ConsulSettings;
  logger: DiscoveryLogger;
  /** Called once the registration is deregistered or stopped. */
  onEnd: (registration: ConsulRegistration) => void;
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
 * @example
 * const registration = await registry.register(instance, { ttlMs: 9_000, heartbeatMs: 3_000 });
 * registration.events$.subscribe((e) => console.log(e.type));
 */
export class ConsulRegistration extends RegistrationBase {
  private definition: ConsulServiceDefinition;
  /** The agent must be sent the definition again (never registered, or it forgot us). */
  private needsPut = true;
  private lastSuccessAt = Date.now();

  private constructor(
    instance: ServiceInstance,
    timing: RegistrationTiming,
    private readonly deps: ConsulRegistrationDeps,
  ) {
    super(instance, timing, {
      backoff: { initialMs: 200, maxMs: Math.max(200, timing.heartbeatMs) },
      onEnd: () => deps.onEnd(this),
    });
    this.definition = toServiceDefinition(instance, deps.settings, timing);
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
    await registration.begin(
      () => registration.put(),
      (error) => {
        if (!(error instanceof ConsulRequestError) || !error.transient || deps.settings.strict) {
          return { fail: toRegistrationError(instance, error) };
        }
        deps.logger.warn(
          `consul: instance '${instance.id}' of '${instance.service}' not registered yet (${error.message}); retrying with backoff`,
        );
        const reason = `registration pending: ${error.message}`;
        deps.logger.warn(`consul: instance '${instance.id}' of '${instance.service}' lost: ${reason}`);
        return { pending: reason };
      },
    );
    return registration;
  }

  protected override checkUpdate(instance: ServiceInstance): void {
    // A value Consul cannot store throws here, before anything changes.
    toServiceDefinition(instance, this.deps.settings, this.timing);
  }

  protected async write(instance: ServiceInstance): Promise<void> {
    this.current = instance;
    this.definition = toServiceDefinition(instance, this.deps.settings, this.timing);
    this.needsPut = true;
    if (this.active) await this.put();
  }

  protected async remove(): Promise<void> {
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
        await abortableSleep(backoff.next());
      }
    }
  }

  protected override retryDelay(error: unknown): number {
    this.deps.logger.debug?.(`consul: heartbeat of instance '${this.current.id}' failed: ${(error as Error).message}`);
    return super.retryDelay(error);
  }

  protected async refresh(): Promise<void> {
    if (this.needsPut) {
      await this.put();
      return;
    }
    try {
      if (this.deps.settings.check.kind === 'ttl') {
        await this.deps.api.passCheck(checkIdOf(this.current.id), this.signal);
      } else if (!(await this.deps.api.hasService(this.current.id, this.signal))) {
        throw new ConsulRequestError(
          'not-found',
          404,
          `instance '${this.current.id}' is not registered with the agent`,
        );
      }
    } catch (error) {
      if (!this.active || !(error instanceof ConsulRequestError)) throw error;
      if (await this.agentForgotUs(error)) {
        this.needsPut = true;
        this.lost(
          `consul agent lost the registration (${error.status === undefined ? error.kind : `HTTP ${error.status}`}); registering again`,
        );
        await this.put();
        return;
      }
      // Past the TTL without a successful heartbeat the check has expired, whatever the cause (agent down, token revoked).
      if (Date.now() - this.lastSuccessAt > this.timing.ttlMs) {
        this.lost(`no heartbeat succeeded for longer than the TTL (${this.timing.ttlMs} ms): ${error.message}`);
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
      return !(await this.deps.api.hasService(this.current.id, this.signal));
    } catch {
      return false;
    }
  }

  /** Sends the definition; a TTL check is passed at once (re-registering keeps its old status). */
  private async put(): Promise<void> {
    await this.deps.api.registerService(this.definition, this.signal);
    if (this.deps.settings.check.kind === 'ttl') await this.deps.api.passCheck(checkIdOf(this.current.id), this.signal);
    this.needsPut = false;
    this.succeeded();
  }

  private succeeded(): void {
    this.lastSuccessAt = Date.now();
    if (this.markRestored() !== undefined) {
      this.deps.logger.log(`consul: instance '${this.current.id}' of '${this.current.service}' is registered again`);
    }
  }

  private lost(reason: string): void {
    if (this.markLost(reason)) {
      this.deps.logger.warn(`consul: instance '${this.current.id}' of '${this.current.service}' lost: ${reason}`);
    }
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
