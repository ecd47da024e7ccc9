import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { EtcdRegistry } from '../../../lib/registry/etcd/etcd.registry.js';
import type { RegistrationEvent } from '../../../lib/registry/registry.interface.js';
import { EtcdPeer } from '../../support/peers/etcd.js';
import { waitFor } from '../../support/wait-for.js';
import { openRegistry, Recorder, testInstance } from './etcd-test-kit.js';

// A 3-member cluster on loopback: losing the leader must not lose
// registrations or watches (the client fails over to the other members).
describe('etcd backend: 3-member cluster', () => {
  let cluster: EtcdPeer;
  const opened: EtcdRegistry[] = [];
  const recorders: Recorder[] = [];
  const timing = { ttlMs: 3_000, heartbeatMs: 1_000 };

  beforeAll(async () => {
    cluster = await EtcdPeer.start({ size: 3 });
  });
  afterEach(async () => {
    for (const r of recorders.splice(0)) r.stop();
    await Promise.all(opened.splice(0).map((r) => r.close()));
  });
  afterAll(async () => {
    await cluster?.stop();
  });

  it('keeps registrations and watches going when the leader is killed', async () => {
    const writer = await openRegistry(cluster.endpoints, {}, undefined, { registration: { ttl: 3 } });
    const reader = await openRegistry(cluster.endpoints, {}, undefined, { registration: { ttl: 3 } });
    opened.push(writer, reader);
    const first = testInstance('cluster-svc');
    const registration = await writer.register(first, timing);
    const events: RegistrationEvent[] = [];
    registration.events$.subscribe((e) => events.push(e));
    const watch = new Recorder(reader.watch({ service: 'cluster-svc' }));
    recorders.push(watch);
    await waitFor(() => watch.ids().includes(first.id), { what: 'first instance discovered' });

    const leader = await waitFor(
      () => {
        const index = cluster.leaderIndex();
        return index >= 0 ? { index } : undefined;
      },
      { what: 'a leader' },
    );
    await cluster.members[leader.index].kill();
    const killedAt = Date.now();
    await waitFor(
      () => {
        const index = cluster.leaderIndex();
        return index >= 0 && index !== leader.index;
      },
      { what: 'a new leader', timeoutMs: 15_000 },
    );

    // New registrations and their discovery work through the new leader.
    const second = testInstance('cluster-svc');
    const secondRegistration = await waitFor(async () => writer.register(second, timing).catch(() => undefined), {
      what: 'second registration',
      timeoutMs: 10_000,
    });
    await waitFor(() => watch.last?.state === 'ok' && watch.ids().join() === [first.id, second.id].sort().join(), {
      what: 'both instances discovered after the leader loss',
      timeoutMs: 10_000,
    });
    // The first registration outlives two TTLs after the kill (kept alive, or restored at once).
    await waitFor(() => Date.now() - killedAt > 2 * timing.ttlMs, { timeoutMs: 10_000, intervalMs: 50 });
    const client = writer.client;
    const key = `default/services/cluster-svc/${first.id}`;
    expect((await client.get(key).string()) ?? '').toContain(first.id);
    if (events.some((e) => e.type === 'lost')) expect(events.at(-1)!.type).toBe('restored');
    expect(watch.last!.state).toBe('ok');
    expect(watch.ids()).toEqual([first.id, second.id].sort());

    await secondRegistration.deregister();
    await waitFor(() => watch.ids().join() === first.id, { what: 'deregistration seen after the leader loss' });
  });
});
