import { Etcd3 } from 'etcd3';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { toSeedRecord } from '../../../lib/core/service-instance.js';
import { RegistrationError } from '../../../lib/core/errors.js';
import type { EtcdRegistry } from '../../../lib/registry/etcd/etcd.registry.js';
import type { RegistrationEvent } from '../../../lib/registry/registry.interface.js';
import { EtcdPeer } from '../../support/peers/etcd.js';
import { waitFor } from '../../support/wait-for.js';
import { CapturingLogger, openRegistry, Recorder, TEST_TIMING, testInstance } from './etcd-test-kit.js';
import { TcpProxy } from './tcp-proxy.js';

// etcd going away in the ways production sees: restart, stall (SIGSTOP),
// partition with compaction meanwhile, down at start-up.
describe('etcd backend: outages', () => {
  let etcd: EtcdPeer;
  const opened: EtcdRegistry[] = [];
  const recorders: Recorder[] = [];
  const proxies: TcpProxy[] = [];
  const raws: Etcd3[] = [];

  async function open(
    endpoints: string[],
    backendConfig: Record<string, unknown> = {},
    logger = new CapturingLogger(),
  ) {
    const registry = await openRegistry(endpoints, backendConfig, logger);
    opened.push(registry);
    return registry;
  }
  function record(registry: EtcdRegistry, service: string) {
    const recorder = new Recorder(registry.watch({ service }));
    recorders.push(recorder);
    return recorder;
  }
  /** A plain etcd3 client for writes "by another process". */
  function raw(): Etcd3 {
    const client = new Etcd3({ hosts: etcd.endpoint });
    raws.push(client);
    return client;
  }
  const seedKey = (service: string, id: string) => `default/services/${service}/${id}`;

  beforeAll(async () => {
    etcd = await EtcdPeer.start();
  });
  afterEach(async () => {
    for (const r of recorders.splice(0)) r.stop();
    await Promise.all(opened.splice(0).map((r) => r.close()));
    await Promise.all(proxies.splice(0).map((p) => p.close()));
    for (const c of raws.splice(0)) c.close();
    // A test that stopped etcd must not leave it stopped for the next one.
    etcd.members[0].signal('SIGCONT');
    if (!etcd.members[0].running) await etcd.members[0].start();
  });
  afterAll(async () => {
    await etcd?.stop();
  });

  it('survives an etcd restart on the same data dir: registration restored, watch resumes with no missed change', async () => {
    const writer = await open([etcd.endpoint]);
    const reader = await open([etcd.endpoint]);
    const mine = testInstance('restart-svc');
    const registration = await writer.register(mine, TEST_TIMING);
    const external = testInstance('restart-svc');
    let client = raw();
    await client.put(seedKey('restart-svc', external.id)).value(JSON.stringify(toSeedRecord(external)));
    const watch = record(reader, 'restart-svc');
    await waitFor(() => watch.ids().length === 2, { what: 'both instances' });

    await etcd.members[0].kill();
    await waitFor(() => watch.last?.state === 'stale', { what: 'stale while etcd is down' });
    expect(watch.ids()).toEqual([mine.id, external.id].sort());
    expect(reader.reachability.current.reachable).toBe(false);

    await etcd.members[0].start();
    // Changes made right after the restart, before the watcher is back.
    client.close();
    client = raw();
    const added = testInstance('restart-svc');
    await client.put(seedKey('restart-svc', added.id)).value(JSON.stringify(toSeedRecord(added)));
    await client.delete().key(seedKey('restart-svc', external.id));

    await waitFor(() => watch.last?.state === 'ok' && watch.ids().join() === [mine.id, added.id].sort().join(), {
      what: 'watch resumed with the changes made during the restart',
      timeoutMs: 15_000,
    });
    await waitFor(async () => (await client.get(seedKey('restart-svc', mine.id)).string()) !== null, {
      what: 'registration present',
    });
    await waitFor(() => reader.reachability.current.reachable && writer.reachability.current.reachable, {
      what: 'both registries reachable again',
    });
    // Every later change keeps arriving.
    await registration.deregister();
    await waitFor(() => watch.ids().join() === added.id, { what: 'deregistration seen after the restart' });
  });

  it('when etcd stalls (SIGSTOP) past 2xTTL: clients are served stale, the lease is lost, and after SIGCONT a new lease puts the key back', async () => {
    const writer = await open([etcd.endpoint]);
    const reader = await open([etcd.endpoint]);
    const mine = testInstance('stall-svc');
    const registration = await writer.register(mine, TEST_TIMING);
    const events: RegistrationEvent[] = [];
    registration.events$.subscribe((e) => events.push(e));
    const states: string[] = [];
    reader.reachability.state$.subscribe((state) => states.push(state.reachable ? 'reachable' : 'unreachable'));
    const watch = record(reader, 'stall-svc');
    await waitFor(() => watch.ids().includes(mine.id), { what: 'instance discovered' });
    const firstLease = (registration as unknown as { lease: string }).lease;
    expect(firstLease).toBeTruthy();

    const member = etcd.members[0];
    member.signal('SIGSTOP');
    const stoppedAt = Date.now();
    await waitFor(() => watch.last?.state === 'stale', { what: 'stale while etcd is stopped', timeoutMs: 5_000 });
    expect(watch.ids()).toEqual([mine.id]);
    expect(watch.last!.reason).toMatch(/unreachable|no answer|broken/);
    await waitFor(() => events.some((e) => e.type === 'lost'), { what: 'lease lost', timeoutMs: 10_000 });
    // Hold the stall past twice the TTL, as the scenario asks.
    await waitFor(() => Date.now() - stoppedAt > 2 * TEST_TIMING.ttlMs + 300, { timeoutMs: 10_000, intervalMs: 50 });
    expect(watch.sets.slice(watch.firstIndex((s) => s.state === 'stale')).every((s) => s.state === 'stale')).toBe(true);

    // Nothing can be restored while etcd is stopped: every event so far is the loss.
    expect(events.map((e) => e.type)).toEqual(['lost']);
    member.signal('SIGCONT');
    await waitFor(() => events.some((e) => e.type === 'restored'), {
      what: 'registration restored',
      timeoutMs: 10_000,
    });
    expect(events.map((e) => e.type)).toEqual(['lost', 'restored']);
    const newLease = (registration as unknown as { lease: string }).lease;
    expect(newLease).toBeTruthy();
    expect(newLease).not.toBe(firstLease);
    const client = raw();
    const kv = await client.get(seedKey('stall-svc', mine.id)).exec();
    expect(kv.kvs[0]?.lease).toBe(newLease);
    await waitFor(() => watch.last?.state === 'ok' && watch.ids().join() === mine.id, { what: 'reader fresh again' });
    // What the health layer sees: reachable, unreachable during the stall, reachable again.
    expect(states.slice(states.indexOf('unreachable'))).toEqual(['unreachable', 'reachable']);
    expect(states).toContain('reachable');
  });

  it('re-reads after compaction past the watcher revision while it was cut off, and emits the removals', async () => {
    const proxy = await TcpProxy.start(etcd.members[0].clientPort);
    proxies.push(proxy);
    const logger = new CapturingLogger();
    const reader = await open([proxy.endpoint], {}, logger);
    const client = raw();
    const [a, b, c] = [testInstance('compact-svc'), testInstance('compact-svc'), testInstance('compact-svc')];
    for (const i of [a, b]) await client.put(seedKey('compact-svc', i.id)).value(JSON.stringify(toSeedRecord(i)));
    const watch = record(reader, 'compact-svc');
    await waitFor(() => watch.ids().length === 2, { what: 'a and b' });

    proxy.cut();
    await waitFor(() => watch.last?.state === 'stale', { what: 'stale while cut off', timeoutMs: 5_000 });
    await client.delete().key(seedKey('compact-svc', a.id));
    await client.put(seedKey('compact-svc', c.id)).value(JSON.stringify(toSeedRecord(c)));
    const { header } = await client.kv.range({ key: Buffer.from('x') });
    await client.kv.compact({ revision: header.revision, physical: true });
    const before = watch.sets.length;

    proxy.restore();
    await waitFor(() => watch.last?.state === 'ok' && watch.ids().join() === [b.id, c.id].sort().join(), {
      what: 'set after re-read',
      timeoutMs: 10_000,
    });
    const after = watch.sets.slice(before);
    expect(after.flatMap((s) => s.diff.removed.map((e) => e.instance.id))).toContain(a.id);
    expect(after.flatMap((s) => s.diff.added.map((e) => e.instance.id))).toContain(c.id);
    await waitFor(() => logger.warnings().some((w) => /compacted/.test(w)), {
      what: 'the cancelled watcher was reported',
    });
    // The new watcher delivers later changes.
    await client.delete().key(seedKey('compact-svc', b.id));
    await waitFor(() => watch.ids().join() === c.id, { what: 'change after the new watch' });
    await client.delete().prefix('default/services/compact-svc/');
  });

  it('starts with etcd unreachable: the app starts, watch serves stale, registration retries until etcd answers', async () => {
    const proxy = await TcpProxy.start(etcd.members[0].clientPort);
    proxies.push(proxy);
    proxy.cut();
    const logger = new CapturingLogger();
    const registry = await open([proxy.endpoint], {}, logger);
    const mine = testInstance('late-svc');
    const registration = await registry.register(mine, TEST_TIMING);
    const events: string[] = [];
    registration.events$.subscribe((e) => events.push(e.type));
    const watch = record(registry, 'late-svc');
    await waitFor(() => watch.last !== undefined, { what: 'first emission' });
    expect(watch.last!.state).toBe('stale');
    expect(watch.last!.resolved).toBe(false);
    expect(watch.last!.reason).toMatch(/registry unreachable/);
    expect(registry.reachability.current).toMatchObject({ reachable: false, reason: expect.any(String) });
    expect(logger.warnings().join('\n')).toMatch(/Could not register late-svc instance .* retrying in the background/);

    proxy.restore();
    await waitFor(() => events.includes('restored'), { what: 'registered once etcd answers', timeoutMs: 10_000 });
    await waitFor(() => watch.last?.state === 'ok' && watch.ids().join() === mine.id, {
      what: 'discovered',
      timeoutMs: 10_000,
    });
    expect(registry.reachability.current.reachable).toBe(true);
  });

  it('with strict set, fails start-up and registration clearly when etcd is unreachable', async () => {
    const proxy = await TcpProxy.start(etcd.members[0].clientPort);
    proxies.push(proxy);
    proxy.cut();
    await expect(openRegistry([proxy.endpoint], { strict: true, dialTimeout: 0.5 })).rejects.toThrow(
      new RegExp(`etcd is unreachable at http://127.0.0.1:${proxy.port} \\(backend_config.strict is set\\)`),
    );
    proxy.restore();
    const registry = await open([proxy.endpoint], { strict: true, dialTimeout: 2 });
    proxy.cut();
    const attempt = registry.register(testInstance('strict-svc'), TEST_TIMING);
    await expect(attempt).rejects.toBeInstanceOf(RegistrationError);
    await expect(attempt).rejects.toThrow(/Could not register strict-svc instance .* \(backend_config.strict is set\)/);
  });
});
