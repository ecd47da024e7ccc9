import 'reflect-metadata';
import * as grpc from '@grpc/grpc-js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createServiceInstance, Discovery, type Registration } from '../../../lib/index.js';
import { MemoryRegistry, MemoryStore } from '../../../lib/testing.js';
import {
  GreeterServer,
  greeterPackage,
  sayHello,
  startGreeterProcess,
  type GreeterStub,
} from '../../support/grpc/greeter.js';
import { waitFor } from '../../support/wait-for.js';

const TIMING = { ttlMs: 90_000, heartbeatMs: 30_000 };

describe('discovery:/// target in plain grpc-js clients', () => {
  const servers: GreeterServer[] = [];
  const registrations: Registration[] = [];
  let store: MemoryStore;
  let registry: MemoryRegistry;
  let discovery: Discovery;
  const stubs: grpc.Client[] = [];

  async function addServer(id: string, options = {}): Promise<GreeterServer> {
    const server = await new GreeterServer(id, options).start();
    servers.push(server);
    registrations.push(
      await registry.register(createServiceInstance({ service: 'greeter', id, address: server.address }), TIMING),
    );
    return server;
  }

  function stub(target = 'discovery:///greeter'): GreeterStub {
    const s = new greeterPackage.greeter.Greeter(target, grpc.credentials.createInsecure()) as unknown as GreeterStub;
    stubs.push(s);
    return s;
  }

  beforeAll(async () => {
    MemoryStore.reset('grpc-target');
    store = MemoryStore.named('grpc-target');
    registry = new MemoryRegistry(store);
    discovery = (
      await Discovery.create({ backend: 'memory', loadBalance: 'round_robin' }, { registry, firstSetTimeoutMs: 1_000 })
    ).serveGrpcTargets();
  });

  afterEach(async () => {
    stubs.splice(0).forEach((s) => s.close());
    await Promise.all(registrations.splice(0).map((r) => r.deregister()));
    servers.splice(0).forEach((s) => s.kill());
  });

  afterAll(async () => {
    await discovery.close();
  });

  it('spreads calls over every registered server through one channel, and follows a server that joins', async () => {
    await addServer('g1');
    await addServer('g2');
    await addServer('g3');
    const client = stub();
    await waitFor(
      async () =>
        new Set(await Promise.all(Array.from({ length: 6 }, () => sayHello(client, 'x').then((r) => r.instance))))
          .size === 3,
      {
        what: 'all three servers answering',
      },
    );
    for (const s of servers) s.calls = 0;
    for (let i = 0; i < 300; i++) await sayHello(client, 'x');
    // Round robin over READY endpoints: exactly fair.
    expect(servers.map((s) => s.calls)).toEqual([100, 100, 100]);

    const late = await addServer('g4');
    await waitFor(async () => (await sayHello(client, 'x')).instance === 'g4', {
      what: 'the fourth server to receive calls',
    });
    expect(late.calls).toBeGreaterThan(0);
  });

  it('routes by the x-hash-key header with consistent_hash', async () => {
    await addServer('h1');
    await addServer('h2');
    await addServer('h3');
    // discovery:/// uses the options declared for the service, not whichever client happened to be made first.
    discovery.declareClients([
      { options: { name: 'greeter-hash', loadBalance: 'consistent_hash' }, source: 'this test' },
    ]);
    const hashing = discovery.client('greeter-hash');
    expect(hashing.strategy).toBe('consistent_hash');
    // A second service name registered on the same servers, balanced by hash.
    for (const s of servers)
      registrations.push(
        await registry.register(
          createServiceInstance({ service: 'greeter-hash', id: `${s.id}-h`, address: s.address }),
          TIMING,
        ),
      );
    await hashing.ready({ minEndpoints: 3 });
    const client = stub('discovery:///greeter-hash');
    // Keys stay on their endpoint from the first call, even while connections come up.
    for (const key of ['alice', 'bob', 'carol', 'dave']) {
      const first = await sayHello(client, 'x', { key });
      for (let i = 0; i < 10; i++) expect((await sayHello(client, 'x', { key })).instance).toBe(first.instance);
    }
  });

  it('fails calls UNAVAILABLE with the NoEndpoints reason when the service has zero instances', async () => {
    const client = stub('discovery:///nobody');
    const error = await sayHello(client, 'x', { deadlineMs: 3_000 }).catch((e: grpc.ServiceError) => e);
    expect((error as grpc.ServiceError).code).toBe(grpc.status.UNAVAILABLE);
    expect((error as grpc.ServiceError).details).toMatch(
      /No endpoints for service 'nobody': the registry reports zero instances/,
    );
  });

  it('retries on another endpoint when a server process is SIGKILLed under steady calls: zero failed calls', async () => {
    // Slow answers keep calls in flight on the victim when it dies.
    const procs = await Promise.all(['p1', 'p2', 'p3'].map((id) => startGreeterProcess(id, { delayMs: 10 })));
    try {
      for (const [i, p] of procs.entries()) {
        registrations.push(
          await registry.register(
            createServiceInstance({ service: 'greeter', id: `p${i + 1}`, address: p.address }),
            TIMING,
          ),
        );
      }
      const client = stub();
      await waitFor(
        async () =>
          new Set(await Promise.all(Array.from({ length: 6 }, () => sayHello(client, 'x').then((r) => r.instance))))
            .size === 3,
        {
          what: 'all three servers answering',
        },
      );
      const failures: string[] = [];
      const served = new Map<string, number>();
      let done = 0;
      const victim = procs[2].peer;
      const worker = async () => {
        for (let i = 0; i < 60; i++) {
          if (done === 80) victim.signal('SIGKILL');
          await sayHello(client, 'x')
            .then((r) => served.set(r.instance, (served.get(r.instance) ?? 0) + 1))
            .catch((e: grpc.ServiceError) => failures.push(`${e.code} ${e.details}`));
          done++;
        }
      };
      await Promise.all([worker(), worker(), worker(), worker()]);
      await victim.waitForExit();
      expect(failures).toEqual([]);
      expect(done).toBe(240);
      expect(served.get('p3')).toBeGreaterThan(0);
      expect((served.get('p1') ?? 0) + (served.get('p2') ?? 0)).toBeGreaterThan(120);
    } finally {
      await Promise.all(procs.map((p) => p.peer.stop()));
    }
  });
});
