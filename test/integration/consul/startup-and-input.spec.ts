import { afterEach, describe, expect, it } from 'vitest';
import { findFreePort } from '../../../lib/core/tcp.js';
import { ConfigurationError, RegistrationError } from '../../../lib/core/errors.js';
import { parseDiscoveryConfig } from '../../../lib/core/config/load-discovery-config.js';
import { createServiceInstance, type ServiceInstance } from '../../../lib/core/service-instance.js';
import type { RegistrationEvent } from '../../../lib/registry/registry.interface.js';
import { MissingPeerDependencyError } from '../../../lib/core/optional-peer.js';
import { configFor } from '../../../lib/registry/backend-context.js';
import { createConsulRegistry, loadConsulClass } from '../../../lib/registry/consul/consul.registry.js';
import { toServiceDefinition } from '../../../lib/registry/consul/consul-service-codec.js';
import { ConsulAgent, consulBinary, httpGet } from '../../support/peers/consul.js';
import { waitFor } from '../../support/wait-for.js';
import { Closer, consulConfig, RecordingLogger } from './support/consul-kit.js';

const binary = consulBinary();

describe.skipIf(!binary)('consul: an agent that is down at start-up', () => {
  const closer = new Closer();
  let agent: ConsulAgent | undefined;
  afterEach(async () => {
    await closer.closeAll();
    await agent?.stop();
    agent = undefined;
  });

  it('starts anyway, reports "registry unreachable", retries the registration with backoff, and catches up when the agent comes', async () => {
    const port = await findFreePort();
    const url = `http://127.0.0.1:${port}`;
    const logger = new RecordingLogger();
    const registry = await closer.registry(url, {}, { logger });
    expect(registry.reachability.current.reachable).toBe(false);
    expect(registry.reachability.current.reason).toMatch(
      /^registry unreachable: consul agent at http:\/\/127\.0\.0\.1:\d+ /,
    );
    expect(logger.lines.some((l) => l.startsWith('warn') && l.includes('registry unreachable'))).toBe(true);

    const seen = closer.collect(registry.watch({ service: 'su-orders' }));
    await waitFor(() => seen.latest(), { what: 'a first emission' });
    expect(seen.sets[0]).toMatchObject({ state: 'stale', resolved: false, revision: 1 });

    const registration = await registry.register(
      createServiceInstance({ service: 'su-orders', id: 'su-1', address: '127.0.0.1:7501' }),
      {
        ttlMs: 3_000,
        heartbeatMs: 500,
      },
    );
    // A subscriber arriving after register() returned still learns the registration is pending.
    const events: RegistrationEvent[] = [];
    registration.events$.subscribe((e) => events.push(e));
    expect(events).toMatchObject([
      { type: 'lost', reason: expect.stringMatching(/^registration pending: .*ECONNREFUSED/) },
    ]);

    agent = await ConsulAgent.start({ httpPort: port }, binary);
    await waitFor(() => events.some((e) => e.type === 'restored'), {
      timeoutMs: 10_000,
      what: 'the registration made',
    });
    expect((await httpGet(`${url}/v1/agent/service/su-1`)).status).toBe(200);
    await waitFor(() => seen.latest()?.state === 'ok' && seen.ids().join() === 'su-1', {
      timeoutMs: 15_000,
      what: 'the watcher caught up',
    });
    expect(registry.reachability.current.reachable).toBe(true);
  });

  it('fails start-up when strict', async () => {
    const url = `http://127.0.0.1:${await findFreePort()}`;
    await expect(createConsulRegistry(consulConfig(url, { strict: true }), new RecordingLogger())).rejects.toThrow(
      /registry unreachable: consul agent at .*\(backend_config\.strict is on\)/,
    );
  });
});

describe('consul: bad input', () => {
  const closer = new Closer();
  afterEach(() => closer.closeAll());

  it('rejects a service name Consul cannot take, naming the field and value', () => {
    expect(() => consulConfig('http://127.0.0.1:1', { serviceType: 'orders/v1 beta' })).toThrow(ConfigurationError);
    expect(() => consulConfig('http://127.0.0.1:1', { serviceType: 'orders/v1 beta' })).toThrow(
      /backendConfig\.serviceType: a Consul service name.*\(got "orders\/v1 beta"\)/s,
    );
  });

  it('names each bad option: URL scheme, half a client certificate, too long a wait', () => {
    let error: ConfigurationError | undefined;
    try {
      consulConfig('ftp://127.0.0.1:8500', { wait: 900, tls: { cert: '/nonexistent/cert.pem' } });
    } catch (e) {
      error = e as ConfigurationError;
    }
    expect(error).toBeInstanceOf(ConfigurationError);
    const paths = error!.issues.map((i) => i.path);
    expect(paths).toEqual(
      expect.arrayContaining([
        'backendConfig.url',
        'backendConfig.tls.key',
        'backendConfig.tls.cert',
        'backendConfig.wait',
      ]),
    );
  });

  it('takes rust_compatible from a seed-style TOML file, off by default, and names a bad value', () => {
    const parsed = parseDiscoveryConfig(
      '[discovery]\nbackend = "consul"\n[discovery.backend_config]\nurl = "http://127.0.0.1:8500"\nrust_compatible = true\n',
      'toml',
    );
    expect(configFor(parsed, 'consul').backendConfig.rustCompatible).toBe(true);
    expect(configFor(consulConfig('http://127.0.0.1:1'), 'consul').backendConfig.rustCompatible).toBe(false);
    expect(() => consulConfig('http://127.0.0.1:1', { rustCompatible: 'yes' })).toThrow(
      /backendConfig\.rustCompatible: .*\(got "yes"\)/s,
    );
  });

  it('rejects a watch of an invalid service name synchronously, naming it', async () => {
    const registry = await closer.registry(`http://127.0.0.1:${await findFreePort()}`);
    expect(() => registry.watch({ service: 'bad name' })).toThrow(/"bad name"/);
  });

  it('converts non-string tag values on the way in and rejects what Consul Meta cannot hold, naming the key', () => {
    const settings = configFor(consulConfig('http://127.0.0.1:1'), 'consul').backendConfig;
    const timing = { ttlMs: 9_000, heartbeatMs: 3_000 };
    const converted = createServiceInstance({
      service: 'bi',
      id: 'bi-1',
      address: '127.0.0.1:1',
      tags: { replicas: 3 as unknown as string, on: true as unknown as string },
    });
    expect(toServiceDefinition(converted, settings, timing).Meta).toMatchObject({
      'tag-replicas': '3',
      'tag-on': 'true',
    });

    const forged = { ...converted, tags: { nested: { a: 1 } } } as unknown as ServiceInstance;
    expect(() => toServiceDefinition(forged, settings, timing)).toThrow(
      /tags\.nested has value \{"a":1\}; expected a string/,
    );
    const longValue = createServiceInstance({
      service: 'bi',
      id: 'bi-2',
      address: '127.0.0.1:1',
      tags: { big: 'x'.repeat(600) },
    });
    expect(() => toServiceDefinition(longValue, settings, timing)).toThrow(RegistrationError);
    expect(() => toServiceDefinition(longValue, settings, timing)).toThrow(/tags\.big is 600 characters long/);
    const longKey = createServiceInstance({
      service: 'bi',
      id: 'bi-3',
      address: '127.0.0.1:1',
      tags: { ['k'.repeat(130)]: 'v' },
    });
    expect(() => toServiceDefinition(longKey, settings, timing)).toThrow(/Meta key 'tag-k+' of 134 characters/);
    const many = createServiceInstance({
      service: 'bi',
      id: 'bi-4',
      address: '127.0.0.1:1',
      tags: Object.fromEntries(Array.from({ length: 70 }, (_, i) => [`t${i}`, 'v'])),
    });
    expect(() => toServiceDefinition(many, settings, timing)).toThrow(/needs 71 Meta keys.*at most 64/);
  });

  it('says how to install the consul package when it is missing', async () => {
    const missing = Object.assign(new Error("Cannot find package 'consul' imported from /app/x.js"), {
      code: 'ERR_MODULE_NOT_FOUND',
    });
    const error = await loadConsulClass(() => Promise.reject(missing)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MissingPeerDependencyError);
    expect((error as Error).message).toBe("backend 'consul' needs the package consul: npm install consul@^2.0.0");
  });
});
