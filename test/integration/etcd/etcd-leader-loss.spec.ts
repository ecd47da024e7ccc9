import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Discovery, type EndpointSet } from '../../../lib/index.js';
import { helloThrough } from '../../faults/support/fault-harness.js';
import { LoadGenerator } from '../../faults/support/load-generator.js';
import { ServiceProcess } from '../../faults/support/service-process.js';
import { EtcdPeer } from '../../support/peers/etcd.js';
import { waitFor } from '../../support/wait-for.js';

// A 3-member etcd whose leader is SIGKILLed while a client calls three
// instances 200 times a second, each instance in its own process keeping a
// 5 s lease (heartbeat 1.7 s, shorter than an election and its handover).
// Losing one member of three is not an outage: no lease may be lost (the
// keepalive moves to a live member within the election), no endpoint set
// may go stale (the watch resumes on another member; the probe finds two
// members answering), and no call may fail.
describe('etcd backend: the leader of 3 members killed under load', () => {
  let cluster: EtcdPeer;
  const instances: ServiceProcess[] = [];
  let discovery: Discovery | undefined;

  beforeAll(async () => {
    cluster = await EtcdPeer.start({ size: 3 });
  });
  afterEach(async () => {
    await discovery?.close();
    discovery = undefined;
    await Promise.all(instances.splice(0).map((i) => i.stop()));
  });
  afterAll(async () => {
    await cluster?.stop();
  });

  it('loses no lease, serves no stale set and fails no call', async () => {
    const options = {
      backend: 'etcd' as const,
      backendConfig: { endpoints: cluster.endpoints },
      registration: { ttl: 5 },
      loadBalance: 'round_robin' as const,
    };
    for (const id of ['a', 'b', 'c'])
      instances.push(
        await ServiceProcess.start({ id: `leader-loss-${id}`, service: 'leader-loss', discovery: options }),
      );
    discovery = await Discovery.create(options, { logger: { log() {}, warn() {}, error() {} } });
    const client = discovery.client({
      name: 'leader-loss',
      retry: { maxAttempts: 3, initialBackoffMs: 25, maxBackoffMs: 250 },
    });
    await client.ready({ minEndpoints: 3, timeoutMs: 15_000 });
    const sets: EndpointSet[] = [];
    const subscription = client.endpoints$.subscribe((set) => sets.push(set));
    const load = new LoadGenerator(() => helloThrough(client), { ratePerSecond: 200 }).start();
    try {
      await waitFor(() => load.completed >= 200, { what: 'a second of calls before the kill', timeoutMs: 10_000 });
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
      // Past two TTLs after the kill: any lease not kept alive through the election has expired by now.
      await waitFor(() => Date.now() - killedAt > 2 * 5_000 + 1_000, { timeoutMs: 15_000, intervalMs: 100 });
    } finally {
      subscription.unsubscribe();
      await load.stop();
    }
    for (const instance of instances) expect(instance.log, instance.id).not.toMatch(/EVENT lost/);
    expect(sets.filter((s) => s.state !== 'ok').map((s) => `${s.state}: ${s.reason}`)).toEqual([]);
    expect(client.snapshot().size).toBe(3);
    const failed = load.records.filter((r) => !r.ok);
    expect(failed.map((r) => r.error)).toEqual([]);
    expect(load.completed).toBeGreaterThan(2_000);
  });
});
