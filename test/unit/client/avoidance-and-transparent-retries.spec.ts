import { afterEach, describe, expect, it } from 'vitest';
import { createServiceInstance, Discovery, type Registration } from '../../../lib/index.js';
import { MemoryRegistry, MemoryStore } from '../../../lib/testing.js';
import { runWithRetries, type AttemptPlan } from '../../../lib/client/retry-loop.js';
import type { ServiceClient } from '../../../lib/client/service-client.js';

const TIMING = { ttlMs: 90_000, heartbeatMs: 30_000 };
const quiet = { log() {}, warn() {}, error() {} };

describe('the client core: avoided endpoints and retries that never left', () => {
  const registrations: Registration[] = [];
  const discoveries: Discovery[] = [];

  afterEach(async () => {
    await Promise.all(registrations.splice(0).map((r) => r.deregister()));
    await Promise.all(discoveries.splice(0).map((d) => d.close()));
  });

  async function clientOver(ports: number[], strategy = 'round_robin', retry?: object): Promise<ServiceClient> {
    const store = `avoid-${strategy}`;
    MemoryStore.reset(store);
    const registry = new MemoryRegistry(MemoryStore.named(store));
    for (const port of ports) {
      const instance = createServiceInstance({ service: 'svc', id: `i${port}`, address: `127.0.0.1:${port}` });
      registrations.push(await registry.register(instance, TIMING));
    }
    const discovery = await Discovery.create({ backend: 'memory', loadBalance: strategy }, { registry, logger: quiet });
    discoveries.push(discovery);
    const client = discovery.client({ name: 'svc', ...(retry ? { retry } : {}) });
    await client.ready({ minEndpoints: ports.length });
    return client;
  }

  it('picks go around an avoided endpoint until its time has passed', async () => {
    const client = await clientOver([7101, 7102, 7103]);
    const avoided = client.snapshot().endpoints[0];
    client.avoidEndpoint(avoided, Date.now() + 60_000);
    const picked = new Set(Array.from({ length: 30 }, () => client.pickEndpoint().address));
    expect(picked.has(avoided.address)).toBe(false);
    expect(picked.size).toBe(2);
    client.avoidEndpoint(avoided, Date.now() - 1);
    expect(client.avoidedUntil(avoided)).toBeGreaterThan(Date.now());
  });

  it('an expired avoidance ends, and when every endpoint is avoided one is still picked', async () => {
    const client = await clientOver([7111, 7112]);
    const [a, b] = client.snapshot().endpoints;
    client.avoidEndpoint(a, Date.now() + 60_000);
    client.avoidEndpoint(b, Date.now() + 60_000);
    expect([a.address, b.address]).toContain(client.pickEndpoint().address);
    const other = await clientOver([7113, 7114], 'random');
    const [c] = other.snapshot().endpoints;
    other.avoidEndpoint(c, Date.now() - 1);
    expect(other.avoidedUntil(c)).toBeUndefined();
  });

  it('a keyed pick whose endpoint is avoided moves to the same replacement every time', async () => {
    const client = await clientOver([7121, 7122, 7123, 7124], 'consistent_hash');
    const home = client.pickEndpoint({ key: 'customer-7' });
    client.avoidEndpoint(home, Date.now() + 60_000);
    const replacements = new Set(Array.from({ length: 10 }, () => client.pickEndpoint({ key: 'customer-7' }).address));
    expect(replacements.size).toBe(1);
    expect(replacements.has(home.address)).toBe(false);
  });

  it('a failure that never left spends an attempt but not the retry budget', async () => {
    // A budget that allows no retry at all once one failure is counted.
    const budget = { maxTokens: 2, tokenRatio: 0.01 };
    const client = await clientOver([7131, 7132], 'round_robin', {
      maxAttempts: 3,
      initialBackoffMs: 1,
      maxBackoffMs: 1,
      budget,
    });
    const refused = Object.assign(new Error('refused'), { code: 'ECONNREFUSED' });
    let attempts = 0;
    const plan: AttemptPlan<string> = {
      run: () => (++attempts < 3 ? Promise.reject(refused) : Promise.resolve('ok')),
      classify: () => 'connection-failure',
      retryable: () => true,
      neverSent: () => true,
    };
    expect(await runWithRetries(client, plan, client.retryPolicy, {})).toBe('ok');
    expect(attempts).toBe(3);
    expect(client.budget.canRetry()).toBe(true);
    // The same failures, sent: the first one spends the budget, and nothing is retried.
    attempts = 0;
    await expect(runWithRetries(client, { ...plan, neverSent: () => false }, client.retryPolicy, {})).rejects.toThrow(
      'refused',
    );
    expect(attempts).toBe(1);
  });

  it('a plan that completes its own calls keeps them in flight after run resolves', async () => {
    const client = await clientOver([7141]);
    let handle: { complete(outcome: 'success'): void } | undefined;
    const plan: AttemptPlan<void> = {
      completesOnSuccess: true,
      run: (_endpoint, _attempt, _deadline, call) => {
        handle = call;
        return Promise.resolve();
      },
      classify: () => 'neutral',
      retryable: () => false,
    };
    await runWithRetries(client, plan, client.retryPolicy, {});
    expect(client.describeEndpoints()[0].inFlight).toBe(1);
    handle?.complete('success');
    expect(client.describeEndpoints()[0].inFlight).toBe(0);
  });
});
