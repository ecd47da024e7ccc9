import { describe, expect, it } from 'vitest';
import { parseDiscoveryConfig } from '../../../lib/core/config/load-discovery-config.js';
import { resolveDiscoveryConfig } from '../../../lib/core/config/resolve-discovery-config.js';
import { ConfigurationError, NotSupportedError } from '../../../lib/core/errors.js';
import { createServiceInstance } from '../../../lib/core/service-instance.js';
import { configFor } from '../../../lib/registry/backend-context.js';
import { createRegistry, DEFAULT_SRV_TEMPLATE } from '../../../lib/registry/dns/dns.registry.js';
import { dnsSettings as resolveDnsSettings, RecordingLogger } from './dns-test-kit.js';

function settingsError(backendConfig: Record<string, unknown>, refreshInterval = 30): ConfigurationError {
  try {
    resolveDiscoveryConfig({ backend: 'dns', backendConfig, refreshInterval });
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigurationError);
    return error as ConfigurationError;
  }
  throw new Error('expected a ConfigurationError');
}

describe('dns backend configuration', () => {
  it.each([
    ['dns.example.com:53', 'a host name'],
    ['10.0.0.1', 'no port'],
    ['10.0.0.1:99999', 'a port out of range'],
    ['::1:53', 'unbracketed IPv6'],
  ])('rejects nameserver %j (%s), naming the field and value', (bad) => {
    const error = settingsError({ domain: 'svc.test', nameservers: ['127.0.0.1:53', bad] });
    expect(error.issues).toHaveLength(1);
    expect(error.issues[0].path).toBe('backendConfig.nameservers[1]');
    expect(error.issues[0].value).toBe(bad);
    expect(error.message).toContain('"ip:port"');
    expect(error.message).toContain(JSON.stringify(bad));
  });

  it('accepts IPv4 and bracketed IPv6 nameservers', () => {
    const settings = resolveDnsSettings({
      backendConfig: { domain: 'svc.test', nameservers: ['10.96.0.10:53', '[::1]:5353'] },
      refreshIntervalMs: 30_000,
    });
    expect(settings.nameservers).toEqual(['10.96.0.10:53', '[::1]:5353']);
  });

  it('rejects a TTL floor above the ceiling', () => {
    const explicit = settingsError({ domain: 'svc.test', ttlFloor: 20, ttlCeiling: 10 });
    expect(explicit.issues[0]).toMatchObject({ path: 'backendConfig.ttlFloor', value: 20 });
    expect(explicit.message).toContain('at most the TTL ceiling (10 s)');
    // The default ceiling is refresh_interval.
    const implicit = settingsError({ domain: 'svc.test', ttlFloor: 45 }, 30);
    expect(implicit.message).toContain('at most the TTL ceiling (30 s, from refresh_interval)');
  });

  it('rejects an SRV template without {service} or with unknown placeholders', () => {
    const noService = settingsError({ domain: 'svc.test', srv: { template: '_grpc._tcp.orders.{domain}' } });
    expect(noService.issues[0]).toMatchObject({
      path: 'backendConfig.srv.template',
      value: '_grpc._tcp.orders.{domain}',
    });
    expect(noService.message).toContain('{service}');
    const unknown = settingsError({
      domain: 'svc.test',
      srv: { template: '_grpc._tcp.{service}.{namespace}.{domain}' },
    });
    expect(unknown.message).toContain('{namespace}');
  });

  it('requires a port for A/AAAA lookups, a domain when DNS is asked, and valid fallback addresses', () => {
    expect(settingsError({ domain: 'svc.test', srv: false }).issues[0].path).toBe('backendConfig.port');
    expect(settingsError({}).issues[0].path).toBe('backendConfig.domain');
    const bad = settingsError({ domain: 'svc.test', addresses: ['127.0.0.1:80', 'not an address'] });
    expect(bad.issues[0]).toMatchObject({ path: 'backendConfig.addresses[1]', value: 'not an address' });
  });

  it('reports every bad field at once', () => {
    const error = settingsError({ domain: 'svc.test', nameservers: ['nope'], ttlFloor: 99, srv: { template: 'x' } });
    expect(error.issues.map((i) => i.path).sort()).toEqual([
      'backendConfig.nameservers[0]',
      'backendConfig.srv.template',
      'backendConfig.ttlFloor',
    ]);
  });

  it('chooses the mode: SRV by default, A/AAAA when a port is given, static when only addresses are', () => {
    const base = { refreshIntervalMs: 30_000 };
    const srv = resolveDnsSettings({ ...base, backendConfig: { domain: 'svc.test' } });
    expect(srv).toMatchObject({
      mode: 'srv',
      srvTemplate: DEFAULT_SRV_TEMPLATE,
      ttlFloorMs: 1_000,
      ttlCeilingMs: 30_000,
    });
    expect(resolveDnsSettings({ ...base, backendConfig: { domain: 'svc.test', port: 50051 } }).mode).toBe('address');
    expect(resolveDnsSettings({ ...base, backendConfig: { domain: 'svc.test', port: 50051, srv: true } }).mode).toBe(
      'srv',
    );
    expect(resolveDnsSettings({ ...base, backendConfig: { addresses: ['127.0.0.1:1'] } }).mode).toBe('static');
  });

  it('reads the snake_case keys of a Kubernetes headless-service TOML', () => {
    const config = parseDiscoveryConfig(
      `
[discovery]
backend = "dns"
refresh_interval = 30

[discovery.backend_config]
domain = "payments.svc.cluster.local"
service_type = "orders"
nameservers = ["10.96.0.10:53"]
ttl_floor = 2
ttl_ceiling = 20
timeout = 1.5
tries = 3

[discovery.backend_config.srv]
template = "_grpc._tcp.{service}.{domain}"
`,
      'toml',
    );
    const settings = configFor(config, 'dns').backendConfig;
    expect(settings).toMatchObject({
      mode: 'srv',
      nameservers: ['10.96.0.10:53'],
      ttlFloorMs: 2_000,
      ttlCeilingMs: 20_000,
      timeoutMs: 1_500,
      tries: 3,
    });
  });

  it('is read-only: register() throws NotSupportedError saying why', async () => {
    const config = resolveDiscoveryConfig({ backend: 'dns', backendConfig: { domain: 'svc.test' } });
    const registry = await createRegistry({ config, logger: new RecordingLogger() });
    expect(registry.readOnly).toBe(true);
    const me = createServiceInstance({ service: 'orders', address: '127.0.0.1:50051' });
    await expect(registry.register(me, { ttlMs: 90_000, heartbeatMs: 30_000 })).rejects.toThrow(NotSupportedError);
    await expect(registry.register(me, { ttlMs: 90_000, heartbeatMs: 30_000 })).rejects.toThrow(/read-only/);
    await registry.close();
  });
});
