import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createServiceInstance } from '../../../lib/core/service-instance.js';
import type { RegistrationEvent } from '../../../lib/registry/registry.interface.js';
import type { ReachabilityState } from '../../../lib/registry/shared/reachability.js';
import { ConsulAgent, consulBinary, httpGet } from '../../support/peers/consul.js';
import { waitFor } from '../../support/wait-for.js';
import { Closer, RecordingLogger, registerDirect } from './support/consul-kit.js';
import { CountingProxy } from './support/counting-proxy.js';

const binary = consulBinary();

describe.skipIf(!binary)('consul: agent restart (dev mode loses all state)', () => {
  let agent: ConsulAgent;
  const closer = new Closer();

  beforeAll(async () => {
    agent = await ConsulAgent.start({}, binary);
  });
  afterEach(() => closer.closeAll());
  afterAll(async () => {
    await agent?.stop();
  });

  it('registers again after the agent restarts (lost, then restored) and watchers recover from stale', async () => {
    const heartbeatMs = 500;
    const registry = await closer.registry(agent.url);
    const states: ReachabilityState[] = [];
    const stateSubscription = registry.reachability.state$.subscribe((s) => states.push(s));
    const registration = await registry.register(
      createServiceInstance({ service: 'rs-orders', id: 'rs-1', address: '127.0.0.1:7101' }),
      {
        ttlMs: 3_000,
        heartbeatMs,
      },
    );
    const events: RegistrationEvent[] = [];
    registration.events$.subscribe((e) => events.push(e));
    const seen = closer.collect(registry.watch({ service: 'rs-orders' }));
    await waitFor(() => seen.ids().join() === 'rs-1', { what: 'rs-1 discovered' });

    await agent.restart();
    // Patience, not a claim about speed: the next heartbeats (the retry backoff is capped at one) on a loaded machine.
    await waitFor(async () => (await httpGet(`${agent.url}/v1/agent/service/rs-1`)).status === 200, {
      timeoutMs: 10 * heartbeatMs + 5_000,
      what: 'rs-1 registered again',
    });
    await waitFor(() => events.some((e) => e.type === 'restored'), { what: 'restored event' });
    expect(events.map((e) => e.type)).toEqual(['lost', 'restored']);
    expect(events[0]).toMatchObject({
      type: 'lost',
      reason: expect.stringMatching(/lost the registration|longer than the TTL/),
    });

    // The watcher served the last set as stale during the outage, then recovered.
    await waitFor(() => seen.latest()?.state === 'ok' && seen.ids().join() === 'rs-1', {
      timeoutMs: 10_000,
      what: 'watcher recovered',
    });
    const stale = seen.sets.find((s) => s.state === 'stale');
    expect(stale?.reason).toMatch(/^registry unreachable: /);
    expect(stale?.instances.map((i) => i.id)).toEqual(['rs-1']);
    expect(states.some((s) => s.reachable === false && /registry unreachable/.test(s.reason ?? ''))).toBe(true);
    expect(registry.reachability.current.reachable).toBe(true);
    stateSubscription.unsubscribe();
  });

  it('does not spin when the index goes backwards: the query rate stays bounded and queries block again', async () => {
    const proxy = await CountingProxy.start(agent.url);
    try {
      const logger = new RecordingLogger();
      const waitS = 2;
      const registry = await closer.registry(
        proxy.url,
        { wait: waitS },
        { logger, tuning: { minQueryIntervalMs: 100 } },
      );
      const seen = closer.collect(registry.watch({ service: 'ib-orders' }));
      await registerDirect(agent.url, { ID: 'ib-1', Name: 'ib-orders', Address: '127.0.0.1', Port: 7201 });
      await waitFor(() => seen.ids().join() === 'ib-1', { what: 'ib-1 discovered' });
      // Raise the service's index well above what a fresh agent starts with (Consul 1.8 keeps
      // one index per service); these instances are in another namespace, so nothing is emitted.
      const emitted = seen.sets.length;
      for (let i = 0; i < 40; i++) {
        await registerDirect(agent.url, {
          ID: `filler-${i}`,
          Name: 'ib-orders',
          Address: '127.0.0.1',
          Port: 7300 + i,
          Meta: { namespace: 'elsewhere' },
        });
      }
      const path = '/v1/health/service/ib-orders';
      await waitFor(
        () =>
          Number(
            proxy.requests
              .filter((r) => r.path === path)
              .at(-1)
              ?.query.get('index'),
          ) > 40,
        { what: 'a high index' },
      );
      const highIndex = Number(
        proxy.requests
          .filter((r) => r.path === path)
          .at(-1)!
          .query.get('index'),
      );
      // Index bumps without a change in the matching set emit nothing.
      expect(seen.sets.length).toBe(emitted);

      await agent.restart();
      const backAt = Date.now();
      await registerDirect(agent.url, { ID: 'ib-2', Name: 'ib-orders', Address: '127.0.0.1', Port: 7202 });
      await waitFor(() => seen.latest()?.state === 'ok' && seen.ids().join() === 'ib-2', {
        timeoutMs: 15_000,
        what: 'ib-2 after the restart',
      });

      // A measurement window, not synchronisation: count what the watcher sends in it.
      const windowMs = 3 * waitS * 1_000;
      const windowStart = Date.now();
      await new Promise((resolve) => setTimeout(resolve, windowMs));
      const inWindow = proxy.count(path, windowStart);
      // Blocking again: about one query per wait (a spin would be hundreds; the rate limit alone allows 60).
      expect(inWindow).toBeLessThanOrEqual(windowMs / (waitS * 1_000) + 3);
      expect(inWindow).toBeGreaterThanOrEqual(1);

      const after = proxy.requests.filter((r) => r.path === path && r.at >= backAt && r.query.has('index'));
      expect(after.length).toBeGreaterThan(0);
      expect(after.every((r) => Number(r.query.get('index')) >= 1)).toBe(true);
      expect(after.some((r) => Number(r.query.get('index')) < highIndex)).toBe(true);
      expect(logger.lines.some((l) => /index of 'ib-orders' went backwards/.test(l))).toBe(true);
    } finally {
      await closer.closeAll();
      await proxy.close();
    }
  });
});
