import * as grpc from '@grpc/grpc-js';
import { afterAll, afterEach, beforeAll, describe, expect } from 'vitest';
import {
  createServiceInstance,
  Discovery,
  OverloadedError,
  type Registration,
  type ServiceClient,
  type ServiceClientOptions,
} from '../../lib/index.js';
import { MemoryRegistry, MemoryStore } from '../../lib/testing.js';
import { GREETER_PROTO, greeterPackage, sayHello, type GreeterStub, type HelloReply } from '../support/grpc/greeter.js';
import { OverloadServer } from '../support/grpc/overload-server.js';
import { waitFor } from '../support/wait-for.js';
import { reliabilityTest, ResultsFile, type ResultSpec } from './support/reliability-results.js';

// Overload behaviour against real Greeter servers, each in its own process,
// reported to RELIABILITY.md (what each scenario asserted and measured).
// Serial: shares and concurrency are measured, and other suites' load would blur them.

const results = new ResultsFile('overload');
const spec = (scenario: string, title: string, asserted: string): ResultSpec => ({
  suite: 'overload',
  scenario,
  title,
  backend: 'memory',
  asserted,
});

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

  reliabilityTest(
    results,
    spec(
      'slow-start',
      'a server joins (slow start, 4 s window)',
      'a server that joins gets under 20 % of 300 calls right after joining (a third is its full share), and more than 28 % once the window has passed',
    ),
    async (details) => {
      const { client, service } = await setup(2, { slowStart: { window: 4, minWeightPercent: 10 } });
      const stub = client.getService<GreeterStub>('Greeter');
      await callsPerServer(stub, 20);
      registrations.push(
        await registry.register(createServiceInstance({ service, id: 'o3', address: servers[2].address }), TIMING),
      );
      await waitFor(() => client.snapshot().size === 3, { what: 'the third server to be served' });
      const early = await callsPerServer(stub, 300);
      const earlyShare = (early.get('o3') ?? 0) / 300;
      details.newcomerShareJustAfterJoining = Math.round(earlyShare * 1000) / 10 + ' %';
      // Full share would be a third; just after joining it gets far less.
      expect(earlyShare).toBeLessThan(0.2);
      await waitFor(async () => ((await callsPerServer(stub, 300)).get('o3') ?? 0) / 300 > 0.28, {
        what: 'the newcomer to reach its full share once the window has passed',
        timeoutMs: 15_000,
      });
    },
  );

  reliabilityTest(
    results,
    spec(
      'rejecting-server',
      'a server rejects every call (RESOURCE_EXHAUSTED)',
      'with p2c_ewma, of 300 calls over 3 servers the rejecting one gets fewer than 40 (100 is an even share), and it stays healthy and served (overload is not ejection)',
    ),
    async (details) => {
      const { client } = await setup(3, { loadBalance: 'p2c_ewma', retry: false, throttling: { enabled: false } });
      await servers[0].set({ rejectShare: 1 });
      let refused = 0;
      for (let i = 0; i < 300; i++) {
        await client.call(({ channel }) => helloOver(channel)).catch(() => refused++);
      }
      const busy = (await servers[0].stats()).calls;
      details.callsToRejectingServer = `${busy} of 300`;
      // An even share would be 100 of 300; the penalty keeps it far below.
      expect(busy).toBeLessThan(40);
      expect(refused).toBe(busy);
      const report = client.describeEndpoints().find((r) => r.endpoint.address === servers[0].address)!;
      expect(report.health).toBe('healthy');
      expect(report.served).toBe(true);
    },
  );

  reliabilityTest(
    results,
    spec(
      'at-limit',
      'servers at their limit (max_requests 4, 20 calls at once, 300 ms each)',
      'exactly 4 calls reach the servers and succeed, 16 fail at once with OverloadedError, and no server ever has more than 4 in flight',
    ),
    async (details) => {
      const { client } = await setup(2, { circuitBreaker: { maxRequests: 4 }, retry: false });
      await Promise.all(servers.slice(0, 2).map((s) => s.set({ delayMs: 300, reset: true })));
      const outcomes = await Promise.allSettled(
        Array.from({ length: 20 }, () => client.call(({ channel }) => helloOver(channel))),
      );
      const refused = outcomes.filter((r) => r.status === 'rejected' && r.reason instanceof OverloadedError);
      details.succeeded = outcomes.filter((r) => r.status === 'fulfilled').length;
      details.refusedWithOverloadedError = refused.length;
      expect(outcomes.filter((r) => r.status === 'fulfilled')).toHaveLength(4);
      expect(refused).toHaveLength(16);
      const seen = await Promise.all(servers.slice(0, 2).map((s) => s.stats()));
      expect(seen.reduce((sum, s) => sum + s.calls, 0)).toBe(4);
      details.mostInFlightAtOneServer = Math.max(...seen.map((s) => s.maxInFlight));
      expect(Math.max(...seen.map((s) => s.maxInFlight))).toBeLessThanOrEqual(4);
    },
  );

  reliabilityTest(
    results,
    spec(
      'throttling',
      'a service rejects 90 % of calls (adaptive throttling)',
      'of 600 calls more than 150 are shed by the client, and the server sees exactly the calls that were not shed',
    ),
    async (details) => {
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
      details.shedByClient = shed;
      details.reachedServer = seen.calls;
      expect(shed).toBeGreaterThan(150);
      expect(seen.calls).toBe(600 - shed);
      expect(seen.rejected).toBe(refusedByServer);
    },
  );

  reliabilityTest(
    results,
    spec(
      'slow-server',
      'one server 1 s slower (hedging after 30 ms)',
      'a call not marked idempotent is sent once and waits for the slow server; every idempotent call that starts there is hedged once to the fast server, which answers all of them',
    ),
    async (details) => {
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
      details.hedgedCallsToSlowServer = seen[0].calls - 1;
      details.hedgedCallsToFastServer = seen[1].calls - 1;
      expect(seen[0].calls - 1).toBe(2);
      expect(seen[1].calls - 1).toBe(4);
    },
  );

  reliabilityTest(
    results,
    spec(
      'slow-server-grpc-hedging',
      'one server 1 s slower, grpc-js stubs on discovery:/// (gRPC hedging policy)',
      'with hedging.grpc_methods naming the method, six calls in a row are all answered by the fast server',
    ),
    async (details) => {
      const { client } = await setup(2, {
        hedging: { delay: 0.03, grpcMethods: ['greeter.Greeter/SayHello'] },
      });
      await servers[0].set({ delayMs: 1_000, reset: true });
      const stub = client.getService<GreeterStub>('Greeter');
      // One call at a time (grpc-js picks each hedged attempt on its own, so under concurrency a hedge may
      // land on the slow server again): every call that starts on o1 is hedged to o2, which answers it.
      const replies: HelloReply[] = [];
      for (let i = 0; i < 6; i++) replies.push(await sayHello(stub, 'x'));
      details.answeredByFastServer = `${replies.filter((r) => r.instance === 'o2').length} of 6`;
      expect(replies.map((r) => r.instance)).toEqual(Array(6).fill('o2'));
      expect((await servers[0].stats()).calls).toBeGreaterThanOrEqual(3);
    },
  );

  reliabilityTest(
    results,
    spec(
      'zone-lost',
      'the caller’s zone degrades, then is lost (priority failover)',
      'all 200 calls stay in the caller’s zone while it is healthy; with half of it ejected its share of 1,000 calls is 62–78 % (70 % expected); with all of it failing, every call goes to the other zone',
    ),
    async (details) => {
      const { client } = await setup(
        4,
        { zone: 'a', retry: false, throttling: { enabled: false } },
        {
          outlierDetection: { consecutiveFailures: 1, baseEjectionTime: 60, maxEjectionPercent: 50 },
          panicThreshold: 0,
        },
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
      details.zoneShareWithHalfEjected = Math.round(share * 1000) / 10 + ' %';
      expect(share).toBeGreaterThan(0.62);
      expect(share).toBeLessThan(0.78);
      // The whole zone fails: every call goes to the other zone.
      await servers[1].set({ rejectShare: 1, rejectCode: grpc.status.UNAVAILABLE });
      await waitFor(
        async () => {
          await client.call(({ channel }) => helloOver(channel)).catch(() => undefined);
          return client.describeEndpoints().filter((r) => r.health === 'ejected').length === 2;
        },
        { what: 'both zone-a servers to be ejected' },
      );
      const lost = await inZone(200);
      details.zoneShareWithZoneLost = Math.round(lost * 1000) / 10 + ' %';
      expect(lost).toBe(0);
    },
  );
});
