import * as grpc from '@grpc/grpc-js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  createServiceInstance,
  Discovery,
  OverloadedError,
  type Registration,
  type ServiceClient,
  type ServiceClientOptions,
} from '../../../lib/index.js';
import { MemoryRegistry, MemoryStore } from '../../../lib/testing.js';
import {
  GREETER_PROTO,
  greeterPackage,
  sayHello,
  type GreeterStub,
  type HelloReply,
} from '../../support/grpc/greeter.js';
import { OverloadServer } from '../../support/grpc/overload-server.js';
import { waitFor } from '../../support/wait-for.js';

// Overload behaviour against real Greeter servers, each in its own process.
// Serial: shares and concurrency are measured, and other suites' load would blur them.

const TIMING = { ttlMs: 90_000, heartbeatMs: 30_000 };
const quiet = { log() {}, warn() {}, error() {} };

function helloOver(channel: grpc.Channel, signal?: AbortSignal): Promise<HelloReply> {
  const stub = new greeterPackage.greeter.Greeter('unused', grpc.credentials.createInsecure(), {
    channelOverride: channel,
  }) as unknown as GreeterStub;
  return new Promise((resolve, reject) => {
    const call = stub.SayHello({ name: 'x' }, new grpc.Metadata(), { deadline: Date.now() + 5_000 }, (e, r) =>
      e ? reject(e) : resolve(r!),
    );
    signal?.addEventListener('abort', () => call.cancel());
  });
}

describe('overload protection against real servers', () => {
  const servers: OverloadServer[] = [];
  const registrations: Registration[] = [];
  const discoveries: Discovery[] = [];
  let registry: MemoryRegistry;
  let serviceCount = 0;

  beforeAll(async () => {
    for (const id of ['o1', 'o2', 'o3', 'o4']) servers.push(await OverloadServer.start(id));
  });
  afterAll(async () => {
    await Promise.all(servers.map((s) => s.stop()));
  });
  afterEach(async () => {
    await Promise.all(registrations.splice(0).map((r) => r.deregister()));
    await Promise.all(discoveries.splice(0).map((d) => d.close()));
    await Promise.all(servers.map((s) => s.set({ delayMs: 0, rejectShare: 0, reset: true })));
  });

  /** Registers `count` servers under a fresh service name and returns its client. */
  async function setup(
    count: number,
    options: Omit<ServiceClientOptions, 'name'>,
    config: Record<string, unknown> = {},
    metadata: (i: number) => Record<string, string> = () => ({}),
  ): Promise<{ client: ServiceClient; service: string; discovery: Discovery }> {
    const service = `overload-${++serviceCount}`;
    registry = new MemoryRegistry(new MemoryStore());
    for (let i = 0; i < count; i++) {
      registrations.push(
        await registry.register(
          createServiceInstance({ service, id: servers[i].id, address: servers[i].address, metadata: metadata(i) }),
          TIMING,
        ),
      );
    }
    const discovery = await Discovery.create(
      { backend: 'memory', loadBalance: 'round_robin', ...config },
      { registry, logger: quiet },
    );
    discoveries.push(discovery);
    const client = discovery.client({ name: service, proto: { path: GREETER_PROTO }, ...options });
    await client.ready({ minEndpoints: count });
    return { client, service, discovery };
  }

  async function callsPerServer(stub: GreeterStub, n: number): Promise<Map<string, number>> {
    const counts = new Map<string, number>();
    for (let i = 0; i < n; i++) {
      const reply = await sayHello(stub, 'x');
      counts.set(reply.instance, (counts.get(reply.instance) ?? 0) + 1);
    }
    return counts;
  }

  it('ramps a server that joins from a small share to its full share (slow start)', async () => {
    const { client, service } = await setup(2, { slowStart: { window: 4, minWeightPercent: 10 } });
    const stub = client.getService<GreeterStub>('Greeter');
    await callsPerServer(stub, 20);
    registrations.push(
      await registry.register(createServiceInstance({ service, id: 'o3', address: servers[2].address }), TIMING),
    );
    await waitFor(() => client.snapshot().size === 3, { what: 'the third server to be served' });
    const early = await callsPerServer(stub, 300);
    const earlyShare = (early.get('o3') ?? 0) / 300;
    // Full share would be a third; just after joining it gets far less.
    expect(earlyShare).toBeLessThan(0.2);
    await waitFor(async () => ((await callsPerServer(stub, 300)).get('o3') ?? 0) / 300 > 0.28, {
      what: 'the newcomer to reach its full share once the window has passed',
      timeoutMs: 15_000,
    });
  });

  it('avoids a server answering RESOURCE_EXHAUSTED without ejecting it (p2c_ewma)', async () => {
    const { client } = await setup(3, { loadBalance: 'p2c_ewma', retry: false, throttling: { enabled: false } });
    await servers[0].set({ rejectShare: 1 });
    let refused = 0;
    for (let i = 0; i < 300; i++) {
      await client.call(({ channel }) => helloOver(channel)).catch(() => refused++);
    }
    const busy = (await servers[0].stats()).calls;
    // An even share would be 100 of 300; the penalty keeps it far below.
    expect(busy).toBeLessThan(40);
    expect(refused).toBe(busy);
    const report = client.describeEndpoints().find((r) => r.endpoint.address === servers[0].address)!;
    expect(report.health).toBe('healthy');
    expect(report.served).toBe(true);
  });

  it('caps the calls in flight at max_requests and fails the rest fast with OverloadedError', async () => {
    const { client } = await setup(2, { circuitBreaker: { maxRequests: 4 }, retry: false });
    await Promise.all(servers.slice(0, 2).map((s) => s.set({ delayMs: 300, reset: true })));
    const results = await Promise.allSettled(
      Array.from({ length: 20 }, () => client.call(({ channel }) => helloOver(channel))),
    );
    const refused = results.filter((r) => r.status === 'rejected' && r.reason instanceof OverloadedError);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(4);
    expect(refused).toHaveLength(16);
    const seen = await Promise.all(servers.slice(0, 2).map((s) => s.stats()));
    expect(seen.reduce((sum, s) => sum + s.calls, 0)).toBe(4);
    expect(Math.max(...seen.map((s) => s.maxInFlight))).toBeLessThanOrEqual(4);
  });

  it('sheds calls locally while the service rejects 90 % of them (adaptive throttling)', async () => {
    const { client } = await setup(1, { retry: false });
    await servers[0].set({ rejectShare: 0.9, reset: true });
    let shed = 0;
    let refusedByServer = 0;
    for (let i = 0; i < 600; i++) {
      await client
        .call(({ channel }) => helloOver(channel))
        .catch((error: unknown) => {
          if (error instanceof OverloadedError && error.reason === 'throttled') shed++;
          else refusedByServer++;
        });
    }
    const seen = await servers[0].stats();
    expect(shed).toBeGreaterThan(150);
    expect(seen.calls).toBe(600 - shed);
    expect(seen.rejected).toBe(refusedByServer);
  });

  it('hedges only calls marked idempotent, and the hedge answers when the first server is slow', async () => {
    const { client } = await setup(2, { hedging: { delay: 0.03 }, retry: false });
    await servers[0].set({ delayMs: 1_000, reset: true });
    await servers[1].set({ reset: true });
    // Round robin: of two plain calls one lands on the slow server, and waits for it: never sent twice.
    const plain = await Promise.all([0, 1].map(() => client.call(({ channel }) => helloOver(channel))));
    expect(plain.map((r) => r.instance).sort()).toEqual(['o1', 'o2']);
    let seen = await Promise.all(servers.slice(0, 2).map((s) => s.stats()));
    expect(seen.map((s) => s.calls)).toEqual([1, 1]);
    // Idempotent calls that start on the slow server are hedged to the fast one, which answers them all.
    const hedged = await Promise.all(
      Array.from({ length: 4 }, () =>
        client.call(({ channel, signal }) => helloOver(channel, signal), { idempotent: true }),
      ),
    );
    expect(hedged.map((r) => r.instance)).toEqual(['o2', 'o2', 'o2', 'o2']);
    seen = await Promise.all(servers.slice(0, 2).map((s) => s.stats()));
    // Two of the four started on o1 (and were cancelled there), each hedged once to o2.
    expect(seen[0].calls - 1).toBe(2);
    expect(seen[1].calls - 1).toBe(4);
  });

  it('gives grpc-js stubs on the balanced channel gRPC hedging for the methods named in hedging.grpc_methods', async () => {
    const { client } = await setup(2, {
      hedging: { delay: 0.03, grpcMethods: ['greeter.Greeter/SayHello'] },
    });
    await servers[0].set({ delayMs: 1_000, reset: true });
    const stub = client.getService<GreeterStub>('Greeter');
    // One call at a time (grpc-js picks each hedged attempt on its own, so under concurrency a hedge may
    // land on the slow server again): every call that starts on o1 is hedged to o2, which answers it.
    const replies: HelloReply[] = [];
    for (let i = 0; i < 6; i++) replies.push(await sayHello(stub, 'x'));
    expect(replies.map((r) => r.instance)).toEqual(Array(6).fill('o2'));
    expect((await servers[0].stats()).calls).toBeGreaterThanOrEqual(3);
  });

  it('keeps traffic in the caller’s zone while it is healthy and spills over in proportion as it degrades', async () => {
    const { client } = await setup(
      4,
      { zone: 'a', retry: false, throttling: { enabled: false } },
      { outlierDetection: { consecutiveFailures: 1, baseEjectionTime: 60, maxEjectionPercent: 50 } },
      (i) => ({ zone: i < 2 ? 'a' : 'b' }),
    );
    const inZone = async (n: number) => {
      let a = 0;
      for (let i = 0; i < n; i++) {
        const reply = await client.call(({ channel }) => helloOver(channel)).catch(() => undefined);
        if (reply && (reply.instance === 'o1' || reply.instance === 'o2')) a++;
      }
      return a / n;
    };
    expect(await inZone(200)).toBe(1);
    // One of the two zone-a servers fails and is ejected: zone a's health is 1/2 × 1.4 = 70 %.
    await servers[0].set({ rejectShare: 1, rejectCode: grpc.status.UNAVAILABLE });
    await waitFor(
      async () => {
        await client.call(({ channel }) => helloOver(channel)).catch(() => undefined);
        return client.describeEndpoints().some((r) => r.health === 'ejected');
      },
      { what: 'the failing zone-a server to be ejected' },
    );
    const share = await inZone(1_000);
    expect(share).toBeGreaterThan(0.62);
    expect(share).toBeLessThan(0.78);
  });
});
