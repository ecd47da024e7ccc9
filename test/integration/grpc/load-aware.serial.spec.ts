import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServiceInstance, Discovery, type Registration } from '../../../lib/index.js';
import { MemoryRegistry, MemoryStore } from '../../../lib/testing.js';
import { GREETER_PROTO, sayHello, startGreeterProcess, type GreeterStub } from '../../support/grpc/greeter.js';

const TIMING = { ttlMs: 90_000, heartbeatMs: 30_000 };

// Runs in the 'serial' project (alone, after the rest): it measures how
// traffic spreads by latency, which other suites' CPU load would blur.
describe('load-aware strategies over real servers', () => {
  let registry: MemoryRegistry;
  let discovery: Discovery;
  const registrations: Registration[] = [];
  let service = 0;

  async function serve(name: string, id: string, address: string): Promise<void> {
    registrations.push(await registry.register(createServiceInstance({ service: name, id, address }), TIMING));
  }

  beforeAll(async () => {
    MemoryStore.reset('load-aware');
    registry = new MemoryRegistry(MemoryStore.named('load-aware'));
    discovery = (
      await Discovery.create({ backend: 'memory', loadBalance: 'round_robin' }, { registry })
    ).serveGrpcTargets();
  });

  afterAll(async () => {
    await Promise.all(registrations.splice(0).map((r) => r.deregister()));
    await discovery.close();
  });

  it.each(['least_connections', 'p2c_ewma'])(
    '%s shifts traffic away from a server that answers 20 ms slower',
    async (strategy) => {
      const name = `svc${++service}`;
      // Servers in their own processes, so the client's event loop measures them, not itself.
      const procs = await Promise.all([
        startGreeterProcess('fast1'),
        startGreeterProcess('fast2'),
        startGreeterProcess('slow', { delayMs: 20 }),
      ]);
      try {
        for (const [i, id] of ['fast1', 'fast2', 'slow'].entries())
          await serve(name, `${strategy}-${id}`, procs[i].address);
        const client = discovery.client({ name, loadBalance: strategy, proto: { path: GREETER_PROTO } });
        await client.ready({ minEndpoints: 3 });
        const stub = client.getService<GreeterStub>('Greeter');
        // Warm up: connections to all three come up (a latency-aware strategy may rightly skip the slow one already).
        for (let i = 0; i < 30; i++) await sayHello(stub, 'x');
        const served = new Map<string, number>();
        const worker = async () => {
          for (let i = 0; i < 150; i++) {
            const { instance } = await sayHello(stub, 'x');
            served.set(instance, (served.get(instance) ?? 0) + 1);
          }
        };
        // 4 concurrent callers: calls overlap, yet the client's own event loop
        // adds little queueing, so the fast servers' latency stays theirs.
        await Promise.all(Array.from({ length: 4 }, worker));
        const total = [...served.values()].reduce((a, b) => a + b, 0);
        expect(total).toBe(600);
        expect((served.get('slow') ?? 0) / total).toBeLessThan(0.2);
      } finally {
        await Promise.all(procs.map((p) => p.peer.stop()));
      }
    },
  );
});
