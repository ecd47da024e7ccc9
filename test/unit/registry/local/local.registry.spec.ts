import { mkdtemp, readdir, readFile, rename, rm, unlink, writeFile, mkdir } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Subscription } from 'rxjs';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { resolveDiscoveryConfig } from '../../../../lib/core/config/resolve-discovery-config.js';
import { ClosedError, RegistrationError } from '../../../../lib/core/errors.js';
import {
  createServiceInstance,
  toSeedRecord,
  withChanges,
  type ServiceInstanceInput,
} from '../../../../lib/core/service-instance.js';
import { createRegistry } from '../../../../lib/registry/create-registry.js';
import {
  LocalRegistry,
  pathSegment,
  type LocalRegistryOptions,
} from '../../../../lib/registry/local/local.registry.js';
import type { Registration, RegistrationEvent } from '../../../../lib/registry/registry.interface.js';
import { waitFor } from '../../../support/wait-for.js';
import { collect, hasExactly, recordingLogger } from './local-test-kit.js';

const LONG = { ttlMs: 30_000, heartbeatMs: 10_000 };
// Far beyond every wait below: a change seen in time was seen through fs.watch, not the fallback rescan.
const NO_FALLBACK = 600_000;

let root: string;
let dir: string;
const registries: LocalRegistry[] = [];
const subscriptions: Subscription[] = [];

function registry(options: LocalRegistryOptions = {}): LocalRegistry {
  const r = new LocalRegistry({ dir, logger: recordingLogger(), ...options });
  registries.push(r);
  return r;
}

function instance(id: string, extra: Partial<ServiceInstanceInput> = {}) {
  return createServiceInstance({ service: 'orders', id, address: `127.0.0.1:${5000 + id.length}`, ...extra });
}

/** Writes an instance file the way an operator (or a crashed process) would leave it. */
async function writeInstanceFile(
  name: string,
  record: object | string,
  namespace = 'default',
  service = 'orders',
): Promise<string> {
  const folder = join(dir, namespace, service);
  await mkdir(folder, { recursive: true });
  const file = join(folder, name);
  await writeFile(file, typeof record === 'string' ? record : JSON.stringify(record));
  return file;
}

beforeEach(async () => {
  root ??= await mkdtemp(join(tmpdir(), 'switchyard-local-'));
  dir = await mkdtemp(join(root, 'case-'));
});

afterEach(async () => {
  for (const s of subscriptions.splice(0)) s.unsubscribe();
  await Promise.all(registries.splice(0).map((r) => r.close()));
});

afterAll(async () => {
  if (root) await rm(root, { recursive: true, force: true });
});

describe('LocalRegistry: registration seen by other registries', () => {
  it('shows a registration to a watcher of another registry through fs events, also when the service folder did not exist yet', async () => {
    const watcher = collect(registry({ rescanMs: NO_FALLBACK }).watch({ service: 'orders' }), subscriptions);
    await waitFor(() => watcher.last()?.resolved, { what: 'first answer' });
    expect(watcher.last()!.state).toBe('empty');

    const writer = registry();
    await writer.register(instance('a'), LONG);
    const registeredAt = Date.now();
    await waitFor(() => hasExactly(watcher, ['a']), { timeoutMs: 5_000, what: 'instance a via fs.watch' });
    // The fallback rescan is off, so only an fs event can explain the arrival.
    const arrival = watcher.last()!.updatedAt - registeredAt;
    expect(arrival).toBeLessThan(5_000);

    // Now the folder exists: the watcher watches it directly.
    await writer.register(instance('b'), LONG);
    await waitFor(() => hasExactly(watcher, ['a', 'b']), { timeoutMs: 5_000, what: 'instance b via fs.watch' });
    expect(watcher.last()!.state).toBe('ok');
    expect(watcher.last()!.diff.added.map((e) => e.instance.id)).toEqual(['b']);
  });

  it('starts watching before the registry folder itself exists', async () => {
    dir = join(dir, 'created-later');
    const watcher = collect(registry({ rescanMs: NO_FALLBACK }).watch({ service: 'orders' }), subscriptions);
    await waitFor(() => watcher.last()?.resolved, { what: 'first answer' });
    expect(watcher.last()!.state).toBe('empty');
    await registry().register(instance('late'), LONG);
    await waitFor(() => hasExactly(watcher, ['late']), { timeoutMs: 5_000, what: 'instance in a new folder' });
  });

  it('drops a deregistered instance and shows updates as a new version', async () => {
    const writer = registry();
    const a = await writer.register(instance('a', { version: '1.0.0' }), LONG);
    await writer.register(instance('b'), LONG);
    const watcher = collect(registry({ rescanMs: NO_FALLBACK }).watch({ service: 'orders' }), subscriptions);
    await waitFor(() => hasExactly(watcher, ['a', 'b']), { what: 'both instances' });

    await a.update(withChanges(a.instance, { version: '1.1.0', tags: { tier: 'gold' } }));
    await waitFor(() => watcher.last()?.instances.find((i) => i.id === 'a')?.version === '1.1.0', {
      timeoutMs: 5_000,
      what: 'update',
    });
    const updated = watcher.last()!;
    expect(updated.diff.updated.map((e) => e.instance.id)).toEqual(['a']);
    expect(updated.get(updated.diff.updated[0].key)!.instance.tags).toEqual({ tier: 'gold' });

    await a.deregister();
    await a.deregister(); // idempotent
    await waitFor(() => hasExactly(watcher, ['b']), { timeoutMs: 5_000, what: 'a gone' });
    expect(watcher.last()!.diff.removed.map((e) => e.instance.id)).toEqual(['a']);
    expect(await readdir(join(dir, 'default', 'orders'))).toEqual(['b.json']);
  });

  it('does not emit when a heartbeat rewrites a file without changing the instance', async () => {
    const writer = registry();
    const a = await writer.register(instance('a'), LONG);
    const watcher = collect(registry({ rescanMs: NO_FALLBACK }).watch({ service: 'orders' }), subscriptions);
    await waitFor(() => hasExactly(watcher, ['a']));
    const before = watcher.sets.length;
    for (let i = 0; i < 3; i++) await a.heartbeat();
    // A later, visible change proves the watcher processed the heartbeats before it.
    await writer.register(instance('b'), LONG);
    await waitFor(() => hasExactly(watcher, ['a', 'b']), { timeoutMs: 5_000 });
    expect(watcher.sets.length).toBe(before + 1);
  });

  it('stores the seed JSON record plus TTL, heartbeat and owner in <dir>/<namespace>/<service>/<id>.json', async () => {
    const me = instance('a', {
      namespace: 'production',
      version: 'v1.0.0',
      tags: { env: 'prod' },
      metadata: { zone: 'z1' },
    });
    const before = Date.now();
    await registry().register(me, { ttlMs: 9_000, heartbeatMs: 3_000 });
    const record = JSON.parse(await readFile(join(dir, 'production', 'orders', 'a.json'), 'utf8'));
    expect(record).toMatchObject({ ...toSeedRecord(me), ttl_ms: 9_000, owner: { pid: process.pid } });
    expect(record.heartbeat_at).toBeGreaterThanOrEqual(before);
    expect(record.owner.token).toEqual(expect.any(String));
  });

  it('keeps odd namespaces and ids inside the folder', async () => {
    const odd = createServiceInstance({
      service: 'orders',
      id: '..',
      namespace: '../../escape',
      address: '127.0.0.1:7000',
    });
    const registration = await registry().register(odd, LONG);
    const path = (registration as unknown as { path: string }).path;
    expect(path.startsWith(dir)).toBe(true);
    expect(path).toBe(join(dir, pathSegment('../../escape'), 'orders', `${pathSegment('..')}.json`));
    const watcher = collect(registry().watch({ service: 'orders', namespace: '../../escape' }), subscriptions);
    await waitFor(() => hasExactly(watcher, ['..']));
    const longId = 'x'.repeat(256);
    const long = await registry().register(
      createServiceInstance({ service: 'orders', id: longId, address: '127.0.0.1:7001' }),
      LONG,
    );
    expect(existsSync((long as unknown as { path: string }).path)).toBe(true);
  });

  it('is what createRegistry builds for backend "local", with backend_config.dir', async () => {
    const config = resolveDiscoveryConfig({ backend: 'local', backendConfig: { dir }, registration: { ttl: 12 } });
    const built = await createRegistry(config, recordingLogger());
    registries.push(built as LocalRegistry);
    expect(built).toBeInstanceOf(LocalRegistry);
    expect((built as LocalRegistry).dir).toBe(dir);
    expect(built.readOnly).toBe(false);
  });
});

describe('LocalRegistry: filters', () => {
  it('applies namespace, semver version range and tag filters', async () => {
    const writer = registry();
    await writer.register(instance('gold-1', { namespace: 'prod', version: 'v1.2.3', tags: { tier: 'gold' } }), LONG);
    await writer.register(instance('gold-old', { namespace: 'prod', version: 'v1.1.0', tags: { tier: 'gold' } }), LONG);
    await writer.register(instance('silver', { namespace: 'prod', version: 'v1.3.0', tags: { tier: 'silver' } }), LONG);
    await writer.register(instance('gold-dev', { namespace: 'dev', version: 'v1.2.3', tags: { tier: 'gold' } }), LONG);
    await writer.register(
      instance('gold-2', { namespace: 'prod', version: '1.4.0', tags: { tier: 'gold-plus' } }),
      LONG,
    );

    const reader = registry();
    const exact = collect(
      reader.watch({
        service: 'orders',
        namespace: 'prod',
        version: '^1.2.0',
        versionFormat: 'semver',
        versionRouting: true,
        tags: [{ key: 'tier', value: 'gold' }],
      }),
      subscriptions,
    );
    const prefix = collect(
      reader.watch({ service: 'orders', namespace: 'prod', tags: [{ key: 'tier', value: 'gold', pattern: 'prefix' }] }),
      subscriptions,
    );
    const plain = collect(reader.watch({ service: 'orders', namespace: 'dev', version: 'v1.2.3' }), subscriptions);
    const none = collect(reader.watch({ service: 'orders', namespace: 'staging' }), subscriptions);
    await waitFor(() => exact.last() && prefix.last() && plain.last() && none.last());
    expect(exact.ids()).toEqual(['gold-1']);
    expect(prefix.ids()).toEqual(['gold-1', 'gold-2', 'gold-old']);
    expect(plain.ids()).toEqual(['gold-dev']);
    expect(none.last()!.state).toBe('empty');
  });
});

describe('LocalRegistry: TTL, duplicates and bad files', () => {
  it('refuses a second live registration of the same id, naming the file and the holder', async () => {
    await registry().register(instance('dup'), LONG);
    const second = registry().register(instance('dup', { address: '127.0.0.1:6000' }), LONG);
    await expect(second).rejects.toThrow(RegistrationError);
    await expect(second).rejects.toThrow(/'dup' is already registered by a live instance .*127\.0\.0\.1:5003.*pid \d+/);
    await expect(second).rejects.toThrow(join(dir, 'default', 'orders', 'dup.json'));
    // In the same registry too.
    const same = registries[0];
    await expect(same.register(instance('dup'), LONG)).rejects.toThrow(/already registered/);
  });

  it('takes over the id of an expired instance file', async () => {
    const file = await writeInstanceFile('old.json', {
      ...toSeedRecord(instance('old', { address: '127.0.0.1:1111' })),
      ttl_ms: 1_000,
      heartbeat_at: Date.now() - 10_000,
    });
    await registry().register(instance('old', { address: '127.0.0.1:2222' }), LONG);
    expect(JSON.parse(await readFile(file, 'utf8')).address).toBe('127.0.0.1:2222');
  });

  it('stops serving an instance when its heartbeat is older than its TTL, then sweeps the file', async () => {
    const logger = recordingLogger();
    const watcher = collect(
      registry({ rescanMs: NO_FALLBACK, sweepGraceMs: 200, logger }).watch({ service: 'orders' }),
      subscriptions,
    );
    await registry().register(instance('live'), LONG);
    const file = await writeInstanceFile('dying.json', {
      ...toSeedRecord(instance('dying')),
      ttl_ms: 600,
      heartbeat_at: Date.now(),
    });
    await waitFor(() => hasExactly(watcher, ['dying', 'live']), { timeoutMs: 5_000 });
    // No fallback rescan and no file event: only the expiry timer can notice.
    await waitFor(() => hasExactly(watcher, ['live']), { timeoutMs: 5_000, what: 'expiry of dying' });
    expect(watcher.last()!.diff.removed.map((e) => e.instance.id)).toEqual(['dying']);
    await waitFor(() => !existsSync(file), { timeoutMs: 5_000, what: 'sweep of dying.json' });
    expect(logger.logs.some((m) => m.includes("removed expired instance 'dying'"))).toBe(true);
  });

  it('does not serve a file that was already expired when first read', async () => {
    await writeInstanceFile('ghost.json', {
      ...toSeedRecord(instance('ghost')),
      ttl_ms: 1_000,
      heartbeat_at: Date.now() - 60_000,
    });
    await registry().register(instance('real'), LONG);
    const watcher = collect(registry({ sweepGraceMs: 60_000 }).watch({ service: 'orders' }), subscriptions);
    await waitFor(() => watcher.last()?.resolved);
    expect(watcher.ids()).toEqual(['real']);
  });

  it('skips corrupt files with one warning per file version, naming the file, and serves the others', async () => {
    const logger = recordingLogger();
    const bad = await writeInstanceFile('bad.json', '{ not json');
    const badAddress = await writeInstanceFile('bad-address.json', {
      ...toSeedRecord(instance('x')),
      instance_id: 'bad-address',
      address: 'not-an-address',
    });
    const writer = registry();
    await writer.register(instance('good'), LONG);
    const watcher = collect(registry({ logger, rescanMs: 50 }).watch({ service: 'orders' }), subscriptions);
    await waitFor(() => hasExactly(watcher, ['good']));
    // Several rescans (each visible as an emission) must not repeat the warnings.
    for (const id of ['t1', 't2', 't3']) {
      const r = await writer.register(instance(id), LONG);
      await waitFor(() => watcher.ids().includes(id), { timeoutMs: 5_000 });
      await r.deregister();
      await waitFor(() => !watcher.ids().includes(id), { timeoutMs: 5_000 });
    }
    const about = (file: string) => logger.warnings.filter((w) => w.includes(file));
    expect(about(bad)).toHaveLength(1);
    expect(about(bad)[0]).toMatch(/skipping instance file .*bad\.json.*not valid JSON/);
    expect(about(badAddress)).toHaveLength(1);
    expect(about(badAddress)[0]).toMatch(/bad-address\.json.*"not-an-address"/);
    expect(watcher.ids()).toEqual(['good']);

    // A new version of the bad file is a new problem: warned once more.
    await writeFile(bad, '[1, 2');
    await waitFor(() => about(bad).length === 2, { timeoutMs: 5_000, what: 'second warning' });
    // Fixed by hand: served.
    await writeFile(
      bad,
      JSON.stringify({ ...toSeedRecord(instance('fixed')), heartbeat_at: Date.now(), ttl_ms: 30_000 }),
    );
    await waitFor(() => hasExactly(watcher, ['fixed', 'good']), { timeoutMs: 5_000 });
  });
});

describe('LocalRegistry: outages and unusable folders', () => {
  it('rejects registration in a folder that cannot be created, naming the folder', async () => {
    const plainFile = join(dir, 'plain-file');
    await writeFile(plainFile, 'not a folder');
    const unusable = join(plainFile, 'registry');
    const attempt = registry({ dir: unusable }).register(instance('a'), LONG);
    await expect(attempt).rejects.toThrow(RegistrationError);
    await expect(attempt).rejects.toThrow(unusable);
    await expect(attempt).rejects.toThrow(/ENOTDIR/);
  });

  it('serves "stale" when the folder is not readable, and "empty" when only the service folder is missing', async () => {
    const plainFile = join(dir, 'plain-file');
    await writeFile(plainFile, 'not a folder');
    const broken = registry({ dir: join(plainFile, 'registry') });
    const unreadable = collect(broken.watch({ service: 'orders' }), subscriptions);
    await waitFor(() => unreadable.last());
    expect(unreadable.last()!.state).toBe('stale');
    expect(unreadable.last()!.reason).toContain(join(plainFile, 'registry'));
    expect(unreadable.last()!.resolved).toBe(false);
    // The folder is the local backend's source: it is unreachable while it cannot be read.
    expect(broken.reachability.current).toMatchObject({ reachable: false, reason: unreadable.last()!.reason });
    expect(await broken.reachability.probe()).toMatchObject({ reachable: false });
    expect(await registry({ dir: join(plainFile, 'registry') }).reachability.probe()).toMatchObject({
      reachable: false,
      reason: expect.stringMatching(/plain-file.registry' is not readable \(ENOTDIR/),
    });

    const healthy = registry();
    const missing = collect(healthy.watch({ service: 'unknown' }), subscriptions);
    await waitFor(() => missing.last());
    expect(missing.last()!.state).toBe('empty');
    expect(missing.last()!.resolved).toBe(true);
    expect(healthy.reachability.current.reachable).toBe(true);
    // A folder not created yet is fine: its nearest existing parent can be read.
    expect(await registry({ dir: join(dir, 'not', 'yet') }).reachability.probe()).toMatchObject({ reachable: true });
  });

  it('keeps the last known endpoints, marked stale, while the folder is unreadable, and recovers', async () => {
    const base = join(dir, 'shared');
    await registry({ dir: base }).register(instance('a'), LONG);
    const logger = recordingLogger();
    const watcher = collect(registry({ dir: base, rescanMs: 100, logger }).watch({ service: 'orders' }), subscriptions);
    await waitFor(() => hasExactly(watcher, ['a']));
    await rename(base, `${base}.away`);
    await writeFile(base, 'a file where the folder was');
    await waitFor(() => watcher.last()?.state === 'stale', { timeoutMs: 5_000, what: 'stale' });
    expect(watcher.ids()).toEqual(['a']);
    expect(logger.warnings.some((w) => w.includes(base) && w.includes('not readable'))).toBe(true);
    const staleCount = watcher.sets.filter((s) => s.state === 'stale').length;
    await unlink(base);
    await rename(`${base}.away`, base);
    await waitFor(() => watcher.last()?.state === 'ok', { timeoutMs: 5_000, what: 'recovery' });
    expect(watcher.ids()).toEqual(['a']);
    expect(staleCount).toBe(1); // stale emitted once, not per rescan
    expect(registries.at(-1)!.reachability.current.reachable).toBe(true);
  });
});

describe('LocalRegistry: heartbeats', () => {
  it('re-creates its file when it is deleted behind its back, emitting lost then restored', async () => {
    const registration = await registry().register(instance('hb'), { ttlMs: 3_000, heartbeatMs: 100 });
    const events: RegistrationEvent[] = [];
    registration.events$.subscribe((e) => events.push(e));
    const file = join(dir, 'default', 'orders', 'hb.json');
    const watcher = collect(registry().watch({ service: 'orders' }), subscriptions);
    await waitFor(() => hasExactly(watcher, ['hb']));
    const firstBeat = JSON.parse(await readFile(file, 'utf8')).heartbeat_at;
    await waitFor(async () => JSON.parse(await readFile(file, 'utf8')).heartbeat_at > firstBeat, {
      what: 'a heartbeat rewrite',
    });

    await unlink(file);
    await waitFor(() => events.length >= 2, { timeoutMs: 5_000, what: 'lost and restored' });
    expect(events.map((e) => e.type)).toEqual(['lost', 'restored']);
    expect(events[0]).toMatchObject({ type: 'lost', reason: expect.stringContaining('was removed') });
    expect(existsSync(file)).toBe(true);
    await waitFor(() => hasExactly(watcher, ['hb']), { timeoutMs: 5_000 });
  });

  it('stands back while another live registration holds its id, and reclaims it when that one expires', async () => {
    const mine = await registry().register(instance('shared-id'), { ttlMs: 2_000, heartbeatMs: 500 });
    const events: RegistrationEvent[] = [];
    mine.events$.subscribe((e) => events.push(e));
    const file = join(dir, 'default', 'orders', 'shared-id.json');
    const intruder = {
      ...toSeedRecord(instance('shared-id', { address: '127.0.0.1:9999' })),
      ttl_ms: 1_000,
      heartbeat_at: Date.now(),
      owner: { token: 'someone-else', pid: 1 },
    };
    await writeFile(file, JSON.stringify(intruder));
    await mine.heartbeat();
    expect(events.map((e) => e.type)).toEqual(['lost']);
    expect(JSON.parse(await readFile(file, 'utf8')).address).toBe('127.0.0.1:9999');
    await waitFor(() => events.length === 2, { timeoutMs: 5_000, what: 'reclaim after the intruder expired' });
    expect(events[1].type).toBe('restored');
    expect(JSON.parse(await readFile(file, 'utf8')).address).toBe(mine.instance.address);
  });

  it('refuses bad timing', async () => {
    await expect(registry().register(instance('t'), { ttlMs: 1_000, heartbeatMs: 1_000 })).rejects.toThrow(
      /heartbeatMs < ttlMs/,
    );
  });
});

describe('LocalRegistry: close', () => {
  it('with deregisterOnClose false (deregister_on_shutdown = false), stops heartbeats and leaves the files to expire', async () => {
    const r = registry({ deregisterOnClose: false });
    await r.register(instance('kept'), LONG);
    await r.close();
    expect(await readdir(join(dir, 'default', 'orders'))).toEqual(['kept.json']);
    const other = collect(registry().watch({ service: 'orders' }), subscriptions);
    await waitFor(() => hasExactly(other, ['kept']));
  });

  it('removes every instance it registered, completes its watches and refuses new work', async () => {
    const r = registry();
    const registrations: Registration[] = [
      await r.register(instance('c1'), LONG),
      await r.register(instance('c2'), LONG),
    ];
    const own = collect(r.watch({ service: 'orders' }), subscriptions);
    const other = collect(registry().watch({ service: 'orders' }), subscriptions);
    await waitFor(() => hasExactly(other, ['c1', 'c2']) && hasExactly(own, ['c1', 'c2']));
    let completedEvents = 0;
    for (const reg of registrations) reg.events$.subscribe({ complete: () => completedEvents++ });
    await r.close();
    expect(own.completed).toBe(true);
    expect(completedEvents).toBe(2);
    expect(await readdir(join(dir, 'default', 'orders'))).toEqual([]);
    await waitFor(() => other.last()?.state === 'empty', { timeoutMs: 5_000 });
    await expect(r.register(instance('c3'), LONG)).rejects.toThrow(ClosedError);
    const late = collect(r.watch({ service: 'orders' }), subscriptions);
    expect(late.completed).toBe(true);
    expect(late.sets).toEqual([]);
  });
});
