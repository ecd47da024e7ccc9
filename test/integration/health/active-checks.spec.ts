import { afterEach, describe, expect, it } from 'vitest';
import { Discovery, type DiscoveryEvent, type EndpointSet, type Registration } from '../../../lib/index.js';
import { healthCheckerPool } from '../../../lib/health/endpoint-health-checker.js';
import { MemoryRegistry, MemoryStore } from '../../../lib/testing.js';
import { GREETER_PROTO, sayHello, type GreeterStub } from '../../support/grpc/greeter.js';
import { waitFor } from '../../support/wait-for.js';
import { HealthGreeterServer, HttpHealthServer } from './support/health-servers.js';
import { addressesOf, recordingLogger, register, serves } from './support/health-kit.js';

// Small intervals: 250 ms between checks, 200 ms timeout (roomy enough that a busy machine does not fail a check), the seed's thresholds (3 / 2).
const CHECKS = { enabled: true, interval: 0.25, timeout: 0.2, failureThreshold: 3, successThreshold: 2 };

describe('active health checks', () => {
  const discoveries: Discovery[] = [];
  const registrations: Registration[] = [];
  const grpcServers: HealthGreeterServer[] = [];
  const httpServers: HttpHealthServer[] = [];
  let storeCount = 0;

  async function setup(
    healthCheck: Record<string, unknown>,
  ): Promise<{ discovery: Discovery; registry: MemoryRegistry }> {
    const name = `health-active-${++storeCount}`;
    MemoryStore.reset(name);
    const registry = new MemoryRegistry(MemoryStore.named(name));
    const discovery = await Discovery.create(
      { backend: 'memory', loadBalance: 'round_robin', healthCheck, outlierDetection: { enabled: false } },
      { registry, logger: recordingLogger() },
    );
    discoveries.push(discovery.serveGrpcTargets());
    return { discovery, registry };
  }

  afterEach(async () => {
    await Promise.all(discoveries.splice(0).map((d) => d.close()));
    await Promise.all(registrations.splice(0).map((r) => r.deregister()));
    grpcServers.splice(0).forEach((s) => s.kill());
    await Promise.all(httpServers.splice(0).map((s) => s.stop()));
  });

  it('a server whose grpc.health.v1 turns NOT_SERVING leaves the set after exactly 3 failed checks and returns after 2 passes', async () => {
    const { discovery, registry } = await setup(CHECKS);
    const servers = await Promise.all(['a', 'b', 'c'].map((id) => new HealthGreeterServer(id).start()));
    grpcServers.push(...servers);
    for (const s of servers) registrations.push(await register(registry, 'greeter', s.id, s.address));
    const client = discovery.client({ name: 'greeter', proto: { path: GREETER_PROTO } });
    await client.ready({ minEndpoints: 3 });
    const stub = client.getService<GreeterStub>('Greeter');
    await waitFor(
      async () =>
        new Set(await Promise.all(Array.from({ length: 9 }, () => sayHello(stub, 'x').then((r) => r.instance))))
          .size === 3,
      {
        what: 'calls reaching all three servers',
      },
    );
    const b = servers[1];
    await waitFor(() => servers.every((s) => s.checks >= 2), { what: 'checks running' });

    const emissions: EndpointSet[] = [];
    let checksWhenLeft: number | undefined;
    let checksWhenBack: number | undefined;
    const subscription = client.endpoints$.subscribe((set) => {
      emissions.push(set);
      const hasB = set.endpoints.some((e) => e.address === b.address);
      if (!hasB) checksWhenLeft ??= b.checks;
      else if (checksWhenLeft !== undefined) checksWhenBack ??= b.checks;
    });
    try {
      // Checks are sequential and b counts each one before answering, so the
      // count seen when b leaves tells exactly how many failures it took.
      const atFlip = b.checks;
      b.setServing(false);
      await waitFor(() => checksWhenLeft !== undefined, { what: 'b leaving the served set' });
      expect(checksWhenLeft).toBe(atFlip + 3);
      expect(addressesOf(client.snapshot())).toEqual([servers[0].address, servers[2].address].sort());

      // The balanced discovery:/// channel follows: no call reaches b while it is out.
      const callsBefore = b.calls;
      for (let i = 0; i < 12; i++) await sayHello(stub, 'x');
      expect(b.calls).toBe(callsBefore);

      // Checks keep failing without rebuilding anything.
      const failing = b.checks;
      await waitFor(() => b.checks >= failing + 3, { what: 'more failing checks' });
      expect(emissions).toHaveLength(2);

      const atRecovery = b.checks;
      b.setServing(true);
      await waitFor(() => checksWhenBack !== undefined, { what: 'b returning' });
      expect(checksWhenBack).toBe(atRecovery + 2);
      // Replay, leave, return: the picker was rebuilt on the two state changes only.
      expect(emissions).toHaveLength(3);
      expect(emissions[2].revision).toBeGreaterThan(emissions[1].revision);
      expect(emissions[1].revision).toBeGreaterThan(emissions[0].revision);
      await waitFor(async () => (await sayHello(stub, 'x')).instance === 'b', { what: 'calls reaching b again' });
    } finally {
      subscription.unsubscribe();
    }
  });

  it('HTTP checks (GET path) take an endpoint out after 3 failures and back after 2 passes', async () => {
    const { discovery, registry } = await setup({ ...CHECKS, kind: 'http', path: '/healthz' });
    const servers = await Promise.all(['h1', 'h2', 'h3'].map(() => new HttpHealthServer('/healthz').start()));
    httpServers.push(...servers);
    for (const [i, s] of servers.entries()) registrations.push(await register(registry, 'web', `h${i + 1}`, s.address));
    const client = discovery.client('web');
    await client.ready({ minEndpoints: 3 });
    const target = servers[0];
    await waitFor(() => servers.every((s) => s.requests >= 2), { what: 'HTTP checks running' });
    let requestsWhenLeft: number | undefined;
    let requestsWhenBack: number | undefined;
    const subscription = client.endpoints$.subscribe((set) => {
      const has = set.endpoints.some((e) => e.address === target.address);
      if (!has) requestsWhenLeft ??= target.requests;
      else if (requestsWhenLeft !== undefined) requestsWhenBack ??= target.requests;
    });
    try {
      const atFlip = target.requests;
      target.status = 503;
      await waitFor(() => requestsWhenLeft !== undefined, { what: 'the failing HTTP endpoint leaving' });
      expect(requestsWhenLeft).toBe(atFlip + 3);
      expect(serves(client, [servers[1].address, servers[2].address])).toBe(true);
      const atRecovery = target.requests;
      target.status = 200;
      await waitFor(() => requestsWhenBack !== undefined, { what: 'the HTTP endpoint returning' });
      expect(requestsWhenBack).toBe(atRecovery + 2);
      expect(client.snapshot().size).toBe(3);
    } finally {
      subscription.unsubscribe();
    }
  });

  it('a stopped HTTP server fails its checks (connection refused) and leaves the set', async () => {
    const { discovery, registry } = await setup({ ...CHECKS, kind: 'http', path: '/healthz' });
    const servers = await Promise.all(['1', '2', '3'].map(() => new HttpHealthServer('/healthz').start()));
    httpServers.push(...servers);
    for (const [i, s] of servers.entries())
      registrations.push(await register(registry, 'web2', `w${i + 1}`, s.address));
    const client = discovery.client('web2');
    const checks: DiscoveryEvent[] = [];
    const subscription = client.events$.subscribe(
      (e) => e.type === 'health-check' && e.address === servers[2].address && !e.ok && checks.push(e),
    );
    await client.ready({ minEndpoints: 3 });
    await servers[2].stop();
    await waitFor(() => serves(client, [servers[0].address, servers[1].address]), {
      what: 'the stopped server leaving',
    });
    subscription.unsubscribe();
    expect(checks.length).toBeGreaterThanOrEqual(3);
    expect(checks[0]).toMatchObject({
      type: 'health-check',
      service: 'web2',
      kind: 'http',
      ok: false,
      detail: 'ECONNREFUSED',
    });
  });

  it('every client of an endpoint in the process shares one checker', async () => {
    const first = await setup(CHECKS);
    const second = await Discovery.create(
      { backend: 'memory', loadBalance: 'random', healthCheck: CHECKS, outlierDetection: { enabled: false } },
      { registry: first.registry, logger: recordingLogger() },
    );
    discoveries.push(second);
    const servers = await Promise.all(['s1', 's2'].map((id) => new HealthGreeterServer(id).start()));
    grpcServers.push(...servers);
    for (const s of servers) registrations.push(await register(first.registry, 'shared', s.id, s.address));
    const clients = [
      first.discovery.client('shared'),
      first.discovery.client({ name: 'shared', loadBalance: 'random' }),
      second.client('shared'),
      second.client({ name: 'shared', loadBalance: 'round_robin' }),
    ];
    expect(new Set(clients).size).toBe(4);
    await Promise.all(clients.map((c) => c.ready({ minEndpoints: 2 })));
    expect(healthCheckerPool.size).toBe(2);
    // One checker per address: in any window, at most one check per (jittered) interval reaches a server.
    const before = servers[0].checks;
    const started = Date.now();
    await waitFor(() => servers[0].checks >= before + 4, { what: 'four more checks' });
    const elapsed = Date.now() - started;
    const atMost = Math.floor(elapsed / (CHECKS.interval * 1000 * 0.9)) + 1;
    expect(servers[0].checks - before).toBeLessThanOrEqual(atMost);
    // The Discovery reports each check once, whatever the number of its clients.
    const seen: DiscoveryEvent[] = [];
    const subscription = first.discovery.events$.subscribe(
      (e) => e.type === 'health-check' && e.address === servers[0].address && seen.push(e),
    );
    const mark = servers[0].checks;
    await waitFor(() => servers[0].checks >= mark + 3, { what: 'three more checks' });
    await waitFor(() => seen.length >= 2, { what: 'check events' });
    subscription.unsubscribe();
    expect(seen.length).toBeLessThanOrEqual(servers[0].checks - mark + 1);
    // Releasing: closing every client stops the checkers.
    await first.discovery.close();
    await second.close();
    expect(healthCheckerPool.size).toBe(0);
  });
});
