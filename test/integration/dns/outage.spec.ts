import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { findFreePort } from '../../../lib/core/tcp.js';
import type { DnsRegistry } from '../../../lib/registry/dns/dns.registry.js';
import { DnsmasqPeer, ensureDnsmasq } from '../../support/peers/dnsmasq.js';
import { waitFor } from '../../support/wait-for.js';
import { addressesOf, dnsRegistry, record } from './dns-test-kit.js';

const RECORDS = {
  srvHosts: ['_grpc._tcp.api.svc.test,node1.svc.test,50051,0,10', '_grpc._tcp.api.svc.test,node2.svc.test,50052,0,10'],
  hostRecords: ['node1.svc.test,127.0.0.1', 'node2.svc.test,127.0.0.2'],
};

describe.skipIf(!ensureDnsmasq().binary)('dns backend outages, against dnsmasq', () => {
  let dnsmasq: DnsmasqPeer;
  const registries: DnsRegistry[] = [];

  beforeAll(async () => {
    dnsmasq = await DnsmasqPeer.start({ ...RECORDS, localTtl: 1 });
  });

  afterEach(async () => {
    await Promise.all(registries.splice(0).map((r) => r.close()));
  });

  afterAll(async () => {
    await dnsmasq?.stop();
  });

  // refresh_interval 2 s caps the retry backoff, so recovery is quick.
  async function open(nameserver: string, extra: Record<string, unknown> = {}) {
    const made = await dnsRegistry(
      { domain: 'svc.test', nameservers: [nameserver], timeout: 0.3, tries: 1, ...extra },
      { refreshInterval: 2 },
    );
    registries.push(made.registry);
    return made;
  }

  it('serves the last set as stale while the nameserver is stopped, and recovers when it is back', async () => {
    const { registry, logger } = await open(dnsmasq.nameserver);
    const watch = record(registry, { service: 'api' });
    await waitFor(() => watch.last?.state === 'ok', { what: 'first answer' });
    const good = watch.last!;

    await dnsmasq.stopProcess();
    await waitFor(() => watch.last?.state === 'stale', { timeoutMs: 8_000, what: 'stale while dnsmasq is down' });
    const stale = watch.last!;
    expect(addressesOf(stale)).toEqual(addressesOf(good));
    expect(stale.reason).toMatch(/ECONNREFUSED|ETIMEOUT/);
    expect(logger.warnings.some((w) => w.includes("'api' is unreachable"))).toBe(true);
    expect(registry.reachability.current).toMatchObject({ reachable: false, reason: stale.reason });

    await dnsmasq.restart();
    await waitFor(() => watch.last?.state === 'ok', { timeoutMs: 8_000, what: 'recovery' });
    expect(addressesOf(watch.last)).toEqual(addressesOf(good));
    expect(registry.reachability.current.reachable).toBe(true);
    // One stale emission for the whole outage, however many retries failed.
    expect(watch.sets.filter((s) => s.state === 'stale')).toHaveLength(1);
  });

  it('treats query timeouts (nameserver stalled) as transient', async () => {
    const { registry } = await open(dnsmasq.nameserver);
    const watch = record(registry, { service: 'api' });
    await waitFor(() => watch.last?.state === 'ok', { what: 'first answer' });

    dnsmasq.signal('SIGSTOP');
    try {
      await waitFor(() => watch.last?.state === 'stale', { timeoutMs: 8_000, what: 'stale while dnsmasq is stopped' });
      expect(watch.last!.reason).toMatch(/ETIMEOUT/);
      expect(watch.last!.size).toBe(2);
    } finally {
      dnsmasq.signal('SIGCONT');
    }
    await waitFor(() => watch.last?.state === 'ok', { timeoutMs: 8_000, what: 'recovery after SIGCONT' });
    expect(watch.last!.size).toBe(2);
  });

  it('emits stale with no endpoints first when no nameserver answers from the start', async () => {
    const deadPort = await findFreePort();
    const { registry } = await open(`127.0.0.1:${deadPort}`);
    const watch = record(registry, { service: 'api' });
    const first = await waitFor(() => watch.sets[0], { timeoutMs: 5_000, what: 'first emission' });
    expect(first.state).toBe('stale');
    expect(first.resolved).toBe(false);
    expect(first.size).toBe(0);
  });

  it('treats REFUSED (a zone the nameserver does not serve) as transient', async () => {
    const { registry } = await open(dnsmasq.nameserver, { domain: 'elsewhere.test' });
    const watch = record(registry, { service: 'api' });
    const first = await waitFor(() => watch.sets[0], { what: 'first emission' });
    expect(first.state).toBe('stale');
    expect(first.reason).toMatch(/EREFUSED/);
  });

  it('probe() asks the nameservers once: "no such name" is an answer, no answer is unreachable', async () => {
    const { registry } = await open(dnsmasq.nameserver);
    expect(await registry.reachability.probe()).toMatchObject({ reachable: true, reason: undefined });
    const deadPort = await findFreePort();
    const { registry: nobody } = await open(`127.0.0.1:${deadPort}`);
    const state = await nobody.reachability.probe();
    expect(state.reachable).toBe(false);
    expect(state.reason).toMatch(/^DNS query for svc\.test failed: (ECONNREFUSED|ETIMEOUT)/);
  });

  it('stops querying once unsubscribed or closed', async () => {
    const { registry } = await open(dnsmasq.nameserver);
    const a = record(registry, { service: 'api' });
    const b = record(registry, { service: 'api' });
    await waitFor(() => a.last && b.last, { what: 'both answered' });
    a.subscription.unsubscribe();
    await registry.close();
    expect(b.subscription.closed).toBe(true);
    // No watch is left to refresh.
    expect(registry.refresh('api')).toBe(false);
    // A watch opened after close completes at once instead of starting a loop.
    const late = record(registry, { service: 'api' });
    expect(late.subscription.closed).toBe(true);
    expect(late.sets).toHaveLength(0);
  });
});
