import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Discovery } from '../../../lib/discovery/discovery.js';
import type { ServiceClient } from '../../../lib/client/service-client.js';
import { createServiceInstance } from '../../../lib/core/service-instance.js';
import type { EtcdRegistry } from '../../../lib/registry/etcd/etcd.registry.js';
import { EtcdPeer } from '../../support/peers/etcd.js';
import { expectCrateRecord } from '../../support/rust-crate-record.js';
import { waitFor } from '../../support/wait-for.js';
import { CapturingLogger, openRegistry, Recorder, TEST_TIMING } from './etcd-test-kit.js';

// Both directions against the Rust crate (flare-server-core's `discovery`),
// in the `seed` layout: records put with etcdctl exactly as the crate writes
// them (serde_json::to_vec: compact, fields in declaration order, null for a
// missing option) are discovered with the crate's namespace semantics, and
// what switchyard writes parses under the crate's struct.

/** The crate's record, field by field in its order, with its defaults (ServiceInstance::new). */
function crateBytes(fields: {
  service: string;
  id: string;
  address: string;
  namespace?: string;
  version?: string;
  tags?: Record<string, string>;
  region?: string;
  zone?: string;
  healthy?: boolean;
  weight?: number;
}): string {
  const text = (v: string | undefined) => (v === undefined ? 'null' : JSON.stringify(v));
  return (
    `{"service_type":${text(fields.service)},"instance_id":${text(fields.id)},"address":${text(fields.address)},` +
    `"namespace":${text(fields.namespace)},"version":${text(fields.version)},"tags":${JSON.stringify(fields.tags ?? {})},` +
    `"metadata":{"region":${text(fields.region)},"zone":${text(fields.zone)},"environment":null,"custom":{}},` +
    `"healthy":${fields.healthy ?? true},"weight":${fields.weight ?? 100}}`
  );
}

const SERVICE = 'signaling-online';
/** Where the crate puts a record: `{ns}/services/{service}/{id}`, `flare` when it has no namespace. */
const crateKey = (id: string, namespace?: string) => `${namespace ?? 'flare'}/services/${SERVICE}/${id}`;

describe('etcd backend: running beside the Rust services (seed layout)', () => {
  let etcd: EtcdPeer;
  const opened: EtcdRegistry[] = [];
  const recorders: Recorder[] = [];
  const discoveries: Discovery[] = [];

  async function open(backendConfig: Record<string, unknown> = {}, logger = new CapturingLogger()) {
    const registry = await openRegistry(etcd.endpoints, backendConfig, logger);
    opened.push(registry);
    return registry;
  }
  function record(registry: EtcdRegistry, query: Record<string, unknown>, service = SERVICE) {
    const recorder = new Recorder(registry.watch({ service, ...query }));
    recorders.push(recorder);
    return recorder;
  }
  async function clientOf(registry: EtcdRegistry, namespace: string): Promise<ServiceClient> {
    const discovery = await Discovery.create(
      { backend: 'etcd', loadBalance: 'weighted_round_robin', namespace: { default: namespace } },
      { registry, logger: new CapturingLogger() },
    );
    discoveries.push(discovery);
    return discovery.client(SERVICE);
  }

  beforeAll(async () => {
    etcd = await EtcdPeer.start();
    // What Rust services write (each line one ServiceInstance, as the crate's register() puts it).
    const put = (key: string, value: string) => etcd.etcdctl(['put', key, value]);
    put(crateKey('rust-plain'), crateBytes({ service: SERVICE, id: 'rust-plain', address: '10.0.0.5:8080' }));
    put(
      crateKey('rust-v6'),
      crateBytes({ service: SERVICE, id: 'rust-v6', address: '[2001:db8::b]:18081', version: 'v2.0.0' }),
    );
    put(
      crateKey('rust-test', 'flare-test'),
      crateBytes({ service: SERVICE, id: 'rust-test', address: '10.0.0.6:8080', namespace: 'flare-test' }),
    );
    put(
      crateKey('rust-gold', 'production'),
      crateBytes({
        service: SERVICE,
        id: 'rust-gold',
        address: '10.0.1.1:8080',
        namespace: 'production',
        version: 'v1.2.0',
        tags: { region: 'us-east-1', tier: 'gold' },
        region: 'us-east-1',
        zone: 'us-east-1a',
        weight: 200,
      }),
    );
    put(
      crateKey('rust-sick', 'production'),
      crateBytes({
        service: SERVICE,
        id: 'rust-sick',
        address: '10.0.1.2:8080',
        namespace: 'production',
        healthy: false,
      }),
    );
    put(
      crateKey('rust-drained', 'production'),
      crateBytes({
        service: SERVICE,
        id: 'rust-drained',
        address: '10.0.1.3:8080',
        namespace: 'production',
        weight: 0,
      }),
    );
    // No namespace, yet under production/: the crate asked for "production" does not return it either.
    put(
      crateKey('rust-astray', 'production'),
      crateBytes({ service: SERVICE, id: 'rust-astray', address: '10.0.1.4:8080' }),
    );
  });
  afterEach(async () => {
    for (const r of recorders.splice(0)) r.stop();
    await Promise.all(discoveries.splice(0).map((d) => d.close()));
    await Promise.all(opened.splice(0).map((r) => r.close()));
  });
  afterAll(async () => {
    await etcd?.stop();
  });

  it('finds, for the default namespace, every record under flare/, flare-test/ and default/, as the crate does with none', async () => {
    const registry = await open();
    const watch = record(registry, {});
    await waitFor(() => watch.ids().length === 3, { what: 'the three no-namespace records' });
    expect(watch.ids()).toEqual(['rust-plain', 'rust-test', 'rust-v6']);
    const byId = Object.fromEntries(watch.last!.instances.map((i) => [i.id, i]));
    // A null namespace is the default one; a null version none; the crate's default weight stands.
    expect(byId['rust-plain']).toMatchObject({ namespace: 'default', version: '', weight: 100, healthy: true });
    expect(byId['rust-plain'].metadata).toEqual({ custom: {} });
    expect(byId['rust-v6']).toMatchObject({ host: '2001:db8::b', port: 18081, address: '[2001:db8::b]:18081' });
    expect(byId['rust-test'].namespace).toBe('flare-test');

    const v2 = record(registry, { version: 'v2.0.0' });
    await waitFor(() => v2.last?.state === 'ok', { what: 'the v2.0.0 record' });
    expect(v2.ids()).toEqual(['rust-v6']);
  });

  it("finds, for a namespace, the records that name it, with the crate's version and tag filters", async () => {
    const registry = await open();
    const all = record(registry, { namespace: 'production' });
    await waitFor(() => all.ids().length === 3, { what: 'the production records' });
    // rust-astray sits under production/ with namespace null: not in "production", as for the crate.
    expect(all.ids()).toEqual(['rust-drained', 'rust-gold', 'rust-sick']);
    const byId = Object.fromEntries(all.last!.instances.map((i) => [i.id, i]));
    expect(byId['rust-gold']).toMatchObject({
      namespace: 'production',
      version: 'v1.2.0',
      weight: 200,
      tags: { region: 'us-east-1', tier: 'gold' },
      metadata: { region: 'us-east-1', zone: 'us-east-1a', custom: {} },
    });
    expect(byId['rust-sick'].healthy).toBe(false);
    expect(byId['rust-drained'].weight).toBe(0);

    const versioned = record(registry, { namespace: 'production', version: 'v1.2.0' });
    const tagged = record(registry, { namespace: 'production', tags: [{ key: 'region', value: 'us-east-1' }] });
    await waitFor(() => versioned.last?.state === 'ok' && tagged.last?.state === 'ok', { what: 'filtered sets' });
    expect(versioned.ids()).toEqual(['rust-gold']);
    expect(tagged.ids()).toEqual(['rust-gold']);
  });

  it('lists a healthy: false and a weight-0 record but serves neither (the crate would serve both)', async () => {
    const client = await clientOf(await open(), 'production');
    await client.ready({ minEndpoints: 1 });
    await waitFor(() => client.describeEndpoints().length === 3, { what: 'three known endpoints' });
    expect(client.snapshot().instances.map((i) => i.id)).toEqual(['rust-gold']);
    const shown = Object.fromEntries(client.describeEndpoints().map((r) => [r.endpoint.instance.id, r]));
    expect(shown['rust-gold']).toMatchObject({ served: true, health: 'healthy' });
    expect(shown['rust-sick']).toMatchObject({ served: false, health: 'unhealthy' });
    expect(shown['rust-drained']).toMatchObject({ served: false, health: 'drained' });
    for (let i = 0; i < 50; i++) expect(client.pick().instance.id).toBe('rust-gold');
  });

  it('writes what the crate parses: its fields in order, nulls, SocketAddr, u32 weight 100 by default', async () => {
    const registry = await open();
    const discovery = await Discovery.create({ backend: 'etcd' }, { registry, logger: new CapturingLogger() });
    discoveries.push(discovery);
    const plain = discovery.instanceFor({ service: 'sy-orders', id: 'sy-plain', host: '10.0.2.1', port: 50051 });
    const full = discovery.instanceFor({
      service: 'sy-orders',
      id: 'sy-full',
      address: '[2001:db8::c]:50052',
      namespace: 'production',
      version: '1.4.0',
      tags: { region: 'us-east-1' },
      metadata: { zone: 'us-east-1b', custom: { team: 'payments' } },
      weight: 0,
    });
    for (const instance of [plain, full]) await registry.register(instance, TEST_TIMING);

    // No leading slash: the crate's key, under the instance's namespace.
    const keys = etcd.etcdctl(['get', '--prefix', '', '--keys-only']).split('\n').filter(Boolean);
    expect(keys).toEqual(
      expect.arrayContaining(['default/services/sy-orders/sy-plain', 'production/services/sy-orders/sy-full']),
    );
    const plainRecord = expectCrateRecord(
      etcd.etcdctl(['get', 'default/services/sy-orders/sy-plain', '--print-value-only']).trim(),
    );
    expect(plainRecord).toEqual({
      service_type: 'sy-orders',
      instance_id: 'sy-plain',
      address: '10.0.2.1:50051',
      namespace: 'default',
      version: null,
      tags: {},
      metadata: { region: null, zone: null, environment: null, custom: {} },
      healthy: true,
      weight: 100,
    });
    const fullRecord = expectCrateRecord(
      etcd.etcdctl(['get', 'production/services/sy-orders/sy-full', '--print-value-only']).trim(),
    );
    expect(fullRecord).toEqual({
      service_type: 'sy-orders',
      instance_id: 'sy-full',
      address: '[2001:db8::c]:50052',
      namespace: 'production',
      version: '1.4.0',
      tags: { region: 'us-east-1' },
      metadata: { region: null, zone: 'us-east-1b', environment: null, custom: { team: 'payments' } },
      healthy: true,
      weight: 0,
    });
  });

  it('refuses at registration what the crate could not parse, naming the field and the value', async () => {
    const registry = await open();
    await expect(
      registry.register(createServiceInstance({ service: 'sy-bad', address: 'localhost:19004' }), TEST_TIMING),
    ).rejects.toThrow(/layout "seed": address "localhost:19004" has a host name/);
    await expect(
      registry.register(
        createServiceInstance({ service: 'sy-bad', address: '10.0.0.1:19004', weight: 2.5 }),
        TEST_TIMING,
      ),
    ).rejects.toThrow(/layout "seed": weight 2\.5 is not an integer/);
    expect(etcd.etcdctl(['get', '--prefix', 'default/services/sy-bad/', '--keys-only']).trim()).toBe('');
    // The previous layout takes both, as switchyard 0.1 did.
    const slash = await open({ layout: 'seed-slash' });
    const registration = await slash.register(
      createServiceInstance({ service: 'sy-bad', id: 'sy-host', address: 'localhost:19004', weight: 2.5 }),
      TEST_TIMING,
    );
    expect(JSON.parse(etcd.etcdctl(['get', '/default/services/sy-bad/sy-host', '--print-value-only']))).toMatchObject({
      address: 'localhost:19004',
      weight: 2.5,
    });
    await registration.deregister();
  });

  it('says once, with the fix, when keys of the seed-slash layout are left where it does not read', async () => {
    const old = createServiceInstance({ service: 'sy-legacy', id: 'old-1', address: '10.0.3.1:50051' });
    const slash = await open({ layout: 'seed-slash' });
    const registration = await slash.register(old, TEST_TIMING);
    const logger = new CapturingLogger();
    const upgraded = await open({}, logger);
    const watch = record(upgraded, {}, 'sy-legacy');
    const again = record(upgraded, {}, 'sy-legacy');
    await waitFor(() => logger.warnings().some((w) => w.includes('/default/services/sy-legacy/')), {
      what: 'the seed-slash warning',
    });
    const warnings = logger.warnings().filter((w) => w.includes('seed-slash'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/1 key\(s\) under \/default\/services\/sy-legacy\/.*layout = "seed-slash"/);
    await waitFor(() => watch.last?.state === 'empty' && again.last?.state === 'empty', {
      what: 'an empty set for the new layout',
    });
    // The old layout still finds it.
    const reader = record(slash, {}, 'sy-legacy');
    await waitFor(() => reader.ids().includes('old-1'), { what: 'the seed-slash reader' });
    await registration.deregister();
  });
});
