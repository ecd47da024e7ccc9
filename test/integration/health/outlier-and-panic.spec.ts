import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import {
  Discovery,
  NoEndpointsError,
  type DiscoveryEvent,
  type DiscoveryOptions,
  type Registration,
  type ServiceClient,
} from '../../../lib/index.js';
import { MemoryRegistry, MemoryStore } from '../../../lib/testing.js';
import {
  GREETER_PROTO,
  greeterPackage,
  sayHello,
  startGreeterProcess,
  type GreeterStub,
  type HelloReply,
} from '../../support/grpc/greeter.js';
import type { PeerProcess } from '../../support/peers/peer-process.js';
import { waitFor } from '../../support/wait-for.js';
import { HealthGreeterServer } from './support/health-servers.js';
import { recordingLogger, register, serves } from './support/health-kit.js';

/** One unary SayHello over a per-endpoint channel (what call() hands out). */
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

describe('passive outlier detection and panic mode', () => {
  const discoveries: Discovery[] = [];
  const registrations: Registration[] = [];
  const servers: HealthGreeterServer[] = [];
  const peers: PeerProcess[] = [];
  let count = 0;

  async function setup(options: Partial<DiscoveryOptions>) {
    const name = `health-outlier-${++count}`;
    MemoryStore.reset(name);
    const registry = new MemoryRegistry(MemoryStore.named(name));
    const logger = recordingLogger();
    const discovery = await Discovery.create(
      { backend: 'memory', loadBalance: 'round_robin', ...options },
      { registry, logger },
    );
    discoveries.push(discovery.serveGrpcTargets());
    const events: DiscoveryEvent[] = [];
    discovery.events$.subscribe((e) => events.push(e));
    return { discovery, registry, logger, events };
  }

  async function startServers(
    registry: MemoryRegistry,
    service: string,
    ids: string[],
  ): Promise<HealthGreeterServer[]> {
    const started = await Promise.all(ids.map((id) => new HealthGreeterServer(id).start()));
    servers.push(...started);
    for (const s of started) registrations.push(await register(registry, service, s.id, s.address));
    return started;
  }

  afterEach(async () => {
    await Promise.all(discoveries.splice(0).map((d) => d.close()));
    await Promise.all(registrations.splice(0).map((r) => r.deregister()));
    servers.splice(0).forEach((s) => s.kill());
    await Promise.all(peers.splice(0).map((p) => p.stop()));
  });

  it('without active checks, a SIGKILLed server is ejected by its calls failing, and those calls are retried elsewhere', async () => {
    const { discovery, registry, events } = await setup({
      outlierDetection: { consecutiveFailures: 3, baseEjectionTime: 30 },
    });
    const procs = await Promise.all(['k1', 'k2', 'k3'].map((id) => startGreeterProcess(id, { delayMs: 2 })));
    peers.push(...procs.map((p) => p.peer));
    for (const [i, p] of procs.entries())
      registrations.push(await register(registry, 'killed', `k${i + 1}`, p.address));
    const client: ServiceClient = discovery.client({
      name: 'killed',
      retry: { maxAttempts: 3, budget: { maxTokens: 100, tokenRatio: 1 } },
    });
    await client.ready({ minEndpoints: 3 });
    const failures: string[] = [];
    let done = 0;
    const victim = procs[0];
    const worker = async () => {
      for (let i = 0; i < 40; i++) {
        if (done === 40) victim.peer.signal('SIGKILL');
        await client
          .call(({ channel, deadline }) => helloOver(channel, deadline), { timeoutMs: 5_000 })
          .catch((e: Error) => failures.push(e.message));
        done++;
      }
    };
    await Promise.all(Array.from({ length: 4 }, worker));
    await victim.peer.waitForExit();
    expect(failures).toEqual([]);
    expect(events).toContainEqual(
      expect.objectContaining({
        type: 'ejected',
        service: 'killed',
        address: victim.address,
        consecutiveFailures: 3,
        durationMs: 30_000,
      }),
    );
    // The registry still lists it (it never deregistered); the client no longer serves it.
    expect(client.healthStatus).toMatchObject({ total: 3, ejected: 1, served: 2, panic: false });
    expect(serves(client, [procs[1].address, procs[2].address])).toBe(true);
  });

  it('an application error (INVALID_ARGUMENT) ejects nothing, through call() or the balanced channel', async () => {
    const { discovery, registry, events } = await setup({ outlierDetection: { consecutiveFailures: 3 } });
    const [bad] = await startServers(registry, 'app-errors', ['bad', 'ok1', 'ok2']);
    bad.failWith = grpc.status.INVALID_ARGUMENT;
    const client = discovery.client({ name: 'app-errors', proto: { path: GREETER_PROTO } });
    await client.ready({ minEndpoints: 3 });
    const codes: number[] = [];
    for (let i = 0; i < 30; i++) {
      await client.call(({ channel }) => helloOver(channel)).catch((e: grpc.ServiceError) => codes.push(e.code));
    }
    const stub = client.getService<GreeterStub>('Greeter');
    for (let i = 0; i < 30; i++) await sayHello(stub, 'x').catch((e: grpc.ServiceError) => codes.push(e.code));
    expect(bad.calls).toBeGreaterThanOrEqual(6);
    expect(new Set(codes)).toEqual(new Set([grpc.status.INVALID_ARGUMENT]));
    expect(codes.length).toBe(bad.calls);
    expect(events.filter((e) => e.type === 'ejected')).toEqual([]);
    expect(client.healthStatus).toMatchObject({ total: 3, ejected: 0, served: 3 });
  });

  it('UNAVAILABLE answers seen by the grpc LB policy eject the endpoint from the discovery:/// channel', async () => {
    const { discovery, registry, events } = await setup({ outlierDetection: { consecutiveFailures: 3 } });
    const [sick, ...healthy] = await startServers(registry, 'lb-outlier', ['sick', 'fine1', 'fine2']);
    sick.failWith = grpc.status.UNAVAILABLE;
    const client = discovery.client({
      name: 'lb-outlier',
      proto: { path: GREETER_PROTO },
      retry: { maxAttempts: 3, budget: { maxTokens: 100, tokenRatio: 1 } },
    });
    await client.ready({ minEndpoints: 3 });
    const stub = client.getService<GreeterStub>('Greeter');
    // gRPC's retry policy moves each failed attempt to another endpoint: every call succeeds.
    await waitFor(
      async () => {
        await sayHello(stub, 'x');
        return events.some((e) => e.type === 'ejected' && e.address === sick.address);
      },
      { what: 'the endpoint answering UNAVAILABLE being ejected' },
    );
    const callsAtEjection = sick.calls;
    for (let i = 0; i < 15; i++) expect((await sayHello(stub, 'x')).instance).not.toBe('sick');
    expect(sick.calls).toBe(callsAtEjection);
    expect(
      serves(
        client,
        healthy.map((s) => s.address),
      ),
    ).toBe(true);
  });

  it('never ejects more than max_ejection_percent of the endpoints (50 %: one of three)', async () => {
    const { discovery, registry, events } = await setup({
      outlierDetection: { consecutiveFailures: 2, maxEjectionPercent: 50 },
    });
    const all = await startServers(registry, 'all-failing', ['f1', 'f2', 'f3']);
    for (const s of all) s.failWith = grpc.status.UNAVAILABLE;
    const client = discovery.client('all-failing');
    await client.ready({ minEndpoints: 3 });
    for (let i = 0; i < 40; i++)
      await client.call(({ channel }) => helloOver(channel), { retry: false }).catch(() => undefined);
    const ejected = events.filter((e) => e.type === 'ejected');
    expect(ejected).toHaveLength(1);
    // The two left in service kept failing long enough to be ejected several times over.
    const kept = all.filter((s) => s.address !== (ejected[0] as { address: string }).address);
    expect(kept.every((s) => s.calls >= 6)).toBe(true);
    expect(client.healthStatus).toMatchObject({ total: 3, ejected: 1, served: 2 });
  });

  it('2 of 3 endpoints unhealthy with panic threshold 50 %: all 3 are used, with one log line and a panic event', async () => {
    const { discovery, registry, logger, events } = await setup({
      healthCheck: { enabled: true, interval: 0.2, timeout: 0.15, failureThreshold: 2, successThreshold: 1 },
      panicThreshold: 50,
    });
    const [a, b, c] = await startServers(registry, 'panicky', ['a', 'b', 'c']);
    const client = discovery.client({ name: 'panicky', proto: { path: GREETER_PROTO } });
    await client.ready({ minEndpoints: 3 });
    b.setServing(false);
    await waitFor(() => client.healthStatus.unhealthy === 1, { what: 'b failing its checks' });
    expect(serves(client, [a.address, c.address])).toBe(true);
    c.setServing(false);
    await waitFor(() => client.healthStatus.panic, { what: 'panic mode' });
    expect(client.healthStatus).toMatchObject({ total: 3, healthy: 1, unhealthy: 2, served: 3, panic: true });
    expect(serves(client, [a.address, b.address, c.address])).toBe(true);
    const stub = client.getService<GreeterStub>('Greeter');
    const seen = new Set<string>();
    await waitFor(
      async () => {
        seen.add((await sayHello(stub, 'x')).instance);
        return seen.size === 3;
      },
      { what: 'calls reaching all three endpoints' },
    );
    // A few more checks fail while in panic: still one line, one event.
    const checks = c.checks;
    await waitFor(() => c.checks >= checks + 3, { what: 'more failing checks' });
    expect(logger.lines.filter((l) => /panic threshold 50%/.test(l))).toHaveLength(1);
    expect(events.filter((e) => e.type === 'panic')).toEqual([
      expect.objectContaining({ service: 'panicky', active: true, healthy: 1, total: 3 }),
    ]);
    c.setServing(true);
    await waitFor(() => !client.healthStatus.panic, { what: 'panic mode over' });
    expect(serves(client, [a.address, c.address])).toBe(true);
    expect(events.filter((e) => e.type === 'panic').map((e) => (e as { active: boolean }).active)).toEqual([
      true,
      false,
    ]);
  });

  it('with panic_threshold 0 only healthy endpoints are served; with none healthy the set is ok-but-empty and pick() says why', async () => {
    const { discovery, registry, events } = await setup({
      healthCheck: { enabled: true, interval: 0.2, timeout: 0.15, failureThreshold: 2, successThreshold: 1 },
      panicThreshold: 0,
    });
    const [a, b, c] = await startServers(registry, 'no-panic', ['a', 'b', 'c']);
    const client = discovery.client('no-panic');
    await client.ready({ minEndpoints: 3 });
    b.setServing(false);
    c.setServing(false);
    await waitFor(() => client.healthStatus.unhealthy === 2, { what: 'b and c failing' });
    expect(serves(client, [a.address])).toBe(true);
    const revisionWithOne = client.snapshot().revision;
    a.setServing(false);
    await waitFor(() => client.snapshot().size === 0, { what: 'every endpoint out' });
    const set = client.snapshot();
    expect(set).toMatchObject({ state: 'ok', size: 0, resolved: true });
    expect(set.revision).toBeGreaterThan(revisionWithOne);
    expect(() => client.pick()).toThrow(NoEndpointsError);
    expect(() => client.pick()).toThrow(/filtered out or is unhealthy/);
    expect(events.filter((e) => e.type === 'panic')).toEqual([]);
    a.setServing(true);
    await waitFor(() => client.snapshot().size === 1, { what: 'a back' });
    expect(client.pick().address).toBe(a.address);
  });
});
