import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { EtcdRegistry } from '../../../lib/registry/etcd/etcd.registry.js';
import { toCrateRecord } from '../../../lib/registry/etcd/etcd-seed-layouts.js';
import { EtcdPeer } from '../../support/peers/etcd.js';
import { waitFor } from '../../support/wait-for.js';
import { CapturingLogger, openRegistry, Recorder, testInstance } from './etcd-test-kit.js';

// A registry client that never storms itself: bounded reads, paged ranges,
// one watch stream for every prefix, and a slow reply that costs one
// request, not every watch.
describe('etcd backend at scale', () => {
  let etcd: EtcdPeer;
  const opened: EtcdRegistry[] = [];
  const recorders: Recorder[] = [];

  async function open() {
    const registry = await openRegistry(etcd.endpoints, {}, new CapturingLogger());
    opened.push(registry);
    return registry;
  }

  /** Counts range reads in flight on `registry`'s client, keeping the highest count seen. */
  function countReads(registry: EtcdRegistry) {
    const kv = registry.client.kv;
    const range = kv.range.bind(kv);
    const counts = { inFlight: 0, max: 0, total: 0, keys: [] as string[] };
    kv.range = (...args: Parameters<typeof range>) => {
      counts.inFlight++;
      counts.total++;
      counts.keys.push(String(args[0].key));
      counts.max = Math.max(counts.max, counts.inFlight);
      return range(...args).finally(() => counts.inFlight--);
    };
    return counts;
  }

  /** Puts `count` crate records of `service` straight into etcd, 100 per transaction. */
  async function putInstances(registry: EtcdRegistry, service: string, count: number, from = 0) {
    for (let start = from; start < from + count; start += 100) {
      const txn = registry.client.if('version-probe', 'Version', '>', -1);
      const ops = [];
      for (let i = start; i < Math.min(from + count, start + 100); i++) {
        const instance = testInstance(service, { id: `${service}-${i}`, address: `10.1.${i >> 8}.${i & 255}:50051` });
        ops.push(
          registry.client
            .put(`default/services/${service}/${instance.id}`)
            .value(JSON.stringify(toCrateRecord(instance))),
        );
      }
      await txn
        .then(...ops)
        .else(...ops)
        .commit();
    }
  }

  /** The watch stream and watcher gauges etcd exports on /metrics. */
  async function watchGauges() {
    const text = await (await fetch(`${etcd.endpoint}/metrics`)).text();
    const gauge = (name: string) => Number(new RegExp(`^${name} (\\d+)`, 'm').exec(text)?.[1] ?? NaN);
    return {
      streams: gauge('etcd_debugging_mvcc_watch_stream_total'),
      watchers: gauge('etcd_debugging_mvcc_watcher_total'),
    };
  }

  beforeAll(async () => {
    etcd = await EtcdPeer.start();
  });
  afterEach(async () => {
    for (const r of recorders.splice(0)) r.stop();
    await Promise.all(opened.splice(0).map((r) => r.close()));
  });
  afterAll(async () => {
    await etcd?.stop();
  });

  it('reads a prefix larger than a page in pages at one revision', async () => {
    const writer = await open();
    await putInstances(writer, 'paged', 2_500);
    const reader = await open();
    const reads = countReads(reader);
    const watch = new Recorder(reader.watch({ service: 'paged' }));
    recorders.push(watch);
    await waitFor(() => watch.last?.size === 2_500, { what: 'every instance of the paged prefix', timeoutMs: 15_000 });
    // Three pages of the service's root (1,000 keys each).
    expect(reads.keys.filter((key) => key.startsWith('default/services/paged/'))).toHaveLength(3);
    await putInstances(writer, 'paged', 1, 2_500);
    await waitFor(() => watch.last?.size === 2_501, { what: 'a change after the paged read' });
  });

  it('reads at most 16 prefixes at a time when 300 services are watched at once, all on one watch stream', async () => {
    const writer = await open();
    for (let s = 0; s < 300; s += 30)
      await Promise.all(Array.from({ length: 30 }, (_, i) => putInstances(writer, `many-${s + i}`, 3)));
    const before = await watchGauges();
    const reader = await open();
    const reads = countReads(reader);
    const watches = Array.from({ length: 300 }, (_, i) => new Recorder(reader.watch({ service: `many-${i}` })));
    recorders.push(...watches);
    await waitFor(() => watches.every((w) => w.last?.size === 3), { what: 'all 300 services read', timeoutMs: 20_000 });
    // Three roots per service in the default layout: 900 prefixes, never more than 16 read at once.
    expect(reads.total).toBeGreaterThanOrEqual(900);
    expect(reads.max).toBeLessThanOrEqual(16);
    await waitFor(
      async () => {
        const now = await watchGauges();
        return now.watchers - before.watchers >= 900 ? now : undefined;
      },
      { what: "900 watchers on etcd's side", timeoutMs: 20_000 },
    );
    const now = await watchGauges();
    expect(now.streams - before.streams).toBe(1);
  });

  it('a read that misses its deadline because this process was busy is retried, and no set goes stale', async () => {
    const writer = await open();
    const reader = await openRegistry(etcd.endpoints, { requestTimeout: 0.2 }, new CapturingLogger());
    opened.push(reader);
    const registration = await writer.register(testInstance('busy-client'), { ttlMs: 10_000, heartbeatMs: 3_000 });
    const reads = countReads(reader);
    const other = new Recorder(reader.watch({ service: 'busy-other' }));
    recorders.push(other);
    await waitFor(() => other.last?.state === 'empty', { what: 'a first watch answered' });
    // The read starts, then this process is busy for twice the request deadline (as a client
    // decoding a thousand start-up replies is): the deadline passes before the answer is read.
    const watch = new Recorder(reader.watch({ service: 'busy-client' }));
    recorders.push(watch);
    const until = performance.now() + 400;
    while (performance.now() < until);
    await waitFor(() => watch.last?.size === 1, { what: 'the read retried' });
    expect(reads.total).toBeGreaterThan(3 + 3);
    expect([...watch.sets, ...other.sets].filter((s) => s.state === 'stale')).toEqual([]);
    expect(reader.reachability.current.reachable).toBe(true);
    await registration.deregister();
  });

  it('after etcd restarts, 300 services re-read at most 16 at a time and all come back', async () => {
    const writer = await open();
    const reader = await open();
    const watches = Array.from({ length: 300 }, (_, i) => new Recorder(reader.watch({ service: `many-${i}` })));
    recorders.push(...watches);
    await waitFor(() => watches.every((w) => w.last?.size === 3), { what: 'all 300 services read', timeoutMs: 20_000 });
    const reads = countReads(reader);
    await etcd.members[0].restart();
    await waitFor(() => watches.every((w) => w.last?.state === 'stale') || reads.total > 0, {
      what: 'the outage noticed',
      timeoutMs: 10_000,
    });
    await putInstances(writer, 'many-7', 1, 100);
    await waitFor(() => watches.every((w) => w.last?.state === 'ok') && watches[7].last?.size === 4, {
      what: 'every service current again',
      timeoutMs: 30_000,
    });
    expect(reads.max).toBeLessThanOrEqual(16);
  });
});
