import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  ConfigurationError,
  loadDiscoveryConfig,
  parseDiscoveryConfig,
  resolveDiscoveryConfig,
} from '../../../lib/core/index.js';

const fixture = (name: string) => join(import.meta.dirname, '../../fixtures', name);

describe('loadDiscoveryConfig', () => {
  it('loads the seed etcd example unchanged, with heartbeat a third of its TTL', async () => {
    const config = await loadDiscoveryConfig(fixture('etcd.toml'));
    expect(config.backend).toBe('etcd');
    expect(config.loadBalance).toBe('consistent_hash');
    expect(config.serviceType).toBe('signaling-online');
    // backend_config becomes the backend's settings: endpoints as etcd3 takes them.
    expect(config.backendConfig).toMatchObject({ hosts: ['http://localhost:2379'] });
    expect(config.namespace).toEqual({ default: 'production', separator: '/' });
    expect(config.version).toEqual({ default: 'v1.0.0', format: 'semver', enableRouting: true });
    expect(config.registration.ttlMs).toBe(30_000);
    expect(config.registration.heartbeatMs).toBe(10_000);
    expect(config.refreshIntervalMs).toBe(30_000);
  });

  it('loads the seed consul, dns and mesh examples unchanged', async () => {
    const consul = await loadDiscoveryConfig(fixture('consul.toml'));
    expect(consul).toMatchObject({
      backend: 'consul',
      loadBalance: 'round_robin',
      serviceType: 'message-orchestrator',
    });
    expect(consul.backendConfig).toMatchObject({ baseUrl: 'http://localhost:8500' });
    const dns = await loadDiscoveryConfig(fixture('dns.toml'));
    expect(dns).toMatchObject({
      backend: 'dns',
      loadBalance: 'random',
      serviceType: 'storage-reader',
      refreshIntervalMs: 60_000,
    });
    expect(dns.backendConfig).toMatchObject({ addresses: ['127.0.0.1:8080', '127.0.0.1:8081'] });
    const mesh = await loadDiscoveryConfig(fixture('mesh.toml'));
    expect(mesh).toMatchObject({ backend: 'mesh', loadBalance: 'least_connections', serviceType: 'session' });
    expect(mesh.backendConfig).toMatchObject({
      server: { target: 'localhost:8080', display: 'http://localhost:8080' },
    });
  });

  it('applies the seed defaults when a key is absent', () => {
    const config = resolveDiscoveryConfig({});
    expect(config.backend).toBe('local');
    expect(config.loadBalance).toBe('consistent_hash');
    expect(config.registration).toMatchObject({ ttlMs: 90_000, heartbeatMs: 30_000, deregisterOnShutdown: true });
    expect(config.healthCheck).toMatchObject({
      intervalMs: 10_000,
      timeoutMs: 5_000,
      failureThreshold: 3,
      successThreshold: 2,
      path: '/health',
    });
  });

  it('loads the same shape from JSON and YAML', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sy-config-'));
    await writeFile(
      join(dir, 'd.json'),
      JSON.stringify({ discovery: { backend: 'static', backend_config: { addresses: ['127.0.0.1:1'] } } }),
    );
    await writeFile(
      join(dir, 'd.yaml'),
      'discovery:\n  backend: consul\n  load_balance: random\n  backend_config:\n    url: http://127.0.0.1:1\n',
    );
    expect((await loadDiscoveryConfig(join(dir, 'd.json'))).backendConfig).toMatchObject({
      addresses: ['127.0.0.1:1'],
    });
    expect((await loadDiscoveryConfig(join(dir, 'd.yaml'))).loadBalance).toBe('random');
  });

  it('names the field path as written, the value and the expectation', () => {
    const text =
      '[discovery]\nbackend = "etcd"\nload_balance = "fastest"\n[discovery.backend_config]\nttl = -3\nendpointz = ["x"]\n';
    let error: unknown;
    try {
      parseDiscoveryConfig(text, 'toml', 'bad.toml');
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigurationError);
    const message = (error as Error).message;
    expect(message).toContain('bad.toml');
    expect(message).toContain('discovery.backend_config.ttl');
    expect(message).toContain('-3');
    expect(message).toContain('discovery.backend_config.endpointz: unknown key');
    expect(message).toContain('discovery.load_balance: one of round_robin');
    expect(message).toContain('"fastest"');
  });

  it('rejects a heartbeat that is not below the TTL', () => {
    expect(() => resolveDiscoveryConfig({ registration: { ttl: 10, heartbeatInterval: 10 } })).toThrow(
      /registration.heartbeatInterval.*smaller than the TTL/,
    );
  });

  it('rejects a health timeout not below the interval and a path without a slash', () => {
    expect(() => resolveDiscoveryConfig({ healthCheck: { interval: 2, timeout: 3 } })).toThrow(/healthCheck.timeout/);
    expect(() => resolveDiscoveryConfig({ healthCheck: { path: 'health' } })).toThrow(/healthCheck.path/);
  });

  it('reports unknown top-level keys and unparsable files', async () => {
    expect(() => parseDiscoveryConfig('[discovery]\nbackend="local"\nrefresh = 3\n', 'toml')).toThrow(
      /discovery.refresh: unknown key/,
    );
    expect(() => parseDiscoveryConfig('[discovery\n', 'toml', 'x.toml')).toThrow(/x.toml[\s\S]*valid TOML/);
    await expect(loadDiscoveryConfig('/nonexistent/discovery.toml')).rejects.toThrow(/readable file/);
    await expect(loadDiscoveryConfig('discovery.ini')).rejects.toThrow(/\.toml, \.json, \.yaml/);
  });
});
