import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { createServiceInstance, Discovery, type BalancingStrategy, type Registration } from '../../../lib/index.js';
import { MemoryRegistry, MemoryStore } from '../../../lib/testing.js';
import { GREETER_PROTO, GreeterServer, sayHello, type GreeterStub } from '../../support/grpc/greeter.js';

const TIMING = { ttlMs: 90_000, heartbeatMs: 30_000 };
const quiet = { log() {}, warn() {}, error() {} };

describe('a plain Node program (no Nest module)', () => {
  const servers: GreeterServer[] = [];
  const registrations: Registration[] = [];
  const discoveries: Discovery[] = [];

  afterEach(async () => {
    await Promise.all(registrations.splice(0).map((r) => r.deregister()));
    await Promise.all(discoveries.splice(0).map((d) => d.close()));
    servers.splice(0).forEach((s) => s.kill());
  });

  async function setup(store: string, extras = {}) {
    MemoryStore.reset(store);
    const registry = new MemoryRegistry(MemoryStore.named(store));
    const discovery = await Discovery.create(
      { backend: 'memory', loadBalance: 'round_robin' },
      { registry, logger: quiet, ...extras },
    );
    discoveries.push(discovery);
    return { registry, discovery };
  }

  async function addServer(registry: MemoryRegistry, service: string, id: string): Promise<GreeterServer> {
    const server = await new GreeterServer(id).start();
    servers.push(server);
    registrations.push(
      await registry.register(createServiceInstance({ service, id, address: server.address }), TIMING),
    );
    return server;
  }

  it('calls through getService() without serveGrpcTargets() first', async () => {
    const { registry, discovery } = await setup('plain-get-service');
    await addServer(registry, 'greeter', 'g1');
    await addServer(registry, 'greeter', 'g2');
    const client = discovery.client({ name: 'greeter', proto: { path: GREETER_PROTO } });
    await client.ready({ minEndpoints: 2 });
    const stub = client.getService<GreeterStub>('Greeter');
    const seen = new Set<string>();
    for (let i = 0; i < 6; i++) seen.add((await sayHello(stub, 'x')).instance);
    expect(seen).toEqual(new Set(['g1', 'g2']));
  });

  it('gives a client asking for other credentials, proto, retry, channel options or ready timeout a client of its own', async () => {
    const { discovery } = await setup('plain-cache-key');
    const base = discovery.client('orders');
    expect(discovery.client('orders')).toBe(base);
    expect(discovery.client({ name: 'orders' })).toBe(base);
    const tls = grpc.credentials.createSsl();
    const secure = discovery.client({ name: 'orders', credentials: tls });
    expect(secure).not.toBe(base);
    expect(discovery.client({ name: 'orders', credentials: tls })).toBe(secure);
    expect(discovery.client({ name: 'orders', credentials: grpc.credentials.createSsl() })).not.toBe(secure);
    const variants = [
      discovery.client({ name: 'orders', proto: { path: GREETER_PROTO } }),
      discovery.client({ name: 'orders', retry: { maxAttempts: 2 } }),
      discovery.client({ name: 'orders', retry: false }),
      discovery.client({ name: 'orders', channelOptions: { 'grpc.keepalive_time_ms': 10_000 } }),
      discovery.client({ name: 'orders', readyTimeoutMs: 500 }),
    ];
    expect(new Set([base, secure, ...variants]).size).toBe(7);
    // Equal plain options, written in another order, share a client.
    expect(discovery.client({ readyTimeoutMs: 500, name: 'orders' })).toBe(variants[4]);
  });

  it('resolves discovery:/// to the declared options whatever client was made first', async () => {
    const { registry, discovery } = await setup('plain-target', {
      clients: [{ name: 'greeter', loadBalance: 'random' }],
    });
    discovery.client({ name: 'greeter', loadBalance: 'round_robin' });
    await addServer(registry, 'greeter', 't1');
    expect(discovery.clientFor('greeter').strategy).toBe('random');
    expect(discovery.client('greeter').strategy).toBe('random');
  });

  it('keeps user strategies to the Discovery that was given them', async () => {
    const first = (port: number): BalancingStrategy => ({
      name: 'pinned',
      build: (endpoints) => {
        const chosen = endpoints.find((e) => e.port === port) ?? endpoints[0];
        return { pick: () => chosen };
      },
    });
    const store = 'plain-strategies';
    MemoryStore.reset(store);
    const registry = new MemoryRegistry(MemoryStore.named(store));
    registrations.push(
      await registry.register(createServiceInstance({ service: 's', id: 'a', address: '127.0.0.1:7001' }), TIMING),
      await registry.register(createServiceInstance({ service: 's', id: 'b', address: '127.0.0.1:7002' }), TIMING),
    );
    const one = await Discovery.create(
      { backend: 'memory', loadBalance: 'pinned' },
      { registry, strategies: [first(7001)], logger: quiet },
    );
    const two = await Discovery.create(
      { backend: 'memory', loadBalance: 'pinned' },
      { registry, strategies: [first(7002)], logger: quiet },
    );
    discoveries.push(one, two);
    const a = one.client('s');
    const b = two.client('s');
    await Promise.all([a.ready({ minEndpoints: 2 }), b.ready({ minEndpoints: 2 })]);
    expect(a.pick().port).toBe(7001);
    expect(b.pick().port).toBe(7002);
    await expect(
      Discovery.create({ backend: 'memory', loadBalance: 'pinned' }, { registry, logger: quiet }),
    ).rejects.toThrow(/loadBalance: one of/);
  });

  it('says how many endpoints are known, served and wanted when ready() times out', async () => {
    const { registry, discovery } = await setup('plain-ready');
    await addServer(registry, 'few', 'f1');
    const client = discovery.client('few');
    await client.ready();
    const error = await client.ready({ minEndpoints: 3, timeoutMs: 50 }).catch((e: Error) => e);
    expect((error as Error).message).toMatch(/fewer endpoints are served than wanted/);
    expect((error as Error).message).toMatch(/waited 50 ms for 3 served endpoint\(s\): 1 known, 1 served/);
    expect((error as Error).message).not.toMatch(/filtered out/);
  });
});
