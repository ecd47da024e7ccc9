import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  createServiceInstance,
  Discovery,
  OverloadedError,
  type CallOutcome,
  type Registration,
  type ServiceClientOptions,
} from '../../../../lib/index.js';
import { MemoryRegistry, MemoryStore } from '../../../../lib/testing.js';
import { runHedged } from '../../../../lib/client/overload/hedging.js';
import type { AttemptPlan } from '../../../../lib/client/retry-loop.js';
import type { ServiceClient } from '../../../../lib/client/service-client.js';
import { OVERLOAD_PENALTY_MS } from '../../../../lib/client/service-client.js';
import { DiscoveryPicker } from '../../../../lib/transports/grpc/discovery-picker.js';
import { PickResultType, type GrpcPicker } from '../../../../lib/transports/grpc/grpc-adapter.js';

const TIMING = { ttlMs: 90_000, heartbeatMs: 30_000 };
const quiet = { log() {}, warn() {}, error() {} };

class Failure extends Error {
  constructor(readonly outcome: CallOutcome) {
    super(outcome);
  }
}

describe('overload protection through the client core', () => {
  const registrations: Registration[] = [];
  const discoveries: Discovery[] = [];
  afterEach(async () => {
    vi.useRealTimers();
    await Promise.all(registrations.splice(0).map((r) => r.deregister()));
    await Promise.all(discoveries.splice(0).map((d) => d.close()));
  });

  async function clientWith(ports: number[], options: Omit<ServiceClientOptions, 'name'> = {}): Promise<ServiceClient> {
    const store = new MemoryStore();
    const registry = new MemoryRegistry(store);
    for (const port of ports) {
      registrations.push(
        await registry.register(
          createServiceInstance({ service: 'svc', id: `i${port}`, address: `127.0.0.1:${port}` }),
          TIMING,
        ),
      );
    }
    const discovery = await Discovery.create(
      { backend: 'memory', loadBalance: 'round_robin' },
      { registry, logger: quiet },
    );
    discoveries.push(discovery);
    const client = discovery.client({ name: 'svc', ...options });
    await client.ready({ minEndpoints: ports.length });
    return client;
  }

  it('makes an overloaded answer cost p2c_ewma a penalty latency, without ejecting the endpoint', async () => {
    const client = await clientWith([7001, 7002]);
    const [busy] = client.snapshot().endpoints;
    for (let i = 0; i < 10; i++) client.startCall(busy).complete('overload');
    expect(client.loads.peek(busy.key)!.ewmaMs).toBeGreaterThanOrEqual(OVERLOAD_PENALTY_MS * 0.99);
    expect(client.snapshot().has(busy.key)).toBe(true);
    expect(client.describeEndpoints().find((r) => r.endpoint.key === busy.key)?.health).toBe('healthy');
  });

  it('fails fast with OverloadedError at max_requests, and passes over an endpoint at its own limit', async () => {
    const client = await clientWith([7001, 7002], {
      circuitBreaker: { maxRequests: 3, maxRequestsPerEndpoint: 1 },
    });
    const [a, b] = client.snapshot().endpoints;
    const first = client.startCall(a);
    expect(() => client.startCall(a)).toThrow(/max_requests_per_endpoint = 1/);
    const second = client.startCall(b);
    expect(() => client.startCall(b)).toThrow(OverloadedError);
    first.complete('success');
    second.complete('success');
    const held = [client.startCall(a), client.startCall(b)];
    expect(client.refusal(a)?.reason).toBe('max-requests-per-endpoint');
    held.forEach((h) => h.complete('success'));
  });

  it('sheds calls locally once the service refuses most of them, and stops once the refusals age out', async () => {
    const client = await clientWith([7001], { throttling: { minRequests: 10 } });
    vi.useFakeTimers({ toFake: ['Date'] });
    const [only] = client.snapshot().endpoints;
    // Ten refusals in the window (min_requests) before anything is shed.
    for (let i = 0; i < 10; i++) client.startCall(only).complete('overload');
    let shed = 0;
    for (let i = 0; i < 200; i++) {
      try {
        client.startCall(only).complete('overload');
      } catch (error) {
        expect((error as OverloadedError).reason).toBe('throttled');
        shed++;
      }
    }
    expect(shed).toBeGreaterThan(100);
    // Refusals leave the window as it slides (two minutes by default): then nothing is shed.
    vi.setSystemTime(Date.now() + 121_000);
    expect(client.refusal(only)).toBeUndefined();
    for (let i = 0; i < 100; i++) client.startCall(only).complete('success');
    expect(client.refusal(only)).toBeUndefined();
  });

  for (const cancel of [false, true]) {
    it(`hedges an idempotent call after the delay: the first answer wins, the loser ${cancel ? 'is aborted' : 'runs to its end'}`, async () => {
      const client = await clientWith([7001, 7002], { hedging: { delay: 0.02 } });
      const started: string[] = [];
      const aborted: string[] = [];
      let loserFinished!: () => void;
      const loserDone = new Promise<void>((resolve) => (loserFinished = resolve));
      const plan: AttemptPlan<string> = {
        run: (endpoint, _attempt, _deadline, _call, signal) =>
          new Promise((resolve) => {
            started.push(endpoint.address);
            const first = started.length === 1;
            // The first endpoint tried is slow; the hedge answers at once.
            const timer = setTimeout(
              () => {
                resolve(endpoint.address);
                if (first) loserFinished();
              },
              first ? 200 : 1,
            );
            signal?.addEventListener('abort', () => {
              clearTimeout(timer);
              aborted.push(endpoint.address);
              loserFinished();
            });
          }),
        classify: (error) => (error instanceof Failure ? error.outcome : 'neutral'),
        retryable: (_e, outcome) => outcome === 'connection-failure',
      };
      const winner = await runHedged(client, plan, client.retryPolicy, 2, {}, cancel);
      expect(started).toHaveLength(2);
      expect(new Set(started).size).toBe(2);
      expect(winner).toBe(started[1]);
      await loserDone;
      expect(aborted).toEqual(cancel ? [started[0]] : []);
      for (const endpoint of client.snapshot().endpoints)
        expect(client.loads.peek(endpoint.key)?.inFlight ?? 0).toBe(0);
    });
  }

  it('never sends a call that is not marked idempotent twice', async () => {
    const client = await clientWith([7001, 7002], { hedging: { delay: 0.01 } });
    let attempts = 0;
    const result = await client.call(
      () =>
        new Promise<string>((resolve) => {
          attempts++;
          setTimeout(() => resolve('slow but single'), 80);
        }),
    );
    expect(result).toBe('slow but single');
    expect(attempts).toBe(1);
    let hedged = 0;
    await client.call(
      ({ signal }) =>
        new Promise<string>((resolve) => {
          hedged++;
          const timer = setTimeout(() => resolve('ok'), 80);
          signal.addEventListener('abort', () => clearTimeout(timer));
        }),
      { idempotent: true },
    );
    expect(hedged).toBe(2);
  });

  it('fails a pick on a discovery:/// channel with RESOURCE_EXHAUSTED when the breaker refuses it', async () => {
    const client = await clientWith([7001], { circuitBreaker: { maxRequests: 1 } });
    const [only] = client.snapshot().endpoints;
    const leaf: GrpcPicker = {
      pick: () => ({
        pickResultType: PickResultType.COMPLETE,
        subchannel: {} as never,
        status: null,
        onCallStarted: null,
        onCallEnded: null,
      }),
    };
    const picker = new DiscoveryPicker(
      client,
      new Map([[only.key, leaf]]),
      [{ endpoint: only, leaf }],
      new Set(),
      'x-hash-key',
    );
    const held = client.startCall(only);
    const refused = picker.pick({ metadata: new grpc.Metadata(), extraPickInfo: {} });
    expect(refused.pickResultType).toBe(PickResultType.DROP);
    expect(refused.status?.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(refused.status?.details).toMatch(/max_requests = 1/);
    held.complete('success');
    expect(picker.pick({ metadata: new grpc.Metadata(), extraPickInfo: {} }).pickResultType).toBe(
      PickResultType.COMPLETE,
    );
  });
});
