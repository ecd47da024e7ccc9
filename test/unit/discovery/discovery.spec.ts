import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  ConfigurationError,
  createServiceInstance,
  Discovery,
  DiscoveryFactory,
  type BalancingStrategy,
  type Registration,
} from '../../../lib/index.js';
import { MemoryRegistry, MemoryStore } from '../../../lib/testing.js';
import { waitFor } from '../../support/wait-for.js';

const TIMING = { ttlMs: 90_000, heartbeatMs: 30_000 };
const quiet = { log() {}, warn() {}, error() {} };

describe('Discovery (framework-free)', () => {
  let store: MemoryStore;
  let registry: MemoryRegistry;
  const registrations: Registration[] = [];

  beforeEach(() => {
    MemoryStore.reset('facade');
    store = MemoryStore.named('facade');
    registry = new MemoryRegistry(store);
  });

  afterEach(async () => {
    await Promise.all(registrations.splice(0).map((r) => r.deregister()));
  });

  async function add(service: string, id: string, port: number, extra: Record<string, unknown> = {}): Promise<void> {
    registrations.push(
      await registry.register(createServiceInstance({ service, id, address: `127.0.0.1:${port}`, ...extra }), TIMING),
    );
  }

  it('uses a strategy the user registers, chosen per service, with the module default as fallback', async () => {
    const lowestPort: BalancingStrategy = {
      name: 'lowest_port',
      build: (endpoints) => {
        const best = [...endpoints].sort((a, b) => a.port - b.port)[0];
        return { pick: () => best };
      },
    };
    const discovery = await Discovery.create(
      { backend: 'memory', loadBalance: 'round_robin' },
      { registry, strategies: [lowestPort], logger: quiet },
    );
    await add('orders', 'o1', 7003);
    await add('orders', 'o2', 7001);
    await add('orders', 'o3', 7002);
    const custom = discovery.client({ name: 'orders', loadBalance: 'lowest_port' });
    const fallback = discovery.client('orders');
    await custom.ready({ minEndpoints: 3 });
    await fallback.ready({ minEndpoints: 3 });
    expect(custom.strategy).toBe('lowest_port');
    expect(fallback.strategy).toBe('round_robin');
    for (let i = 0; i < 5; i++) expect(custom.pick().port).toBe(7001);
    const seen = new Set(Array.from({ length: 6 }, () => fallback.pick().port));
    expect(seen).toEqual(new Set([7001, 7002, 7003]));
    await discovery.close();
  });

  it('rejects an unknown strategy with the valid names', async () => {
    await expect(
      Discovery.create({ backend: 'memory', loadBalance: 'fastest' }, { registry, logger: quiet }),
    ).rejects.toThrow(
      /loadBalance: one of round_robin, random, consistent_hash, least_connections, weighted_round_robin, weighted_random, p2c_ewma/,
    );
    const discovery = await Discovery.create({ backend: 'memory' }, { registry, logger: quiet });
    expect(() => discovery.client({ name: 'x', loadBalance: 'nope' })).toThrow(ConfigurationError);
    await discovery.close();
  });

  it('applies namespace, semver range, tag filters and zone preference from config and client options', async () => {
    const discovery = await Discovery.create(
      {
        backend: 'memory',
        namespace: { default: 'prod' },
        version: { format: 'semver', enableRouting: true },
        tagFilters: [{ key: 'env', value: 'prod' }],
      },
      { registry, logger: quiet },
    );
    await add('pay', 'p1', 7101, {
      namespace: 'prod',
      version: 'v1.2.0',
      tags: { env: 'prod' },
      metadata: { zone: 'a' },
    });
    await add('pay', 'p2', 7102, {
      namespace: 'prod',
      version: 'v1.9.0',
      tags: { env: 'prod' },
      metadata: { zone: 'b' },
    });
    await add('pay', 'p3', 7103, {
      namespace: 'prod',
      version: 'v2.0.0',
      tags: { env: 'prod' },
      metadata: { zone: 'a' },
    });
    await add('pay', 'p4', 7104, { namespace: 'dev', version: 'v1.5.0', tags: { env: 'prod' } });
    await add('pay', 'p5', 7105, { namespace: 'prod', version: 'v1.5.0', tags: { env: 'dev' } });
    const v1 = discovery.client({ name: 'pay', version: '^1.0.0' });
    await waitFor(() => v1.snapshot().size === 2, { what: 'v1 endpoints' });
    expect(v1.snapshot().endpoints.map((e) => e.instance.id)).toEqual(['p1', 'p2']);
    // Zone preference is priority failover: the whole healthy set is served, the caller's zone gets the calls.
    const zoneA = discovery.client({ name: 'pay', version: '^1.0.0', zone: 'a' });
    await waitFor(() => zoneA.snapshot().size === 2, { what: 'zone a client ready' });
    for (let i = 0; i < 10; i++) expect(zoneA.pick().instance.id).toBe('p1');
    const zoneC = discovery.client({ name: 'pay', version: '^1.0.0', zone: 'c' });
    await waitFor(() => zoneC.snapshot().size === 2, { what: 'zone c client ready' });
    const seen = new Set(Array.from({ length: 40 }, () => zoneC.pick().instance.id));
    expect(seen).toEqual(new Set(['p1', 'p2']));
    await discovery.close();
  });

  it('serves the last known set as stale during an outage, and tells empty from unreachable', async () => {
    const discovery = await Discovery.create({ backend: 'memory' }, { registry, logger: quiet });
    await add('inv', 'i1', 7201);
    const client = discovery.client('inv');
    await client.ready();
    const states: string[] = [];
    client.endpoints$.subscribe((s) => states.push(`${s.state}:${s.size}`));
    // Each change reaches the client at once, or on the next turn when the
    // turn's update slice is spent (a loaded machine): wait for each state.
    const reaches = (state: string) => waitFor(() => client.snapshot().state === state, { what: state });
    store.setReachable(false);
    await reaches('stale');
    expect(client.pick().port).toBe(7201);
    store.setReachable(true);
    await reaches('ok');
    await registrations.splice(0)[0].deregister();
    await reaches('empty');
    expect(() => client.pick()).toThrow(/reports zero instances/);
    store.setReachable(false);
    await reaches('stale');
    expect(() => client.pick()).toThrow(/registry is unreachable/);
    expect(states).toEqual(['ok:1', 'stale:1', 'ok:1', 'empty:0', 'stale:0']);
    await discovery.close();
  });

  it('closes every client and leaves no subscription behind', async () => {
    const discovery = await Discovery.create({ backend: 'memory' }, { registry, logger: quiet });
    const client = discovery.client('gone');
    let completed = false;
    client.endpoints$.subscribe({ complete: () => (completed = true) });
    await discovery.close();
    expect(completed).toBe(true);
    expect(store.changes$.observed).toBe(false);
    expect(() => discovery.client('again')).toThrow(/closed/);
  });
});

describe('DiscoveryFactory (the seed entry points)', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sy-factory-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('registerAndDiscover registers on the local backend and discovers itself; closing undoes it', async () => {
    const { registry, client } = await DiscoveryFactory.registerAndDiscover('local', [dir], 'greeter', {
      port: 7301,
      id: 'greeter-f1',
    });
    await client.ready({ timeoutMs: 5_000 });
    expect(client.pick().instance.id).toBe('greeter-f1');
    expect(registry.state).toBe('registered');
    await registry.deregister();
    await waitFor(() => client.snapshot().state === 'empty', { what: 'deregistration seen' });
    await client.close();
  });

  it('createWithDefaults and createDiscover build clients from a backend name or a config', async () => {
    const fromStatic = await DiscoveryFactory.createWithDefaults(
      'static',
      ['127.0.0.1:7401', '127.0.0.1:7402'],
      'reader',
    );
    await fromStatic.ready({ minEndpoints: 2 });
    expect(fromStatic.snapshot().endpoints.map((e) => e.address)).toEqual(['127.0.0.1:7401', '127.0.0.1:7402']);
    await fromStatic.close();
    const fromConfig = await DiscoveryFactory.createDiscover({
      backend: 'static',
      backendConfig: { serviceType: 'writer', addresses: ['127.0.0.1:7501'] },
    });
    await fromConfig.ready();
    expect(fromConfig.service).toBe('writer');
    await fromConfig.close();
    await expect(DiscoveryFactory.createDiscover({ backend: 'static' })).rejects.toThrow(/service_type/);
  });
});
