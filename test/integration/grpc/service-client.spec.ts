import * as grpc from '@grpc/grpc-js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createServiceInstance, Discovery, type Registration, type ServiceClient } from '../../../lib/index.js';
import { MemoryRegistry, MemoryStore } from '../../../lib/testing.js';
import {
  GREETER_PROTO,
  GreeterServer,
  greeterPackage,
  sayHello,
  startGreeterProcess,
  type GreeterStub,
  type HelloReply,
} from '../../support/grpc/greeter.js';
import { waitFor } from '../../support/wait-for.js';

const TIMING = { ttlMs: 90_000, heartbeatMs: 30_000 };

/** One unary SayHello over a given channel (what users do with getChannel/call). */
function helloOver(channel: grpc.Channel, deadline?: Date): Promise<HelloReply> {
  const stub = new greeterPackage.greeter.Greeter('unused', grpc.credentials.createInsecure(), {
    channelOverride: channel,
  }) as unknown as GreeterStub;
  return new Promise((resolve, reject) =>
    stub.SayHello({ name: 'x' }, new grpc.Metadata(), { deadline: deadline ?? Date.now() + 5_000 }, (e, r) =>
      e ? reject(e) : resolve(r!),
    ),
  );
}

describe('ServiceClient against real grpc servers', () => {
  let registry: MemoryRegistry;
  let discovery: Discovery;
  const servers: GreeterServer[] = [];
  const registrations: Registration[] = [];
  let service = 0;

  async function serve(name: string, id: string, address: string): Promise<void> {
    registrations.push(await registry.register(createServiceInstance({ service: name, id, address }), TIMING));
  }

  async function addServer(name: string, id: string, options = {}): Promise<GreeterServer> {
    const server = await new GreeterServer(id, options).start();
    servers.push(server);
    await serve(name, id, server.address);
    return server;
  }

  beforeAll(async () => {
    MemoryStore.reset('service-client');
    registry = new MemoryRegistry(MemoryStore.named('service-client'));
    discovery = (
      await Discovery.create({ backend: 'memory', loadBalance: 'round_robin' }, { registry })
    ).serveGrpcTargets();
  });

  afterEach(async () => {
    await Promise.all(registrations.splice(0).map((r) => r.deregister()));
    servers.splice(0).forEach((s) => s.kill());
  });

  afterAll(() => discovery.close());

  it('getService builds a typed stub over one balanced discovery:/// channel', async () => {
    const name = `svc${++service}`;
    for (const id of ['s1', 's2', 's3']) await addServer(name, id);
    const client = discovery.client({ name, proto: { path: GREETER_PROTO } });
    await client.ready({ minEndpoints: 3 });
    const stub = client.getService<GreeterStub>('Greeter');
    expect(client.getService('greeter.Greeter')).toBe(stub);
    await waitFor(
      async () =>
        new Set(await Promise.all(Array.from({ length: 6 }, () => sayHello(stub, 'x').then((r) => r.instance))))
          .size === 3,
      {
        what: 'stub calls reaching all servers',
      },
    );
    expect(() => discovery.client(`svc${++service}`).getService('Greeter')).toThrow(/needs the 'proto' option/);
  });

  it('call() retries a SIGKILLed server away: zero failed calls under steady load', async () => {
    const name = `svc${++service}`;
    const procs = await Promise.all(['c1', 'c2', 'c3'].map((id) => startGreeterProcess(id, { delayMs: 5 })));
    try {
      for (const [i, p] of procs.entries()) await serve(name, `c${i + 1}`, p.address);
      const client: ServiceClient = discovery.client({
        name,
        retry: { maxAttempts: 3, budget: { maxTokens: 100, tokenRatio: 1 } },
      });
      await client.ready({ minEndpoints: 3 });
      const failures: string[] = [];
      const served = new Map<string, number>();
      let done = 0;
      const victim = procs[0].peer;
      const worker = async () => {
        for (let i = 0; i < 50; i++) {
          if (done === 60) victim.signal('SIGKILL');
          await client
            .call(({ channel, deadline }) => helloOver(channel, deadline), { timeoutMs: 5_000 })
            .then((r) => served.set(r.instance, (served.get(r.instance) ?? 0) + 1))
            .catch((e: Error) => failures.push(e.message));
          done++;
        }
      };
      await Promise.all(Array.from({ length: 4 }, worker));
      await victim.waitForExit();
      expect(failures).toEqual([]);
      expect(done).toBe(200);
      expect(served.get('c1')).toBeGreaterThan(0);
    } finally {
      await Promise.all(procs.map((p) => p.peer.stop()));
    }
  });

  it('the retry budget caps extra attempts when every call fails UNAVAILABLE', async () => {
    const name = `svc${++service}`;
    const broken = await addServer(name, 'broken', { failWith: grpc.status.UNAVAILABLE });
    const client = discovery.client({
      name,
      retry: { maxAttempts: 3, initialBackoffMs: 1, maxBackoffMs: 2, budget: { maxTokens: 10, tokenRatio: 0.1 } },
    });
    await client.ready();
    let failed = 0;
    for (let i = 0; i < 50; i++) {
      await client
        .call(({ channel }) => helloOver(channel))
        .catch((e: grpc.ServiceError) => {
          expect(e.code).toBe(grpc.status.UNAVAILABLE);
          failed++;
        });
    }
    expect(failed).toBe(50);
    // Without a budget 50 calls would make 150 attempts; the budget allows retries only while tokens > maxTokens / 2.
    expect(broken.calls).toBeGreaterThan(50);
    expect(broken.calls - 50).toBeLessThanOrEqual(5);
  });

  it('call() does not retry application errors', async () => {
    const name = `svc${++service}`;
    const server = await addServer(name, 'invalid', { failWith: grpc.status.INVALID_ARGUMENT });
    const client = discovery.client(name);
    await client.ready();
    await expect(client.call(({ channel }) => helloOver(channel))).rejects.toMatchObject({
      code: grpc.status.INVALID_ARGUMENT,
    });
    expect(server.calls).toBe(1);
  });

  it('pick() and ready() explain why there is nothing to call', async () => {
    const client = discovery.client({ name: `svc${++service}`, readyTimeoutMs: 100 });
    await waitFor(() => client.snapshot().resolved, { what: 'first answer' });
    expect(() => client.pick()).toThrow(/the registry reports zero instances/);
    await expect(client.ready({ timeoutMs: 50 })).rejects.toThrow(/zero instances.*waited 50 ms/);
  });

  it('a channel picked just before its endpoint leaves still carries calls while the server drains', async () => {
    const name = `svc${++service}`;
    const server = await addServer(name, 'leaving');
    const client = discovery.client(name);
    await client.ready();
    const channel = await client.getChannel();
    await registrations.splice(0).pop()!.deregister();
    await waitFor(() => client.snapshot().state === 'empty', { what: 'the endpoint to leave' });
    // The server deregistered first and still accepts: the call must not fail on our side.
    await expect(helloOver(channel)).resolves.toMatchObject({ instance: 'leaving' });
    expect(server.calls).toBe(1);
  });

  it('1,000 concurrent calls share one client without locking', async () => {
    const name = `svc${++service}`;
    for (const id of ['m1', 'm2']) await addServer(name, id);
    const client = discovery.client(name);
    await client.ready({ minEndpoints: 2 });
    const replies = await Promise.all(
      Array.from({ length: 1_000 }, () => client.call(({ channel }) => helloOver(channel))),
    );
    expect(replies).toHaveLength(1_000);
    expect(servers.reduce((n, s) => n + s.calls, 0)).toBe(1_000);
    expect(client.loads.totalInFlight()).toBe(0);
  });
});
