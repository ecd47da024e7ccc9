import { firstValueFrom, type Subscription } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import { resolveDiscoveryConfig } from '../../../../lib/core/config/resolve-discovery-config.js';
import type { EndpointSet } from '../../../../lib/core/endpoint-set.js';
import { ConfigurationError, NotSupportedError } from '../../../../lib/core/errors.js';
import { createServiceInstance } from '../../../../lib/core/service-instance.js';
import { createRegistry } from '../../../../lib/registry/create-registry.js';
import { StaticRegistry, staticInstances } from '../../../../lib/registry/static/static.registry.js';
import type { DiscoveryLogger } from '../../../../lib/registry/registry.interface.js';

const subscriptions: Subscription[] = [];
const quiet: DiscoveryLogger = { log: () => undefined, warn: () => undefined, error: () => undefined };

afterEach(() => {
  for (const s of subscriptions.splice(0)) s.unsubscribe();
});

describe('StaticRegistry', () => {
  it('serves every address as a healthy instance of the queried service, once', async () => {
    const registry = new StaticRegistry(['127.0.0.1:8080', 'localhost:8081', '[::1]:8082', '127.0.0.1:8080']);
    const sets: EndpointSet[] = [];
    subscriptions.push(
      registry.watch({ service: 'storage-reader', namespace: 'production' }).subscribe((s) => sets.push(s)),
    );
    expect(sets).toHaveLength(1);
    const [set] = sets;
    expect(set.state).toBe('ok');
    expect(set.endpoints.map((e) => e.address).sort()).toEqual(['127.0.0.1:8080', '[::1]:8082', 'localhost:8081']);
    for (const i of set.instances) {
      expect(i).toMatchObject({ service: 'storage-reader', namespace: 'production', healthy: true, weight: 1 });
      expect(i.id).toBe(`static-${i.address}`);
    }
    const other = await firstValueFrom(registry.watch({ service: 'orders' }));
    expect(other.instances.every((i) => i.service === 'orders' && i.namespace === 'default')).toBe(true);
    await registry.close();
  });

  it('is read-only: register rejects with NotSupportedError', async () => {
    const registry = new StaticRegistry(['127.0.0.1:8080']);
    expect(registry.readOnly).toBe(true);
    const me = createServiceInstance({ service: 'orders', address: '127.0.0.1:9000' });
    await expect(registry.register(me)).rejects.toThrow(NotSupportedError);
    await expect(registry.register(me)).rejects.toThrow(/'static' backend is read-only/);
  });

  it('names backend_config.addresses[i] and the value of an invalid address', () => {
    const attempt = () => new StaticRegistry(['127.0.0.1:8080', 'http://nope:80']);
    expect(attempt).toThrow(ConfigurationError);
    expect(attempt).toThrow(/backend_config\.addresses\[1\].*host:port.*"http:\/\/nope:80"/);
    expect(() => new StaticRegistry(['127.0.0.1:0'])).toThrow(/addresses\[0\].*"127\.0\.0\.1:0"/);
  });

  it('is what createRegistry builds for backend "static", bad addresses rejected by the configuration', async () => {
    const built = await createRegistry(
      resolveDiscoveryConfig({ backend: 'static', backendConfig: { addresses: ['127.0.0.1:1', '127.0.0.1:2'] } }),
      quiet,
    );
    expect(built).toBeInstanceOf(StaticRegistry);
    const set = await firstValueFrom(built.watch({ service: 'api' }));
    expect(set.size).toBe(2);
    expect(() => resolveDiscoveryConfig({ backend: 'static', backendConfig: { addresses: ['bad'] } })).toThrow(
      /backendConfig\.addresses\[0\].*"bad"/,
    );
  });

  it('emits once and then nothing; close completes open watches', async () => {
    const registry = new StaticRegistry(['127.0.0.1:8080']);
    let count = 0;
    let completed = false;
    subscriptions.push(
      registry.watch({ service: 'orders' }).subscribe({ next: () => count++, complete: () => (completed = true) }),
    );
    expect(count).toBe(1);
    expect(completed).toBe(false);
    await registry.close();
    expect(completed).toBe(true);
    expect(count).toBe(1);
  });

  it('is always reachable: its source is the configuration itself', async () => {
    const registry = new StaticRegistry(['127.0.0.1:8080']);
    expect(registry.reachability.current).toMatchObject({ reachable: true, reason: undefined });
    expect(await registry.reachability.probe()).toMatchObject({ reachable: true });
    let completed = false;
    registry.reachability.state$.subscribe({ complete: () => (completed = true) });
    await registry.close();
    expect(completed).toBe(true);
  });

  it('serves an empty list as "empty"', async () => {
    const set = await firstValueFrom(new StaticRegistry([]).watch({ service: 'orders' }));
    expect(set.state).toBe('empty');
    expect(set.resolved).toBe(true);
  });
});

describe('staticInstances', () => {
  it('gives other backends a seed list with stable ids', () => {
    const seeds = staticInstances(
      'orders',
      ['10.0.0.1:50051', '10.0.0.2:50051'],
      'production',
      'backend_config.addresses',
    );
    expect(seeds.map((s) => [s.id, s.address, s.namespace])).toEqual([
      ['static-10.0.0.1:50051', '10.0.0.1:50051', 'production'],
      ['static-10.0.0.2:50051', '10.0.0.2:50051', 'production'],
    ]);
    expect(() => staticInstances('orders', ['x'], 'default', 'backend_config.fallback')).toThrow(
      /backend_config\.fallback\[0\]/,
    );
  });
});
