import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { RegistrationError } from '../../../../lib/core/errors.js';
import { createServiceInstance, type ServiceInstance } from '../../../../lib/core/service-instance.js';
import type { RegistrationEvent, RegistrationTiming } from '../../../../lib/registry/registry.interface.js';
import { RegistrationBase, type FirstAttemptOutcome } from '../../../../lib/registry/shared/registration-base.js';

const TIMING: RegistrationTiming = { ttlMs: 3_000, heartbeatMs: 1_000 };

/** A registration whose "registry" is a script of outcomes: each refresh takes the next one. */
class ScriptedRegistration extends RegistrationBase {
  readonly refreshedAt: number[] = [];
  readonly written: ServiceInstance[] = [];
  removals = 0;
  endCalls = 0;
  outcomes: Array<'ok' | 'fail'> = [];

  constructor(timing = TIMING) {
    super(createServiceInstance({ service: 'orders', id: 'o-1', address: '127.0.0.1:1' }), timing, {
      // A fixed "random" makes the jittered delays exact: half the ceiling.
      backoff: { initialMs: 100, maxMs: timing.heartbeatMs, random: () => 0.5 },
      onEnd: () => this.endCalls++,
    });
  }

  start(first: () => Promise<void>, onFailure: (error: unknown) => FirstAttemptOutcome): Promise<void> {
    return this.begin(first, onFailure);
  }

  protected async refresh(): Promise<void> {
    this.refreshedAt.push(Date.now());
    const outcome = this.outcomes.shift() ?? 'ok';
    if (outcome === 'fail') {
      this.markLost('registry unreachable: scripted');
      throw new Error('scripted failure');
    }
    this.markRestored();
  }

  protected async write(instance: ServiceInstance): Promise<void> {
    this.current = instance;
    this.written.push(instance);
  }

  protected async remove(): Promise<void> {
    this.removals++;
  }
}

function eventsOf(registration: RegistrationBase): RegistrationEvent[] {
  const events: RegistrationEvent[] = [];
  registration.events$.subscribe((e) => events.push(e));
  return events;
}

describe('RegistrationBase', () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: 0 });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('heartbeats every heartbeatMs, retries failures on a jittered backoff capped at a heartbeat, and resets it after a success', async () => {
    const registration = new ScriptedRegistration();
    await registration.start(
      async () => undefined,
      () => ({ pending: 'n/a' }),
    );
    registration.outcomes = ['fail', 'fail', 'fail', 'fail', 'fail', 'ok', 'fail', 'ok'];
    await vi.advanceTimersByTimeAsync(20_000);
    // Delays after a failure: 50, 100, 200, 400, 500 ms (half of 100·2^n, capped at 1 000), then a heartbeat.
    const gaps = registration.refreshedAt.slice(1, 9).map((at, i) => at - registration.refreshedAt[i]);
    expect(registration.refreshedAt[0]).toBe(1_000);
    expect(gaps).toEqual([50, 100, 200, 400, 500, 1_000, 50, 1_000]);
    await registration.deregister();
  });

  it('emits lost once per loss and restored when it ends, and replays a pending loss to late subscribers', async () => {
    const registration = new ScriptedRegistration();
    const events = eventsOf(registration);
    await registration.start(
      async () => {
        throw new Error('refused');
      },
      (error) => ({ pending: `registration pending: ${(error as Error).message}` }),
    );
    expect(events.map((e) => e.type)).toEqual(['lost']);
    expect(events[0]).toMatchObject({ reason: 'registration pending: refused' });
    const late = eventsOf(registration);
    expect(late.map((e) => e.type)).toEqual(['lost']);

    registration.outcomes = ['fail', 'fail', 'ok'];
    await vi.advanceTimersByTimeAsync(2_000);
    expect(events.map((e) => e.type)).toEqual(['lost', 'restored']);
    expect(eventsOf(registration)).toEqual([]);
    await registration.deregister();
  });

  it('a first attempt the backend calls fatal ends the registration and throws, leaving no timer', async () => {
    const registration = new ScriptedRegistration();
    const refused = new RegistrationError('permission denied');
    await expect(
      registration.start(
        async () => {
          throw new Error('403');
        },
        () => ({ fail: refused }),
      ),
    ).rejects.toBe(refused);
    expect(registration.active).toBe(false);
    expect(registration.endCalls).toBe(1);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('deregisters once, however often asked; later heartbeats do nothing; no timer is left', async () => {
    const registration = new ScriptedRegistration();
    let completed = false;
    registration.events$.subscribe({ complete: () => (completed = true) });
    await registration.start(
      async () => undefined,
      () => ({ pending: 'n/a' }),
    );
    expect(vi.getTimerCount()).toBe(1);
    await Promise.all([registration.deregister(), registration.deregister()]);
    await registration.deregister();
    expect(registration.removals).toBe(1);
    expect(registration.endCalls).toBe(1);
    expect(completed).toBe(true);
    expect(vi.getTimerCount()).toBe(0);
    await registration.heartbeat();
    expect(registration.refreshedAt).toEqual([]);
  });

  it('stop() ends the heartbeat without removing the instance (it expires with its TTL)', async () => {
    const registration = new ScriptedRegistration();
    await registration.start(
      async () => undefined,
      () => ({ pending: 'n/a' }),
    );
    await registration.stop();
    await registration.deregister();
    expect(registration.removals).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('runs heartbeats, updates and deregistration one at a time: deregistration waits for a heartbeat in flight', async () => {
    const order: string[] = [];
    class Slow extends ScriptedRegistration {
      protected override async refresh(): Promise<void> {
        order.push('refresh start');
        await new Promise((resolve) => setTimeout(resolve, 100));
        order.push('refresh end');
      }
      protected override async write(instance: ServiceInstance): Promise<void> {
        order.push('write');
        await super.write(instance);
      }
      protected override async remove(): Promise<void> {
        order.push('remove');
        await super.remove();
      }
    }
    const registration = new Slow();
    await registration.start(
      async () => undefined,
      () => ({ pending: 'n/a' }),
    );
    await vi.advanceTimersByTimeAsync(1_000);
    expect(order).toEqual(['refresh start']);
    const update = registration.update({ ...registration.instance, weight: 5 });
    const gone = registration.deregister();
    await vi.advanceTimersByTimeAsync(100);
    await Promise.all([update, gone]);
    expect(order).toEqual(['refresh start', 'refresh end', 'write', 'remove']);
    expect(registration.instance.weight).toBe(5);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('refuses an update that changes the instance id, before anything changes', async () => {
    const registration = new ScriptedRegistration();
    const other = createServiceInstance({ service: 'orders', id: 'o-2', address: '127.0.0.1:1' });
    await expect(registration.update(other)).rejects.toThrow(/must keep instance id 'o-1' \(got 'o-2'\)/);
    expect(registration.written).toEqual([]);
  });

  it('a manual heartbeat rejects when the refresh fails, and the loop retries it', async () => {
    const registration = new ScriptedRegistration();
    await registration.start(
      async () => undefined,
      () => ({ pending: 'n/a' }),
    );
    registration.outcomes = ['fail'];
    await expect(registration.heartbeat()).rejects.toThrow('scripted failure');
    await vi.advanceTimersByTimeAsync(50);
    expect(registration.refreshedAt).toEqual([0, 50]);
    await registration.deregister();
  });
});
