import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { EtcdPeer } from '../../support/peers/etcd.js';
import { PeerProcess } from '../../support/peers/peer-process.js';
import { waitFor } from '../../support/wait-for.js';
import type { EtcdRegistry } from '../../../lib/registry/etcd/etcd.registry.js';
import { toSeedRecord, withChanges } from '../../../lib/core/service-instance.js';
import { toCrateRecord } from '../../../lib/registry/etcd/etcd-seed-layouts.js';
import { expectCrateRecord } from '../../support/rust-crate-record.js';
import { CapturingLogger, openRegistry, Recorder, TEST_TIMING, TEST_TTL_S, testInstance } from './etcd-test-kit.js';

const DIST = join(import.meta.dirname, '../../../dist');
const CHILD = join(import.meta.dirname, 'fixtures/register-child.mjs');

// Registration and discovery between two registries (two clients of one
// etcd), the seed's key layout, etcd's gRPC naming layout, bad records.
describe('etcd backend: registration and discovery', () => {
  let etcd: EtcdPeer;
  const opened: EtcdRegistry[] = [];
  const recorders: Recorder[] = [];
  const children: PeerProcess[] = [];

  async function open(backendConfig: Record<string, unknown> = {}, logger = new CapturingLogger()) {
    const registry = await openRegistry(etcd.endpoints, backendConfig, logger);
    opened.push(registry);
    return registry;
  }
  function record(registry: EtcdRegistry, service: string, extra: Record<string, unknown> = {}) {
    const recorder = new Recorder(registry.watch({ service, ...extra }));
    recorders.push(recorder);
    return recorder;
  }

  beforeAll(async () => {
    etcd = await EtcdPeer.start();
  });
  afterEach(async () => {
    for (const r of recorders.splice(0)) r.stop();
    await Promise.all(opened.splice(0).map((r) => r.close()));
    await Promise.all(children.splice(0).map((c) => c.stop()));
  });
  afterAll(async () => {
    await etcd?.stop();
  });

  it("registers in the seed layout, is pushed to another client's watch as an addition, and as a removal after deregister", async () => {
    const writer = await open();
    const reader = await open();
    const watch = record(reader, 'orders');
    await waitFor(() => watch.last?.state === 'empty', { what: 'first (empty) answer' });

    const instance = testInstance('orders', {
      version: 'v1.2.0',
      tags: { tier: 'gold' },
      metadata: { zone: 'eu-1a', custom: { team: 'x' } },
    });
    const before = watch.sets.length;
    const registration = await writer.register(instance, TEST_TIMING);
    await waitFor(() => watch.ids().includes(instance.id), { what: 'instance discovered' });
    // The watch delivered the put itself, as an addition to the set it had (etcd watches push; nothing here polls).
    const added = watch.sets[watch.firstIndex((s) => s.has(`${instance.id}@${instance.address}`), before)];
    expect(added.diff.added.map((e) => e.instance.id)).toEqual([instance.id]);

    // The key and value are the Rust crate's.
    const raw = etcd.etcdctl(['get', `default/services/orders/${instance.id}`, '--print-value-only']).trim();
    expect(expectCrateRecord(raw)).toEqual(toCrateRecord(instance));
    expect(watch.last!.instances[0]).toEqual(instance);

    const registered = watch.sets.length;
    await registration.deregister();
    await waitFor(() => watch.last?.state === 'empty', { what: 'instance removed' });
    const removed = watch.sets[watch.firstIndex((s) => s.size === 0, registered)];
    expect(removed.diff.removed.map((e) => e.instance.id)).toEqual([instance.id]);
    expect(etcd.etcdctl(['get', '--prefix', 'default/services/orders/', '--keys-only']).trim()).toBe('');
  });

  it('applies namespace, version and tag filters but serves every zone', async () => {
    const writer = await open();
    const a = testInstance('carts', {
      namespace: 'production',
      version: '1.4.0',
      tags: { tier: 'gold' },
      metadata: { zone: 'z1' },
    });
    const b = testInstance('carts', {
      namespace: 'production',
      version: '2.0.0',
      tags: { tier: 'gold' },
      metadata: { zone: 'z2' },
    });
    const c = testInstance('carts', { namespace: 'production', version: '1.5.0', tags: { tier: 'silver' } });
    const d = testInstance('carts', { namespace: 'staging', version: '1.4.0', tags: { tier: 'gold' } });
    for (const i of [a, b, c, d]) await writer.register(i, TEST_TIMING);
    const watch = record(writer, 'carts', {
      namespace: 'production',
      version: '^1.0.0',
      versionFormat: 'semver',
      versionRouting: true,
      tags: [{ key: 'tier', value: 'gold' }],
      zone: 'z2',
    });
    await waitFor(() => watch.last?.state === 'ok', { what: 'filtered set' });
    expect(watch.ids()).toEqual([a.id]);
    const all = record(writer, 'carts', { namespace: 'production' });
    await waitFor(() => all.ids().length === 3, { what: 'all production instances' });
    expect(all.ids()).toEqual([a.id, b.id, c.id].sort());
  });

  it('discovers a record written with etcdctl in the seed JSON', async () => {
    const reader = await open({}, new CapturingLogger());
    const watch = record(reader, 'signaling-online', { namespace: 'production' });
    await waitFor(() => watch.last !== undefined, { what: 'first answer' });
    const seedRecord = {
      service_type: 'signaling-online',
      instance_id: 'rust-node-1',
      address: '10.1.2.3:7000',
      namespace: 'production',
      version: 'v1.0.0',
      tags: { region: 'eu' },
      metadata: { region: 'eu-west', zone: 'eu-west-1a', environment: 'prod', custom: { build: '42' } },
      healthy: true,
      weight: 3,
      extra_field_from_a_newer_seed: { ignored: true },
    };
    etcd.etcdctl(['put', 'production/services/signaling-online/rust-node-1', JSON.stringify(seedRecord)]);
    await waitFor(() => watch.ids().includes('rust-node-1'), { what: 'seed record discovered' });
    const found = watch.last!.instances.find((i) => i.id === 'rust-node-1')!;
    expect(found).toMatchObject({ address: '10.1.2.3:7000', version: 'v1.0.0', weight: 3, tags: { region: 'eu' } });
    expect(found.metadata).toEqual({
      region: 'eu-west',
      zone: 'eu-west-1a',
      environment: 'prod',
      custom: { build: '42' },
    });
    etcd.etcdctl(['del', 'production/services/signaling-online/rust-node-1']);
    await waitFor(() => watch.last?.state === 'empty', { what: 'seed record removed' });
  });

  it('skips malformed and oversized records with a warning naming the key, and serves the others', async () => {
    const logger = new CapturingLogger();
    const reader = await open({}, logger);
    const writer = await open();
    const good = testInstance('inventory');
    await writer.register(good, TEST_TIMING);
    etcd.etcdctl(['put', 'default/services/inventory/broken-1', '{"service_type": "inventory", "instance_id": ']);
    etcd.etcdctl([
      'put',
      'default/services/inventory/no-address',
      JSON.stringify({ service_type: 'inventory', instance_id: 'no-address' }),
    ]);
    const big = { ...toSeedRecord(testInstance('inventory', { id: 'huge' })), padding: 'x'.repeat(70 * 1024) };
    await reader.client.put('default/services/inventory/huge').value(JSON.stringify(big));

    const watch = record(reader, 'inventory');
    await waitFor(() => watch.last?.state === 'ok', { what: 'set with the good instance' });
    expect(watch.ids()).toEqual([good.id]);
    const warnings = logger.warnings().join('\n');
    expect(warnings).toContain('default/services/inventory/broken-1');
    expect(warnings).toMatch(/broken-1.*not valid JSON/);
    expect(warnings).toMatch(/no-address.*(address|host)/);
    expect(warnings).toMatch(/inventory\/huge.*exceeds the 65536-byte limit/);

    // A bad record arriving through the watch is skipped the same way.
    etcd.etcdctl(['put', 'default/services/inventory/broken-2', 'not json at all']);
    const later = testInstance('inventory');
    await writer.register(later, TEST_TIMING);
    await waitFor(() => watch.ids().length === 2, { what: 'second good instance' });
    expect(watch.ids()).toEqual([good.id, later.id].sort());
    await waitFor(() => logger.warnings().some((w) => w.includes('default/services/inventory/broken-2')), {
      what: 'warning for broken-2',
    });
    etcd.etcdctl(['del', '--prefix', 'default/services/inventory/']);
  });

  it('reads and writes etcd gRPC naming records in the grpc-naming layout', async () => {
    const logger = new CapturingLogger();
    const reader = await open({ layout: 'grpc-naming', prefix: '/grpc' }, logger);
    const writer = await open({ layout: 'grpc-naming', prefix: '/grpc' });
    const watch = record(reader, 'greeter');
    await waitFor(() => watch.last !== undefined, { what: 'first answer' });

    // What a Go service registers through etcd's naming package.
    etcd.etcdctl([
      'put',
      '/grpc/greeter/10.0.0.7:50051',
      JSON.stringify({ Op: 0, Addr: '10.0.0.7:50051', Metadata: null }),
    ]);
    await waitFor(() => watch.ids().includes('10.0.0.7:50051'), { what: 'Go-written record discovered' });
    expect(watch.last!.instances[0]).toMatchObject({
      address: '10.0.0.7:50051',
      service: 'greeter',
      namespace: 'default',
    });

    const mine = testInstance('greeter', { version: '1.0.0' });
    const registration = await writer.register(mine, TEST_TIMING);
    const stored = JSON.parse(etcd.etcdctl(['get', `/grpc/greeter/${mine.address}`, '--print-value-only']));
    expect(stored).toMatchObject({ Op: 0, Addr: mine.address });
    await waitFor(() => watch.ids().includes(mine.id), { what: 'own registration discovered' });
    expect(watch.last!.instances.find((i) => i.id === mine.id)).toEqual(mine);

    etcd.etcdctl(['put', '/grpc/greeter/bad', '{"Op":0,"Addr":"no-port"}']);
    await waitFor(() => logger.warnings().some((w) => w.includes('/grpc/greeter/bad')), {
      what: 'warning for a bad Addr',
    });
    await registration.deregister();
    etcd.etcdctl(['del', '--prefix', '/grpc/greeter/']);
    await waitFor(() => watch.last?.state === 'empty', { what: 'all gone' });
  });

  it('updates a registered instance in place, and moves its key when the address changes (grpc-naming)', async () => {
    const registry = await open({ layout: 'grpc-naming' });
    const watch = record(registry, 'profiles');
    const instance = testInstance('profiles', { version: '1.0.0' });
    const registration = await registry.register(instance, TEST_TIMING);
    await waitFor(() => watch.ids().includes(instance.id), { what: 'registered' });
    await registration.update(withChanges(instance, { version: '1.1.0' }));
    await waitFor(() => watch.last?.instances[0]?.version === '1.1.0', { what: 'version update seen' });
    expect(watch.last!.diff.updated.map((e) => e.instance.id)).toEqual([instance.id]);
    const moved = withChanges(instance, { address: '127.0.0.1:46001', version: '1.1.0' });
    await registration.update(moved);
    await waitFor(() => watch.last?.instances.length === 1 && watch.last.instances[0].address === '127.0.0.1:46001', {
      what: 'address change seen',
    });
    expect(etcd.etcdctl(['get', '--prefix', 'profiles/', '--keys-only']).trim().split('\n').filter(Boolean)).toEqual([
      'profiles/127.0.0.1:46001',
    ]);
    await registration.deregister();
    await waitFor(() => watch.last?.state === 'empty', { what: 'gone' });
  });

  it('logs when a second process writes the same instance key, and takes it back', async () => {
    const logger = new CapturingLogger();
    const first = await open({}, logger);
    const instance = testInstance('payments');
    const registration = await first.register(instance, TEST_TIMING);
    const key = `default/services/payments/${instance.id}`;
    // Another process (own lease) writes the same key.
    const other = await open();
    const lease = other.client.lease(10);
    await lease.put(key).value(JSON.stringify({ ...toSeedRecord(instance), address: '10.9.9.9:1' }));
    await registration.heartbeat();
    expect(logger.warnings().join('\n')).toMatch(
      new RegExp(`${key} was held by another writer.*10\\.9\\.9\\.9:1.*two processes register instance id`),
    );
    const value = JSON.parse(etcd.etcdctl(['get', key, '--print-value-only']));
    expect(value.address).toBe(instance.address);
    await lease.revoke();
  });

  it('puts its key back when it is deleted behind its back', async () => {
    const registry = await open();
    const instance = testInstance('billing');
    const registration = await registry.register(instance, TEST_TIMING);
    const events: string[] = [];
    registration.events$.subscribe((e) => events.push(e.type));
    const key = `default/services/billing/${instance.id}`;
    etcd.etcdctl(['del', key]);
    await waitFor(() => events.length === 2, { what: 'lost and restored events', timeoutMs: 5_000 });
    expect(events).toEqual(['lost', 'restored']);
    expect(JSON.parse(etcd.etcdctl(['get', key, '--print-value-only'])).instance_id).toBe(instance.id);
  });

  it('drops the key of a SIGKILLed registering process when its lease expires', async () => {
    // The child imports the built package (npm test builds first).
    if (!existsSync(join(DIST, 'registry/etcd/etcd.registry.js')))
      throw new Error(`${DIST} is missing: run npm run build before this test`);
    const reader = await open();
    const watch = record(reader, 'crash-svc');
    const id = `crash-${process.pid}`;
    const child: PeerProcess = new PeerProcess({
      name: 'registering child process',
      command: process.execPath,
      args: [CHILD, DIST, etcd.endpoint, 'crash-svc', id, String(TEST_TTL_S)],
      ready: async () => child.log.includes('registered'),
    });
    children.push(child);
    await child.start();
    await waitFor(() => watch.ids().includes(id), { what: 'child instance discovered' });
    const [kv] = (await reader.client.get(`default/services/crash-svc/${id}`).exec()).kvs;
    const lease = BigInt(kv.lease).toString(16);
    expect(lease).not.toBe('0');

    child.signal('SIGKILL');
    await child.waitForExit();
    // Patience, not a claim about speed: the TTL, twice over, plus etcd's lease sweep on a loaded machine.
    await waitFor(() => watch.last?.state === 'empty', {
      what: 'key expired',
      timeoutMs: 2 * TEST_TTL_S * 1000 + 5_000,
    });
    expect(watch.last!.diff.removed.map((e) => e.instance.id)).toEqual([id]);
    // Nobody deleted it: the key went with its lease, which etcd let expire.
    expect(etcd.etcdctl(['lease', 'timetolive', lease])).toMatch(/already expired/);
  });
});
