import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { DnsRegistry } from '../../../lib/registry/dns/dns.registry.js';
import { DnsmasqPeer, ensureDnsmasq } from '../../support/peers/dnsmasq.js';
import { waitFor } from '../../support/wait-for.js';
import { addressesOf, dnsRegistry, record, weightsOf } from './dns-test-kit.js';

const TTL_S = 1;
const FLOOR_S = 1;
// The refresh interval is far above TTL + floor: a change seen before a
// quarter of it has passed proves the record's TTL drove the re-resolve, however loaded
// the machine is (the wait is patience, not a claim about speed).
const REFRESH_INTERVAL_S = 60;
const BEFORE_REFRESH_MS = (REFRESH_INTERVAL_S * 1000) / 4;

describe.skipIf(!ensureDnsmasq().binary)('dns backend, A/AAAA mode, against dnsmasq', () => {
  let dnsmasq: DnsmasqPeer;
  let slowDnsmasq: DnsmasqPeer;
  const registries: DnsRegistry[] = [];

  beforeAll(async () => {
    [dnsmasq, slowDnsmasq] = await Promise.all([
      DnsmasqPeer.start({ hostRecords: ['web.svc.test,127.0.0.5,::5'], localTtl: TTL_S }),
      // Long TTL and a query log: early refreshes must be visible and rate-limited.
      DnsmasqPeer.start({ localTtl: 30, logQueries: true }),
    ]);
  });

  afterEach(async () => {
    await Promise.all(registries.splice(0).map((r) => r.close()));
  });

  afterAll(async () => {
    await Promise.all([dnsmasq?.stop(), slowDnsmasq?.stop()]);
  });

  async function open(peer: DnsmasqPeer, extra: Record<string, unknown> = {}) {
    const made = await dnsRegistry(
      { domain: 'svc.test', nameservers: [peer.nameserver], port: 7000, ttlFloor: FLOOR_S, ...extra },
      { refreshInterval: REFRESH_INTERVAL_S },
    );
    registries.push(made.registry);
    return made;
  }

  it('serves A and AAAA records of {service}.{domain} at the configured port', async () => {
    const { registry } = await open(dnsmasq);
    expect(registry.settings.mode).toBe('address');
    expect(registry.nameFor('web')).toBe('web.svc.test');
    const watch = record(registry, { service: 'web' });
    const first = await waitFor(() => watch.sets[0], { what: 'first answer' });
    expect(first.state).toBe('ok');
    expect(weightsOf(first)).toEqual(['127.0.0.5:7000=1', '[::5]:7000=1']);
  });

  it('shows a record added to or removed from the hosts dir when its TTL runs out, not at the refresh interval, and empty when the last one goes', async () => {
    dnsmasq.writeHosts('app-a', { '127.0.0.11': ['app.svc.test'] });
    const { registry } = await open(dnsmasq);
    const watch = record(registry, { service: 'app' });
    await waitFor(() => addressesOf(watch.last).join() === '127.0.0.11:7000', { what: 'first record' });

    dnsmasq.writeHosts('app-b', { '127.0.0.12': ['app.svc.test'] });
    await waitFor(() => addressesOf(watch.last).join() === '127.0.0.11:7000,127.0.0.12:7000', {
      timeoutMs: BEFORE_REFRESH_MS,
      what: 'the added record',
    });
    const added = watch.last!;
    expect(added.diff.added.map((e) => e.address)).toEqual(['127.0.0.12:7000']);

    dnsmasq.removeHosts('app-a');
    await waitFor(() => addressesOf(watch.last).join() === '127.0.0.12:7000', {
      timeoutMs: BEFORE_REFRESH_MS,
      what: 'the removed record gone',
    });
    expect(watch.last!.diff.removed.map((e) => e.address)).toEqual(['127.0.0.11:7000']);

    dnsmasq.removeHosts('app-b');
    await waitFor(() => watch.last?.state === 'empty', { timeoutMs: BEFORE_REFRESH_MS, what: 'NXDOMAIN as empty' });
    expect(watch.last!.size).toBe(0);
    // Snapshots are only emitted on change: one per step above.
    expect(watch.sets.map((s) => s.size)).toEqual([1, 2, 1, 0]);
  });

  it('reports a name that does not exist as empty, not stale', async () => {
    const { registry } = await open(dnsmasq);
    const watch = record(registry, { service: 'nothing-here' });
    const first = await waitFor(() => watch.sets[0], { what: 'first answer' });
    expect(first.state).toBe('empty');
    expect(first.resolved).toBe(true);
    expect(first.reason).toBeUndefined();
  });

  it('re-resolves early on refresh(), at most once per TTL floor', async () => {
    slowDnsmasq.writeHosts('slow-a', { '127.0.0.21': ['slow.svc.test'] });
    const { registry } = await open(slowDnsmasq);
    const watch = record(registry, { service: 'slow' });
    await waitFor(() => watch.last?.size === 1, { what: 'first answer' });
    await waitFor(() => slowDnsmasq.queryCount('A', 'slow.svc.test') === 1, { what: 'the first query in the log' });

    slowDnsmasq.writeHosts('slow-b', { '127.0.0.22': ['slow.svc.test'] });
    const moved = Array.from({ length: 10 }, () => registry.refresh('slow'));
    expect(moved[0]).toBe(true);
    expect(moved.slice(1).every((m) => m === false)).toBe(true);
    expect(registry.refresh('unknown-service')).toBe(false);

    // TTL is 30 s and the ceiling 60 s: only refresh() can explain an update this soon.
    await waitFor(() => watch.last?.size === 2, { timeoutMs: 5_000, what: 'the refreshed answer' });
    await waitFor(() => slowDnsmasq.queryCount('A', 'slow.svc.test') >= 2, { what: 'the refresh query in the log' });
    expect(slowDnsmasq.queryCount('A', 'slow.svc.test')).toBe(2);
  });
});
