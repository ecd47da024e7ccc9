import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { SRV_ZERO_WEIGHT } from '../../../lib/registry/dns/dns-resolution.js';
import type { DnsRegistry } from '../../../lib/registry/dns/dns.registry.js';
import { DnsmasqPeer, ensureDnsmasq } from '../../support/peers/dnsmasq.js';
import { waitFor } from '../../support/wait-for.js';
import { addressesOf, dnsRegistry, record, weightsOf } from './dns-test-kit.js';

const API_SRV = [
  '_grpc._tcp.api.svc.test,node1.svc.test,50051,0,10',
  '_grpc._tcp.api.svc.test,node3.svc.test,50053,0,30',
  '_grpc._tcp.api.svc.test,node2.svc.test,50052,1,50',
];
const OTHER_SRV = [
  '_grpc._tcp.zero.svc.test,node2.svc.test,50061,0,0',
  '_grpc._tcp.zero.svc.test,node4.svc.test,50062,0,20',
  '_grpc._tcp.dual.svc.test,dual.svc.test,50081,0,40',
  // No target: dnsmasq answers target "." ("service decidedly not available", RFC 2782).
  '_grpc._tcp.none.svc.test',
];
const HOST_RECORDS = ['node2.svc.test,127.0.0.2', 'node4.svc.test,127.0.0.4', 'dual.svc.test,127.0.0.8,::8'];

describe.skipIf(!ensureDnsmasq().binary)('dns backend, SRV mode, against dnsmasq', () => {
  let dnsmasq: DnsmasqPeer;
  const registries: DnsRegistry[] = [];

  beforeAll(async () => {
    dnsmasq = await DnsmasqPeer.start({ srvHosts: [...API_SRV, ...OTHER_SRV], hostRecords: HOST_RECORDS, localTtl: 1 });
    // The priority-0 targets live in the hosts dir so a test can make them vanish.
    dnsmasq.writeHosts('group0', { '127.0.0.1': ['node1.svc.test'], '127.0.0.3': ['node3.svc.test'] });
  });

  afterEach(async () => {
    await Promise.all(registries.splice(0).map((r) => r.close()));
  });

  afterAll(async () => {
    await dnsmasq?.stop();
  });

  async function open(extra: Record<string, unknown> = {}) {
    const made = await dnsRegistry({ domain: 'svc.test', nameservers: [dnsmasq.nameserver], ...extra });
    registries.push(made.registry);
    return made;
  }

  it('serves only the lowest-priority group, with SRV weights as endpoint weights', async () => {
    const { registry } = await open();
    const watch = record(registry, { service: 'api' });
    const first = await waitFor(() => watch.sets[0], { what: 'first answer' });
    expect(first.state).toBe('ok');
    expect(first.resolved).toBe(true);
    expect(weightsOf(first)).toEqual(['127.0.0.1:50051=10', '127.0.0.3:50053=30']);
    expect(first.endpoints.every((e) => e.instance.metadata.custom['dns.priority'] === '0')).toBe(true);
    expect(first.endpoints.every((e) => e.instance.namespace === 'default')).toBe(true);
  });

  it('gives instances the namespace the query asked for (DNS has none)', async () => {
    const { registry } = await open();
    const watch = record(registry, { service: 'api', namespace: 'production' });
    const first = await waitFor(() => watch.sets[0], { what: 'first answer' });
    expect(first.size).toBe(2);
    expect(first.endpoints.map((e) => e.instance.namespace)).toEqual(['production', 'production']);
  });

  it('falls back to the next priority group when the first group resolves to nothing, warning about each skipped target', async () => {
    const { registry, logger } = await open();
    const watch = record(registry, { service: 'api' });
    await waitFor(() => watch.last?.size === 2, { what: 'priority-0 group' });
    dnsmasq.removeHosts('group0');
    await waitFor(() => weightsOf(watch.last).join() === '127.0.0.2:50052=50', {
      timeoutMs: 6_000,
      what: 'priority-1 group',
    });
    expect(watch.last!.state).toBe('ok');
    expect(logger.warnings.some((w) => w.includes("'node1.svc.test'") && w.includes('skipped'))).toBe(true);
    expect(logger.warnings.some((w) => w.includes("'node3.svc.test'") && w.includes('skipped'))).toBe(true);

    dnsmasq.writeHosts('group0', { '127.0.0.1': ['node1.svc.test'], '127.0.0.3': ['node3.svc.test'] });
    await waitFor(() => addressesOf(watch.last).join() === '127.0.0.1:50051,127.0.0.3:50053', {
      timeoutMs: 6_000,
      what: 'priority-0 group back',
    });
  });

  it('treats SRV weight 0 as a very small weight, not as "never"', async () => {
    const { registry } = await open();
    const watch = record(registry, { service: 'zero' });
    const first = await waitFor(() => watch.sets[0], { what: 'first answer' });
    expect(weightsOf(first)).toEqual([`127.0.0.2:50061=${SRV_ZERO_WEIGHT}`, '127.0.0.4:50062=20']);
  });

  it("splits a target's weight over its A and AAAA addresses", async () => {
    const { registry } = await open();
    const watch = record(registry, { service: 'dual' });
    const first = await waitFor(() => watch.sets[0], { what: 'first answer' });
    expect(weightsOf(first)).toEqual(['127.0.0.8:50081=20', '[::8]:50081=20']);
  });

  it('reports NXDOMAIN and a "." target as empty (zero instances), not stale', async () => {
    const { registry } = await open();
    const missing = record(registry, { service: 'missing' });
    const none = record(registry, { service: 'none' });
    for (const watch of [missing, none]) {
      const first = await waitFor(() => watch.sets[0], { what: 'first answer' });
      expect(first.state).toBe('empty');
      expect(first.resolved).toBe(true);
      expect(first.size).toBe(0);
    }
  });

  it('uses a custom SRV template', async () => {
    const { registry } = await open({ srv: { template: '_grpc._tcp.{service}.svc.test' }, domain: undefined });
    expect(registry.nameFor('api')).toBe('_grpc._tcp.api.svc.test');
    const watch = record(registry, { service: 'api' });
    const first = await waitFor(() => watch.sets[0], { what: 'first answer' });
    expect(addressesOf(first)).toEqual(['127.0.0.1:50051', '127.0.0.3:50053']);
  });

  // Restarts dnsmasq with other records: keep it last in this file.
  it("moves to the next group when the first group's SRV records disappear", async () => {
    const { registry } = await open();
    const watch = record(registry, { service: 'api' });
    await waitFor(() => watch.last?.size === 2, { what: 'priority-0 group' });
    await dnsmasq.restart({ srvHosts: [API_SRV[2], ...OTHER_SRV] });
    await waitFor(() => watch.last?.state === 'ok' && weightsOf(watch.last).join() === '127.0.0.2:50052=50', {
      timeoutMs: 8_000,
      what: 'priority-1 group after the SRV records were removed',
    });
  });
});
