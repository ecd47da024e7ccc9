import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { DiscoveryQuery } from '../../../lib/core/discovery-query.js';
import { buildConsulFilter } from '../../../lib/registry/consul/consul-filter.js';
import { createServiceInstance, type ServiceInstanceInput } from '../../../lib/core/service-instance.js';
import { ConsulAgent, consulBinary, httpGet } from '../../support/peers/consul.js';
import { isSocketAddr } from '../../support/rust-crate-record.js';
import { waitFor } from '../../support/wait-for.js';
import { agentPut, Closer } from './support/consul-kit.js';

const binary = consulBinary();
const TIMING = { ttlMs: 60_000, heartbeatMs: 20_000 };

// Both directions against the Rust crate's Consul convention: agent
// registrations made with Consul's HTTP API exactly as the crate makes them
// (no Meta, no Weights, k=v / version= / namespace= tags, a TTL check it
// passes on its heartbeat) are discovered with the right namespace, version
// and tags; and what switchyard registers is read back raw and run through
// the crate's own discovery steps.

/** The crate's register(): its body, then the first heartbeat's check pass. */
async function registerAsTheCrate(
  url: string,
  instance: {
    service: string;
    id: string;
    ip: string;
    port: number;
    tags?: string[];
    version?: string;
    namespace?: string;
    /** False: no heartbeat yet, so the check stays critical (what the crate still returns). */
    heartbeat?: boolean;
  },
): Promise<void> {
  const tags = [...(instance.tags ?? [])];
  if (instance.version) tags.push(`version=${instance.version}`);
  if (instance.namespace) tags.push(`namespace=${instance.namespace}`);
  const body = {
    ID: instance.id,
    Name: instance.service,
    Tags: tags,
    Address: instance.ip,
    Port: instance.port,
    Check: { CheckID: `service:${instance.id}`, TTL: '45s', DeregisterCriticalServiceAfter: '90s' },
  };
  const registered = await agentPut(url, '/agent/service/register', body);
  expect(registered.status, registered.body).toBe(200);
  if (instance.heartbeat === false) return;
  const passed = await agentPut(url, `/agent/check/pass/service:${instance.id}`);
  expect(passed.status, passed.body).toBe(200);
}

interface CrateInstance {
  id: string;
  address: string;
  tags: Record<string, string>;
}

/**
 * The crate's discover() over /v1/health/service/<name>: every entry's
 * `Address:Port` parsed as a SocketAddr (one failure fails the whole call),
 * every tag split at its first "=" into the tags map (a bare tag is "true"),
 * then its exact-match tag filter. (Its namespace and version filters test
 * fields it never fills from Consul, so on that side they go through tags.)
 */
async function discoverAsTheCrate(url: string, service: string, tagFilter: Record<string, string> = {}) {
  const { status, body } = await httpGet(`${url}/v1/health/service/${service}`);
  expect(status).toBe(200);
  const found: CrateInstance[] = [];
  for (const entry of JSON.parse(body) as Array<{
    Service: { ID: string; Address: string; Port: number; Tags: string[] };
  }>) {
    const address = `${entry.Service.Address}:${entry.Service.Port}`;
    if (!isSocketAddr(address))
      throw new Error(`the crate's discovery of '${service}' fails: invalid address ${address}`);
    const tags: Record<string, string> = {};
    for (const tag of entry.Service.Tags ?? []) {
      const at = tag.indexOf('=');
      if (at < 0) tags[tag] = 'true';
      else tags[tag.slice(0, at)] = tag.slice(at + 1);
    }
    if (Object.entries(tagFilter).every(([k, v]) => tags[k] === v)) found.push({ id: entry.Service.ID, address, tags });
  }
  return found.sort((a, b) => a.id.localeCompare(b.id));
}

describe.skipIf(!binary)('consul: running beside the Rust services', () => {
  let agent: ConsulAgent;
  const closer = new Closer();

  beforeAll(async () => {
    agent = await ConsulAgent.start({}, binary);
    const service = 'rs-ledger';
    await registerAsTheCrate(agent.url, {
      service,
      id: 'rust-plain',
      ip: '10.0.0.5',
      port: 8080,
      tags: ['region=us-east-1'],
    });
    await registerAsTheCrate(agent.url, {
      service,
      id: 'rust-gold',
      ip: '10.0.1.1',
      port: 8080,
      tags: ['tier=gold', 'region=us-east-1', 'canary'],
      version: 'v1.2.0',
      namespace: 'production',
    });
    await registerAsTheCrate(agent.url, {
      service,
      id: 'rust-v6',
      ip: '2001:db8::b',
      port: 18081,
      tags: ['tier=silver'],
      version: 'v2.0.0',
      namespace: 'production',
    });
    await registerAsTheCrate(agent.url, {
      service: 'rs-critical',
      id: 'rust-live',
      ip: '10.0.1.8',
      port: 8080,
      namespace: 'production',
    });
    await registerAsTheCrate(agent.url, {
      service: 'rs-critical',
      id: 'rust-critical',
      ip: '10.0.1.9',
      port: 8080,
      namespace: 'production',
      heartbeat: false,
    });
  });
  afterEach(() => closer.closeAll());
  afterAll(async () => {
    await agent?.stop();
  });

  /** The first answer of a watch (every registration it should see was made before it started). */
  async function ids(query: Omit<DiscoveryQuery, 'service'>, service = 'rs-ledger') {
    const registry = await closer.registry(agent.url);
    const seen = closer.collect(registry.watch({ service, ...query }));
    await waitFor(() => seen.latest()?.resolved, { what: `an answer for ${JSON.stringify(query)}` });
    return { ids: seen.ids(), instances: seen.latest()!.instances };
  }

  it('reads the crate\'s tags: k=v tags, version= and namespace=, a bare tag as "true"', async () => {
    const production = await ids({ namespace: 'production' });
    expect(production.ids).toEqual(['rust-gold', 'rust-v6']);
    const gold = production.instances.find((i) => i.id === 'rust-gold')!;
    expect(gold).toMatchObject({
      namespace: 'production',
      version: 'v1.2.0',
      tags: { tier: 'gold', region: 'us-east-1', canary: 'true' },
      address: '10.0.1.1:8080',
      healthy: true,
    });
    const v6 = production.instances.find((i) => i.id === 'rust-v6')!;
    expect(v6).toMatchObject({ host: '2001:db8::b', port: 18081, address: '[2001:db8::b]:18081', version: 'v2.0.0' });
    // The crate writes an IPv6 Address without brackets, which its own discovery cannot parse.
    await expect(discoverAsTheCrate(agent.url, 'rs-ledger')).rejects.toThrow(/invalid address 2001:db8::b:18081/);
    // A failing check: the crate returns it, switchyard does not serve it.
    expect((await discoverAsTheCrate(agent.url, 'rs-critical')).map((i) => i.id)).toEqual([
      'rust-critical',
      'rust-live',
    ]);
    expect((await ids({ namespace: 'production' }, 'rs-critical')).ids).toEqual(['rust-live']);
    // No namespace= tag: the default namespace, as the crate's None.
    const plain = await ids({});
    expect(plain.ids).toEqual(['rust-plain']);
    expect(plain.instances[0]).toMatchObject({ namespace: 'default', version: '', tags: { region: 'us-east-1' } });
  });

  /** What the agent returns for the server-side filter switchyard sends with `query`. */
  async function serverSide(query: Omit<DiscoveryQuery, 'service'>, service = 'rs-ledger'): Promise<string[]> {
    const filter = buildConsulFilter({ service, ...query });
    const url = `${agent.url}/v1/health/service/${service}?passing=1&filter=${encodeURIComponent(filter!)}`;
    const { status, body } = await httpGet(url);
    expect(status, body).toBe(200);
    return (JSON.parse(body) as Array<{ Service: { ID: string } }>).map((e) => e.Service.ID).sort();
  }

  it('filters them by tag, version and namespace, on the server and on the client', async () => {
    // The server-side filter tests the crate's tags too: only the matches cross the wire.
    expect(await serverSide({ namespace: 'production' })).toEqual(['rust-gold', 'rust-v6']);
    expect(await serverSide({ namespace: 'production', version: 'v1.2.0' })).toEqual(['rust-gold']);
    expect(await serverSide({ namespace: 'production', tags: [{ key: 'canary', value: 'true' }] })).toEqual([
      'rust-gold',
    ]);
    expect((await ids({ tags: [{ key: 'region', value: 'us-east-1' }] })).ids).toEqual(['rust-plain']);
    const byVersion = await ids({ namespace: 'production', version: 'v1.2.0' });
    expect(byVersion.ids).toEqual(['rust-gold']);
    const bare = await ids({ namespace: 'production', tags: [{ key: 'canary', value: 'true' }] });
    expect(bare.ids).toEqual(['rust-gold']);
    const silver = await ids({ namespace: 'production', tags: [{ key: 'tier', value: 's', pattern: 'prefix' }] });
    expect(silver.ids).toEqual(['rust-v6']);
  });

  it('registers, with rust_compatible, what the crate reads: IP-literal addresses and its tags, filters agreeing', async () => {
    const registry = await closer.registry(agent.url, { rustCompatible: true });
    const mine: ServiceInstanceInput[] = [
      {
        service: 'rs-orders',
        id: 'sy-gold',
        address: '10.0.2.1:50051',
        namespace: 'production',
        version: 'v1.2.0',
        tags: { tier: 'gold', region: 'us-east-1' },
      },
      {
        service: 'rs-orders',
        id: 'sy-v6',
        address: '[2001:db8::c]:50052',
        namespace: 'production',
        tags: { tier: 'silver' },
      },
      { service: 'rs-orders', id: 'sy-plain', address: '10.0.2.2:50051', tags: { region: 'us-east-1' } },
    ];
    for (const input of mine) await registry.register(createServiceInstance(input), TIMING);
    await waitFor(async () => (await discoverAsTheCrate(agent.url, 'rs-orders')).length === 3, {
      what: 'three passing registrations',
    });

    // What the agent stored: no host names, the crate's tags.
    const stored = JSON.parse((await httpGet(`${agent.url}/v1/agent/service/sy-v6`)).body);
    expect(stored).toMatchObject({ Address: '[2001:db8::c]', Port: 50052 });
    expect(stored.Tags).toEqual(['tier=silver', 'namespace=production']);
    const crateView = await discoverAsTheCrate(agent.url, 'rs-orders');
    expect(crateView.map((i) => i.address)).toEqual(['10.0.2.1:50051', '10.0.2.2:50051', '[2001:db8::c]:50052']);
    expect(crateView.find((i) => i.id === 'sy-gold')!.tags).toEqual({
      tier: 'gold',
      region: 'us-east-1',
      version: 'v1.2.0',
      namespace: 'production',
    });

    // One filter, both sides: the crate's tag filter and switchyard's query agree.
    const pairs: Array<[Record<string, string>, Omit<DiscoveryQuery, 'service'>]> = [
      [
        { region: 'us-east-1', namespace: 'production' },
        { namespace: 'production', tags: [{ key: 'region', value: 'us-east-1' }] },
      ],
      [{ namespace: 'production' }, { namespace: 'production' }],
      [{ version: 'v1.2.0' }, { namespace: 'production', version: 'v1.2.0' }],
      [{ tier: 'silver' }, { namespace: 'production', tags: [{ key: 'tier', value: 'silver' }] }],
    ];
    for (const [crateFilter, query] of pairs) {
      const theirs = (await discoverAsTheCrate(agent.url, 'rs-orders', crateFilter)).map((i) => i.id);
      expect(theirs.length, JSON.stringify(crateFilter)).toBeGreaterThan(0);
      expect((await ids(query, 'rs-orders')).ids).toEqual(theirs);
    }
  });

  it('keeps a drained (weight 0) instance in Meta, while the crate, which reads no weight, sees it as any other', async () => {
    const registry = await closer.registry(agent.url, { rustCompatible: true });
    await registry.register(
      createServiceInstance({ service: 'rs-drain', id: 'sy-drained', address: '10.0.4.1:50051', weight: 0 }),
      TIMING,
    );
    await registry.register(
      createServiceInstance({ service: 'rs-drain', id: 'sy-live', address: '10.0.4.2:50051' }),
      TIMING,
    );
    const seen = await ids({}, 'rs-drain');
    expect(Object.fromEntries(seen.instances.map((i) => [i.id, i.weight]))).toEqual({ 'sy-drained': 0, 'sy-live': 1 });
    const stored = JSON.parse((await httpGet(`${agent.url}/v1/agent/service/sy-drained`)).body);
    expect(stored).toMatchObject({ Weights: { Passing: 1 }, Meta: { weight: '0' } });
    expect((await discoverAsTheCrate(agent.url, 'rs-drain')).map((i) => i.id)).toEqual(['sy-drained', 'sy-live']);
  });

  it('refuses, with rust_compatible, a host name, which would break the crate for the whole service', async () => {
    const strict = await closer.registry(agent.url, { rustCompatible: true });
    await expect(
      strict.register(
        createServiceInstance({ service: 'rs-hosts', id: 'sy-host', address: 'localhost:19004' }),
        TIMING,
      ),
    ).rejects.toThrow(/rust_compatible: address "localhost:19004" has a host name/);
    // Without it, as before: registered as given, and the crate's discovery of the service fails.
    const loose = await closer.registry(agent.url);
    await loose.register(
      createServiceInstance({ service: 'rs-hosts', id: 'sy-host', address: 'localhost:19004' }),
      TIMING,
    );
    await expect(discoverAsTheCrate(agent.url, 'rs-hosts')).rejects.toThrow(/invalid address localhost:19004/);
  });
});
