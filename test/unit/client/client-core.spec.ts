import { afterEach, describe, expect, it } from 'vitest';
import {
  createServiceInstance,
  Discovery,
  type CallOutcome,
  type Registration,
  type ServiceClientOptions,
} from '../../../lib/index.js';
import { MemoryRegistry, MemoryStore } from '../../../lib/testing.js';
import { resolveRetryOptions } from '../../../lib/client/retry-policy.js';
import { runWithRetries, type AttemptPlan } from '../../../lib/client/retry-loop.js';
import type { ServiceClient } from '../../../lib/client/service-client.js';
import type { Endpoint } from '../../../lib/core/endpoint.js';

const TIMING = { ttlMs: 90_000, heartbeatMs: 30_000 };
const quiet = { log() {}, warn() {}, error() {} };

class Failure extends Error {
  constructor(readonly outcome: CallOutcome) {
    super(outcome);
  }
}

/** A transport plan whose attempts fail as `script` says (then succeed), recording what it saw. */
function scripted(
  script: CallOutcome[],
  seen: Array<{ endpoint: string; attempt: number; inFlight: number }>,
  client: ServiceClient,
) {
  const plan: AttemptPlan<string> = {
    run: async (endpoint: Endpoint, attempt: number) => {
      seen.push({ endpoint: endpoint.address, attempt, inFlight: client.loads.peek(endpoint.key)?.inFlight ?? 0 });
      const outcome = script[attempt - 1];
      if (outcome && outcome !== 'success') throw new Failure(outcome);
      return `ok from ${endpoint.address}`;
    },
    classify: (error) => (error instanceof Failure ? error.outcome : 'neutral'),
    retryable: (_error, outcome) => outcome === 'connection-failure',
  };
  return plan;
}

describe('the client core (transport-neutral)', () => {
  const registrations: Registration[] = [];
  const discoveries: Discovery[] = [];

  afterEach(async () => {
    await Promise.all(registrations.splice(0).map((r) => r.deregister()));
    await Promise.all(discoveries.splice(0).map((d) => d.close()));
  });

  async function clientWith(
    ports: number[],
    config: Record<string, unknown> = {},
    store = 'core',
    options: Omit<ServiceClientOptions, 'name'> = {},
  ): Promise<ServiceClient> {
    MemoryStore.reset(store);
    const registry = new MemoryRegistry(MemoryStore.named(store));
    for (const port of ports) {
      registrations.push(
        await registry.register(
          createServiceInstance({ service: 'svc', id: `i${port}`, address: `127.0.0.1:${port}` }),
          TIMING,
        ),
      );
    }
    const discovery = await Discovery.create(
      { backend: 'memory', loadBalance: 'round_robin', ...config },
      { registry, logger: quiet },
    );
    discoveries.push(discovery);
    const client = discovery.client({ name: 'svc', ...options });
    if (ports.length) await client.ready({ minEndpoints: ports.length });
    return client;
  }

  it('retries a connection failure on another endpoint, counting each attempt in flight while it runs', async () => {
    const client = await clientWith([7001, 7002, 7003]);
    const seen: Array<{ endpoint: string; attempt: number; inFlight: number }> = [];
    const retry = resolveRetryOptions({ maxAttempts: 3, initialBackoffMs: 1, maxBackoffMs: 2 });
    const result = await runWithRetries(
      client,
      scripted(['connection-failure', 'connection-failure'], seen, client),
      retry,
      {},
    );
    expect(seen.map((s) => s.attempt)).toEqual([1, 2, 3]);
    expect(new Set(seen.map((s) => s.endpoint)).size).toBe(3);
    expect(seen.every((s) => s.inFlight === 1)).toBe(true);
    expect(result).toBe(`ok from ${seen[2].endpoint}`);
    for (const endpoint of client.snapshot().endpoints) expect(client.loads.peek(endpoint.key)?.inFlight ?? 0).toBe(0);
  });

  it('does not retry what may have reached the application, nor beyond maxAttempts', async () => {
    const client = await clientWith([7001, 7002, 7003]);
    const retry = resolveRetryOptions({ maxAttempts: 3, initialBackoffMs: 1, maxBackoffMs: 2 });
    for (const outcome of ['timeout', 'application-error', 'overload'] as const) {
      const seen: Array<{ endpoint: string; attempt: number; inFlight: number }> = [];
      await expect(runWithRetries(client, scripted([outcome], seen, client), retry, {})).rejects.toThrow(outcome);
      expect(seen).toHaveLength(1);
    }
    const seen: Array<{ endpoint: string; attempt: number; inFlight: number }> = [];
    const always = Array<CallOutcome>(5).fill('connection-failure');
    await expect(runWithRetries(client, scripted(always, seen, client), retry, {})).rejects.toThrow(
      'connection-failure',
    );
    expect(seen).toHaveLength(3);
  });

  it('stops retrying when the retry budget is spent, and earns it back with successes', async () => {
    // A budget of 4 tokens: retries only while more than 2 are left; each retryable failure costs one, each success gives one back.
    const retry = { maxAttempts: 5, initialBackoffMs: 1, maxBackoffMs: 1, budget: { maxTokens: 4, tokenRatio: 1 } };
    const client = await clientWith([7001, 7002], {}, 'budget', { retry });
    const resolved = client.retryPolicy;
    const always = Array<CallOutcome>(5).fill('connection-failure');
    const seen: Array<{ endpoint: string; attempt: number; inFlight: number }> = [];
    await expect(runWithRetries(client, scripted(always, seen, client), resolved, {})).rejects.toThrow();
    // 4 tokens → first failure leaves 3 (> 2: retry) → second leaves 2 (no more retries).
    expect(seen).toHaveLength(2);
    seen.length = 0;
    await expect(runWithRetries(client, scripted(always, seen, client), resolved, {})).rejects.toThrow();
    expect(seen).toHaveLength(1);
    // 1 token left; three successes bring it back to the 4-token cap.
    for (let i = 0; i < 3; i++) await runWithRetries(client, scripted([], [], client), resolved, {});
    seen.length = 0;
    await expect(runWithRetries(client, scripted(always, seen, client), resolved, {})).rejects.toThrow();
    expect(seen).toHaveLength(2);
  });

  it('does not start a retry whose backoff would end past the call deadline', async () => {
    const client = await clientWith([7001, 7002]);
    const seen: Array<{ endpoint: string; attempt: number; inFlight: number }> = [];
    // Backoff of at least 400 ms (initial = max, random fixed high by the floor) against a 100 ms deadline.
    const retry = resolveRetryOptions({ maxAttempts: 5, initialBackoffMs: 400, maxBackoffMs: 400 });
    const host = Object.create(client) as ServiceClient;
    Object.defineProperty(host, 'random', { value: () => 0.99 });
    await expect(
      runWithRetries(host, scripted(['connection-failure', 'connection-failure'], seen, client), retry, {
        timeoutMs: 100,
      }),
    ).rejects.toThrow('connection-failure');
    expect(seen).toHaveLength(1);
  });

  it('ends a backoff in progress when the client closes, rejecting with the last failure', async () => {
    const client = await clientWith([7001, 7002]);
    const seen: Array<{ endpoint: string; attempt: number; inFlight: number }> = [];
    const retry = resolveRetryOptions({ maxAttempts: 3, initialBackoffMs: 60_000, maxBackoffMs: 60_000 });
    const host = Object.create(client) as ServiceClient;
    Object.defineProperty(host, 'random', { value: () => 0.99 });
    const pending = runWithRetries(host, scripted(['connection-failure'], seen, client), retry, {});
    await new Promise((resolve) => setImmediate(resolve));
    await client.close();
    await expect(pending).rejects.toThrow('connection-failure');
    expect(seen).toHaveLength(1);
  });

  it('feeds latency and outcomes through call handles: completing twice changes nothing, neutral gives no latency', async () => {
    const client = await clientWith([7001]);
    const endpoint = client.pickEndpoint();
    const first = client.startCall(endpoint);
    expect(client.loads.peek(endpoint.key)?.inFlight).toBe(1);
    first.complete('success');
    first.complete('connection-failure');
    const load = client.loads.peek(endpoint.key)!;
    expect(load.inFlight).toBe(0);
    expect(load.ewmaMs).toBeGreaterThan(0);
    const stamp = load.stampMs;
    const cancelled = client.startCall(endpoint);
    cancelled.complete('neutral');
    expect(load.inFlight).toBe(0);
    expect(load.stampMs).toBe(stamp);
    expect(client.pickCounts().get(endpoint.address)).toBe(2);
  });

  it('ejects an endpoint after consecutive connection failures reported through handles, and never for overload', async () => {
    const client = await clientWith([7001, 7002, 7003], { outlierDetection: { consecutiveFailures: 3 } });
    const [sick, busy] = client.snapshot().endpoints;
    for (let i = 0; i < 5; i++) client.startCall(busy).complete('overload');
    for (let i = 0; i < 3; i++) client.startCall(sick).complete('connection-failure');
    const served = client.snapshot().endpoints.map((e) => e.key);
    expect(served).not.toContain(sick.key);
    expect(served).toContain(busy.key);
    const report = client.describeEndpoints().find((r) => r.endpoint.key === sick.key);
    expect(report?.health).toBe('ejected');
    expect(report?.failuresLastMinute).toBe(3);
  });

  it('picks avoiding endpoints a call already failed on, and moves a keyed call off its failed endpoint', async () => {
    const client = await clientWith([7001, 7002, 7003], { loadBalance: 'consistent_hash' });
    const home = client.pickEndpoint({ key: 'alice' });
    const elsewhere = client.pickAvoiding({ key: 'alice' }, new Set([home.key]));
    expect(elsewhere.key).not.toBe(home.key);
    expect(client.pickAvoiding({ key: 'alice' }, new Set())).toBe(home);
  });
});
