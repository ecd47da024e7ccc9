import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getStrategy } from '../../../lib/balancing/strategy-registry.js';
import { LoadTracker } from '../../../lib/balancing/endpoint-load.js';
import type { DiscoveryQuery } from '../../../lib/core/discovery-query.js';
import type { EndpointSet } from '../../../lib/core/endpoint-set.js';
import { createServiceInstance, type ServiceInstanceInput } from '../../../lib/core/service-instance.js';
import { buildConsulFilter } from '../../../lib/registry/consul/consul-filter.js';
import type { ConsulRegistry } from '../../../lib/registry/consul/consul.registry.js';
import { ConsulAgent, consulBinary, httpGet } from '../../support/peers/consul.js';
import { waitFor } from '../../support/wait-for.js';
import { Closer, RecordingLogger, registerDirect } from './support/consul-kit.js';

const binary = consulBinary();
const SERVICE = 'fl-orders';

const INSTANCES: ServiceInstanceInput[] = [
  {
    service: SERVICE,
    id: 'a',
    address: '127.0.0.1:7401',
    version: '1.2.0',
    tags: { tier: 'gold', 'app.kubernetes.io/name': 'orders', 'quote"key': 'va"l\\ue' },
    weight: 5,
    metadata: { region: 'eu', zone: 'eu-1a', environment: 'prod', custom: { owner: 'team_a', 'build.sha': 'abc123' } },
  },
  { service: SERVICE, id: 'b', address: '127.0.0.1:7402', version: 'v1.5.3', tags: { tier: 'silver' }, weight: 1 },
  {
    service: SERVICE,
    id: 'c',
    address: '127.0.0.1:7403',
    version: '2.0.0',
    tags: { tier: 'gold', canary: 'true' },
    weight: 2.5,
  },
  {
    service: SERVICE,
    id: 'd',
    namespace: 'staging',
    address: '127.0.0.1:7404',
    version: '1.2.0',
    tags: { tier: 'gold' },
  },
];

describe.skipIf(!binary)('consul: filters, metadata and weights', () => {
  let agent: ConsulAgent;
  let registry: ConsulRegistry;
  const logger = new RecordingLogger();
  const closer = new Closer();

  beforeAll(async () => {
    agent = await ConsulAgent.start({}, binary);
    registry = await closer.registry(agent.url, {}, { logger });
    for (const input of INSTANCES)
      await registry.register(createServiceInstance(input), { ttlMs: 60_000, heartbeatMs: 20_000 });
    // Registered by another tool: no switchyard Meta, so its Tags are read the Rust crate's way (tag tier=gold).
    await registerDirect(agent.url, { ID: 'e', Name: SERVICE, Address: '127.0.0.1', Port: 7405, Tags: ['tier=gold'] });
  });
  afterAll(async () => {
    await closer.closeAll();
    await agent?.stop();
  });

  async function resolveOnce(query: Omit<DiscoveryQuery, 'service'>): Promise<EndpointSet> {
    const seen = closer.collect(registry.watch({ service: SERVICE, ...query }));
    return waitFor(() => seen.latest(), { what: `an answer for ${JSON.stringify(query)}` });
  }

  async function serverSide(query: Omit<DiscoveryQuery, 'service'>): Promise<string[]> {
    const filter = buildConsulFilter({ service: SERVICE, ...query });
    const url = `${agent.url}/v1/health/service/${SERVICE}?passing=1${filter ? `&filter=${encodeURIComponent(filter)}` : ''}`;
    const { status, body } = await httpGet(url);
    expect(status, body).toBe(200);
    return (JSON.parse(body) as Array<{ Service: { ID: string } }>).map((e) => e.Service.ID).sort();
  }

  const cases: Array<{
    name: string;
    query: Omit<DiscoveryQuery, 'service'>;
    expected: string[];
    serverExact: boolean;
  }> = [
    {
      name: 'default namespace (instances without Meta included)',
      query: {},
      expected: ['a', 'b', 'c', 'e'],
      serverExact: true,
    },
    { name: 'another namespace', query: { namespace: 'staging' }, expected: ['d'], serverExact: true },
    { name: 'exact plain version', query: { version: '1.2.0' }, expected: ['a'], serverExact: true },
    {
      name: 'semver range (leading v accepted)',
      query: { version: '^1.2.0', versionFormat: 'semver', versionRouting: true },
      expected: ['a', 'b'],
      serverExact: false,
    },
    {
      name: 'semver lower bound',
      query: { version: '>=2', versionFormat: 'semver', versionRouting: true },
      expected: ['c'],
      serverExact: false,
    },
    {
      name: 'exact tag (Meta, or a k=v tag)',
      query: { tags: [{ key: 'tier', value: 'gold' }] },
      expected: ['a', 'c', 'e'],
      serverExact: true,
    },
    // Prefixes and existence cannot be tested on a list of k=v tags: entries without Meta pass the server.
    {
      name: 'tag prefix',
      query: { tags: [{ key: 'tier', value: 'si', pattern: 'prefix' }] },
      expected: ['b'],
      serverExact: false,
    },
    {
      name: 'tag exists',
      query: { tags: [{ key: 'canary', pattern: 'exists' }] },
      expected: ['c'],
      serverExact: false,
    },
    {
      name: 'tag regex (client-side)',
      query: { tags: [{ key: 'tier', value: '^(gold|silver)$', pattern: 'regex' }] },
      expected: ['a', 'b', 'c', 'e'],
      serverExact: false,
    },
    {
      name: 'tag key with dots and a slash',
      query: { tags: [{ key: 'app.kubernetes.io/name', value: 'orders' }] },
      expected: ['a'],
      serverExact: true,
    },
    {
      name: 'tag key and value with quotes and a backslash',
      query: { tags: [{ key: 'quote"key', value: 'va"l\\ue' }] },
      expected: ['a'],
      serverExact: true,
    },
    {
      name: 'namespace + semver range + tag together',
      query: {
        namespace: 'default',
        version: '^1',
        versionFormat: 'semver',
        versionRouting: true,
        tags: [{ key: 'tier', value: 'gold' }],
      },
      expected: ['a'],
      serverExact: false,
    },
  ];

  for (const { name, query, expected, serverExact } of cases) {
    it(`returns exactly the matching instances: ${name}`, async () => {
      const set = await resolveOnce(query);
      expect(set.instances.map((i) => i.id).sort()).toEqual(expected);
      // The server-side filter is valid for Consul 1.8 and never drops a match;
      // where it can express the whole query, only matches cross the wire.
      const server = await serverSide(query);
      if (serverExact) expect(server).toEqual(expected);
      else expect(server).toEqual(expect.arrayContaining(expected));
    });
  }

  it('round-trips every field through Consul Meta, and writes Tags and Weights', async () => {
    const set = await resolveOnce({ tags: [{ key: 'app.kubernetes.io/name', value: 'orders' }] });
    const a = set.instances[0];
    expect(a).toEqual(createServiceInstance({ ...INSTANCES[0], healthy: true }));
    const { body } = await httpGet(`${agent.url}/v1/agent/service/a`);
    const stored = JSON.parse(body);
    expect(stored.Weights).toEqual({ Passing: 5, Warning: 1 });
    expect(stored.Tags).toEqual(
      expect.arrayContaining(['tier=gold', 'app.kubernetes.io/name=orders', 'version=1.2.0', 'namespace=default']),
    );
    expect(stored.Meta).toMatchObject({
      namespace: 'default',
      version: '1.2.0',
      region: 'eu',
      zone: 'eu-1a',
      environment: 'prod',
      'tag-tier': 'gold',
      'tag-app_2ekubernetes_2eio_2fname': 'orders',
      'meta-owner': 'team_a',
      'meta-build_2esha': 'abc123',
    });
    for (const key of Object.keys(stored.Meta)) expect(key).toMatch(/^[A-Za-z0-9_-]{1,128}$/);
  });

  it('hands the registry weights to the weighted strategies', async () => {
    const set = await resolveOnce({ tags: [{ key: 'tier', value: 'gold' }] });
    // e, registered without Weights, has Consul's default (Passing 1).
    expect(Object.fromEntries(set.endpoints.map((e) => [e.instance.id, e.weight]))).toEqual({ a: 5, c: 2.5, e: 1 });
    const picker = getStrategy('weighted_round_robin').build(set.endpoints, {
      loads: new LoadTracker(),
      random: Math.random,
    });
    const counts: Record<string, number> = { a: 0, c: 0, e: 0 };
    const picks = 8_500;
    for (let i = 0; i < picks; i++) counts[picker.pick()!.instance.id] += 1;
    expect(counts.a / picks).toBeCloseTo(5 / 8.5, 2);
    expect(counts.c / picks).toBeCloseTo(2.5 / 8.5, 2);
    expect(counts.e / picks).toBeCloseTo(1 / 8.5, 2);
  });

  it('skips an unusable record with a warning and keeps the others', async () => {
    await registerDirect(agent.url, { ID: 'broken', Name: 'fl-broken', Address: 'not a host!', Port: 7499 });
    await registerDirect(agent.url, { ID: 'fine', Name: 'fl-broken', Address: '127.0.0.1', Port: 7498 });
    const seen = closer.collect(registry.watch({ service: 'fl-broken' }));
    await waitFor(() => seen.ids().join() === 'fine', { what: 'the usable instance' });
    expect(logger.lines.some((l) => l.startsWith('warn') && l.includes('"broken"') && l.includes('fl-broken'))).toBe(
      true,
    );
  });
});

describe.skipIf(!binary)('consul: updates, datacenters and duplicate ids', () => {
  let agent: ConsulAgent;
  const closer = new Closer();
  beforeAll(async () => {
    agent = await ConsulAgent.start({}, binary);
  });
  afterAll(async () => {
    await closer.closeAll();
    await agent?.stop();
  });

  it('update() replaces the stored instance and keeps it passing; watchers see it as updated', async () => {
    const registry = await closer.registry(agent.url);
    const first = createServiceInstance({
      service: 'up-orders',
      id: 'up-1',
      address: '127.0.0.1:7801',
      version: '1.0.0',
    });
    const registration = await registry.register(first, { ttlMs: 3_000, heartbeatMs: 500 });
    const seen = closer.collect(registry.watch({ service: 'up-orders' }));
    await waitFor(() => seen.ids().join() === 'up-1', { what: 'up-1' });
    await registration.update(createServiceInstance({ ...first, version: '1.1.0', tags: { tier: 'gold' } }));
    await waitFor(() => seen.latest()?.instances[0]?.version === '1.1.0', { what: 'the update' });
    expect(seen.latest()!.diff.updated.map((e) => e.instance.id)).toEqual(['up-1']);
    expect(seen.latest()!.instances[0].tags).toEqual({ tier: 'gold' });
    await expect(registry.register(first, { ttlMs: 3_000, heartbeatMs: 500 })).rejects.toThrow(
      /'up-1' is already registered/,
    );
  });

  it("queries the configured datacenter, and serves stale with Consul's answer for one it cannot reach", async () => {
    await registerDirect(agent.url, { ID: 'dc-1', Name: 'dc-orders', Address: '127.0.0.1', Port: 7901 });
    const local = await closer.registry(agent.url, { datacenter: 'dc1' });
    const here = closer.collect(local.watch({ service: 'dc-orders' }));
    await waitFor(() => here.ids().join() === 'dc-1', { what: 'dc-1 in dc1' });
    const remote = await closer.registry(agent.url, { datacenter: 'far-away' });
    const there = closer.collect(remote.watch({ service: 'dc-orders' }));
    await waitFor(() => there.latest(), { what: 'an answer for far-away' });
    expect(there.latest()).toMatchObject({ state: 'stale', reason: expect.stringMatching(/No path to datacenter/) });
  });
});
