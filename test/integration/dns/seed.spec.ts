import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadDiscoveryConfig, parseDiscoveryConfig } from '../../../lib/core/config/load-discovery-config.js';
import type { ResolvedDiscoveryConfig } from '../../../lib/core/config/resolve-discovery-config.js';
import { createRegistry } from '../../../lib/registry/create-registry.js';
import type { Registry } from '../../../lib/registry/registry.interface.js';
import { DnsmasqPeer, ensureDnsmasq } from '../../support/peers/dnsmasq.js';
import { waitFor } from '../../support/wait-for.js';
import { addressesOf, record, RecordingLogger } from './dns-test-kit.js';

const FIXTURE = join(import.meta.dirname, '../../fixtures/dns.toml');
const SEED = ['127.0.0.1:8080', '127.0.0.1:8081'];

describe("the seed's DNS example (test/fixtures/dns.toml)", () => {
  const registries: Registry[] = [];
  let config: ResolvedDiscoveryConfig;

  beforeAll(async () => {
    config = await loadDiscoveryConfig(FIXTURE);
  });

  afterEach(async () => {
    await Promise.all(registries.splice(0).map((r) => r.close()));
  });

  /** The fixture with some backend_config keys changed, resolved as the loader would. */
  function fixtureWith(overrides: Record<string, unknown>): ResolvedDiscoveryConfig {
    const document = parseToml(readFileSync(FIXTURE, 'utf8')) as { discovery: { backend_config: object } };
    Object.assign(document.discovery.backend_config, overrides);
    return parseDiscoveryConfig(JSON.stringify(document), 'json', FIXTURE);
  }

  async function open(overrides: Record<string, unknown> = {}) {
    const registry = await createRegistry(fixtureWith(overrides), new RecordingLogger());
    registries.push(registry);
    return registry;
  }

  it('loads unchanged and serves its addresses at once', async () => {
    expect(config.backend).toBe('dns');
    expect(config.serviceType).toBe('storage-reader');
    expect(config.refreshIntervalMs).toBe(60_000);
    const registry = await open();
    expect(registry.backend).toBe('dns');
    const watch = record(registry, { service: config.serviceType! });
    // The fallback addresses are the first snapshot, before DNS has answered.
    expect(watch.sets).toHaveLength(1);
    expect(watch.sets[0].state).toBe('ok');
    expect(addressesOf(watch.sets[0])).toEqual(SEED);
  });

  describe.skipIf(!ensureDnsmasq().binary)('with a real nameserver for the "local" domain', () => {
    let dnsmasq: DnsmasqPeer;
    const SRV = '_grpc._tcp.storage-reader.local,reader1.local,9090,0,10';

    beforeAll(async () => {
      dnsmasq = await DnsmasqPeer.start({ localDomains: ['local'], srvHosts: [SRV], localTtl: 1 });
    });

    afterAll(async () => {
      await dnsmasq?.stop();
    });

    it('replaces the addresses with DNS records while DNS has them, and falls back to them when it has none', async () => {
      dnsmasq.writeHosts('reader1', { '127.0.0.31': ['reader1.local'] });
      const registry = await open({ nameservers: [dnsmasq.nameserver], ttlCeiling: 2 });
      const watch = record(registry, { service: 'storage-reader' });
      expect(addressesOf(watch.last)).toEqual(SEED);
      await waitFor(() => addressesOf(watch.last).join() === '127.0.0.31:9090', { what: 'the DNS answer' });

      dnsmasq.removeHosts('reader1');
      await waitFor(() => addressesOf(watch.last).join() === SEED.join(), {
        timeoutMs: 6_000,
        what: 'the addresses again',
      });
      expect(watch.last!.state).toBe('ok');
    });

    it('serves the addresses as stale while the nameserver cannot answer', async () => {
      const registry = await open({ nameservers: [dnsmasq.nameserver], domain: 'elsewhere.test' });
      const watch = record(registry, { service: 'storage-reader' });
      await waitFor(() => watch.last?.state === 'stale', { what: 'stale (REFUSED)' });
      expect(addressesOf(watch.last)).toEqual(SEED);
      expect(watch.last!.reason).toMatch(/EREFUSED/);
    });

    // Restarts dnsmasq without the SRV record: keep it last.
    it('serves the addresses again (not empty) when the SRV name stops existing (NXDOMAIN)', async () => {
      dnsmasq.writeHosts('reader1', { '127.0.0.31': ['reader1.local'] });
      const registry = await open({ nameservers: [dnsmasq.nameserver], ttlCeiling: 2 });
      const watch = record(registry, { service: 'storage-reader' });
      await waitFor(() => addressesOf(watch.last).join() === '127.0.0.31:9090', { what: 'the DNS answer' });

      await dnsmasq.restart({ srvHosts: [] });
      await waitFor(() => watch.last?.state === 'ok' && addressesOf(watch.last).join() === SEED.join(), {
        timeoutMs: 8_000,
        what: 'the addresses after NXDOMAIN',
      });
    });
  });
});
