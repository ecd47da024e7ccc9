import { afterAll, describe, expect, it } from 'vitest';
import { parseDiscoveryConfig } from '../../../lib/core/config/load-discovery-config.js';
import { resolveDiscoveryConfig } from '../../../lib/core/config/resolve-discovery-config.js';
import { ConfigurationError } from '../../../lib/core/errors.js';
import { findFreePort } from '../../../lib/core/tcp.js';
import { createServiceInstance, toSeedRecord } from '../../../lib/core/service-instance.js';
import { MissingPeerDependencyError } from '../../../lib/core/optional-peer.js';
import { configFor } from '../../../lib/registry/backend-context.js';
import {
  GrpcNamingLayout,
  loadEtcd3,
  SeedLayout,
  SeedSlashLayout,
  type EtcdRegistry,
} from '../../../lib/registry/etcd/etcd.registry.js';
import { openRegistry, testInstance } from './etcd-test-kit.js';

// Bad input, checked before any connection: no etcd is needed here.
const etcdConfig = (backendConfig: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
  resolveDiscoveryConfig({ backend: 'etcd', backendConfig, ...extra });
/** The etcd backend's settings, as its schema produced them. */
const etcdSettings = (backendConfig: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
  configFor(etcdConfig(backendConfig, extra), 'etcd').backendConfig;

function configError(fn: () => unknown): ConfigurationError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigurationError);
    return error as ConfigurationError;
  }
  throw new Error('expected a ConfigurationError');
}

describe('etcd backend options', () => {
  const opened: EtcdRegistry[] = [];
  afterAll(async () => {
    await Promise.all(opened.map((r) => r.close()));
  });

  it('rejects a TTL below 2 s and a heartbeat not below the TTL', () => {
    expect(configError(() => etcdConfig({ ttl: 1 })).message).toMatch(
      /backendConfig\.ttl: a TTL of at least 2 seconds \(got 1\)/,
    );
    expect(configError(() => etcdConfig({}, { registration: { ttl: 10, heartbeatInterval: 10 } })).message).toMatch(
      /registration\.heartbeatInterval: a heartbeat interval smaller than the TTL \(10 s\) \(got 10\)/,
    );
  });

  it('rejects the same timing when passed straight to register()', async () => {
    const port = await findFreePort();
    const registry = await openRegistry([`http://127.0.0.1:${port}`]);
    opened.push(registry);
    await expect(registry.register(testInstance('x'), { ttlMs: 1_500, heartbeatMs: 500 })).rejects.toThrow(
      /registration\.ttl: a TTL of at least 2 seconds .*\(got 1\.5\)/,
    );
    await expect(registry.register(testInstance('x'), { ttlMs: 3_000, heartbeatMs: 3_000 })).rejects.toThrow(
      /registration\.heartbeat_interval: .*smaller than the TTL \(3 s\) \(got 3\)/,
    );
  });

  it('names a bad endpoint, its value and what was expected', () => {
    const error = configError(() =>
      etcdConfig({ endpoints: ['http://127.0.0.1:2379', 'etcd.local/2379', 'ftp://x:1'] }),
    );
    expect(error.issues).toEqual([
      {
        path: 'backendConfig.endpoints[1]',
        value: 'etcd.local/2379',
        message: '"http(s)://host:port" or "host:port"',
      },
      { path: 'backendConfig.endpoints[2]', value: 'ftp://x:1', message: 'an http:// or https:// URL' },
    ]);
    // In a file, the path is spelled as the file spells it.
    const fromFile = configError(() =>
      parseDiscoveryConfig(
        '[discovery]\nbackend = "etcd"\n[discovery.backend_config]\nendpoints = ["ftp://x:1"]\n',
        'toml',
      ),
    );
    expect(fromFile.issues.map((i) => i.path)).toEqual(['discovery.backend_config.endpoints[0]']);
    expect(etcdSettings({ endpoints: ['10.0.0.1:2379', 'https://[::1]:2379'] }).hosts).toEqual([
      'http://10.0.0.1:2379',
      'https://[::1]:2379',
    ]);
  });

  it('checks the TLS options', () => {
    const error = configError(() =>
      etcdConfig({
        endpoints: ['http://127.0.0.1:2379'],
        tls: { ca: '/nonexistent/ca.pem', cert: '/nonexistent/c.pem', insecureSkipVerify: true },
      }),
    );
    const paths = error.issues.map((i) => i.path);
    expect(paths).toEqual(
      expect.arrayContaining([
        'backendConfig.endpoints[0]',
        'backendConfig.tls.insecureSkipVerify',
        'backendConfig.tls.key',
        'backendConfig.tls.ca',
      ]),
    );
    expect(error.message).toMatch(/tls\.ca: a readable PEM file \(ENOENT\) \(got "\/nonexistent\/ca\.pem"\)/);
  });

  it('derives request timeout and probe interval from the heartbeat, and honours explicit ones', () => {
    const derived = etcdSettings({ ttl: 30 });
    expect(derived).toMatchObject({
      requestTimeoutMs: 5_000,
      probeIntervalMs: 5_000,
      dialTimeoutMs: 5_000,
      layout: 'seed',
      prefix: '',
      strict: false,
    });
    const explicit = etcdSettings({ dialTimeout: 1.5, requestTimeout: 0.8, prefix: '/app/', layout: 'grpc-naming' });
    expect(explicit).toMatchObject({
      dialTimeoutMs: 1_500,
      requestTimeoutMs: 800,
      prefix: '/app',
      layout: 'grpc-naming',
    });
  });

  it('takes the seed-slash layout by name, and names the layouts for an unknown one', () => {
    expect(etcdSettings({ layout: 'seed-slash' }).layout).toBe('seed-slash');
    const error = configError(() => etcdSettings({ layout: 'flare' }));
    expect(error.issues.map((i) => i.path)).toEqual(['backendConfig.layout']);
    expect(error.message).toMatch(/seed.*seed-slash.*grpc-naming/);
    expect(error.message).toMatch(/"flare"/);
  });

  it('explains how to install etcd3 when the package is missing', async () => {
    const missing = async () => {
      throw Object.assign(new Error("Cannot find package 'etcd3' imported from /app/x.js"), {
        code: 'ERR_MODULE_NOT_FOUND',
      });
    };
    const error = await loadEtcd3(missing).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MissingPeerDependencyError);
    expect((error as Error).message).toBe("backend 'etcd' needs the package etcd3: npm install etcd3@^1.1.2");
    expect(typeof (await loadEtcd3()).Etcd3).toBe('function');
  });
});

describe('etcd key layouts', () => {
  const instance = createServiceInstance({
    service: 'orders',
    id: 'o-1',
    address: '10.0.0.5:50051',
    namespace: 'production',
    version: 'v1.2.0',
  });

  it("seed (the Rust crate's): no leading slash, the crate's roots for the default namespace, strict about the key", () => {
    const seed = new SeedLayout('', '/');
    expect(seed.keyOf(instance)).toBe('production/services/orders/o-1');
    expect(seed.prefixesOf('orders', 'production')).toEqual(['production/services/orders/']);
    expect(seed.prefixesOf('orders', 'default')).toEqual([
      'flare/services/orders/',
      'flare-test/services/orders/',
      'default/services/orders/',
    ]);
    expect(seed.defaultWeight).toBe(100);
    const value = Buffer.from(JSON.stringify({ ...toSeedRecord(instance), future_field: [1, 2] }));
    expect(seed.decode('production/services/orders/o-1', value, 'orders', 'production')).toEqual({ instance });
    expect(seed.decode('production/services/orders/other', value, 'orders', 'production')).toEqual({
      skip: expect.stringMatching(/instance_id "o-1" does not match/),
    });
    expect(seed.decode('production/services/orders/o-1', Buffer.from('[1]'), 'orders', 'production')).toEqual({
      skip: expect.stringMatching(/JSON object/),
    });
    // Asked for a namespace, a record of none (or another) is not in it, as in the crate; the default namespace keeps both.
    const none = Buffer.from(JSON.stringify({ ...toSeedRecord(instance), namespace: null }));
    expect(seed.decode('production/services/orders/o-1', none, 'orders', 'production')).toEqual({ absent: true });
    expect(seed.decode('flare/services/orders/o-1', none, 'orders', 'default')).toEqual({
      instance: { ...instance, namespace: 'default' },
    });
    expect(seed.decode('default/services/orders/o-1', value, 'orders', 'default')).toEqual({ instance });
    expect(new SeedLayout('corp', '.').keyOf(instance)).toBe('corp.production.services.orders.o-1');
  });

  it('seed refuses what the crate cannot parse: a host name, a fractional or oversized weight', () => {
    const seed = new SeedLayout('', '/');
    expect(() => seed.checkWritable(createServiceInstance({ service: 'orders', address: 'localhost:19004' }))).toThrow(
      /address "localhost:19004" has a host name.*SocketAddr/,
    );
    expect(() =>
      seed.checkWritable(createServiceInstance({ service: 'orders', address: '10.0.0.1:1', weight: 2.5 })),
    ).toThrow(/weight 2\.5 is not an integer from 0 to 4294967295/);
    expect(() =>
      seed.checkWritable(createServiceInstance({ service: 'orders', address: '10.0.0.1:1', weight: 2 ** 32 })),
    ).toThrow(/weight 4294967296/);
    expect(() =>
      seed.checkWritable(createServiceInstance({ service: 'orders', address: '[2001:db8::b]:18081', weight: 0 })),
    ).not.toThrow();
  });

  it('seed-slash (switchyard 0.1): keys by namespace, service and id under a leading slash', () => {
    const slash = new SeedSlashLayout('', '/');
    expect(slash.keyOf(instance)).toBe('/production/services/orders/o-1');
    expect(slash.prefixesOf('orders', 'default')).toEqual(['/default/services/orders/']);
    expect(slash.defaultWeight).toBe(1);
    const value = Buffer.from(slash.encode(instance));
    expect(JSON.parse(value.toString())).toEqual(toSeedRecord(instance));
    expect(slash.decode('/production/services/orders/o-1', value, 'orders', 'production')).toEqual({ instance });
    expect(slash.decode('/staging/services/orders/o-1', value, 'orders', 'staging')).toEqual({
      skip: expect.stringMatching(/namespace "production" does not match the key's namespace "staging"/),
    });
    expect(new SeedSlashLayout('/corp', '.').keyOf(instance)).toBe('/corp.production.services.orders.o-1');
  });

  it('grpc-naming: {prefix}/{service}/{addr}, Op 1 is a removal, Addr is required', () => {
    const naming = new GrpcNamingLayout('');
    expect(naming.keyOf(instance)).toBe('orders/10.0.0.5:50051');
    expect(JSON.parse(naming.encode(instance))).toMatchObject({
      Op: 0,
      Addr: '10.0.0.5:50051',
      Metadata: { instance_id: 'o-1' },
    });
    expect(naming.decode('orders/10.0.0.5:50051', Buffer.from(naming.encode(instance)), 'orders', 'default')).toEqual({
      instance,
    });
    expect(naming.decode('orders/x', Buffer.from('{"Op":1,"Addr":"1.2.3.4:5"}'), 'orders', 'default')).toEqual({
      absent: true,
    });
    expect(naming.decode('orders/x', Buffer.from('{"Op":0}'), 'orders', 'default')).toEqual({
      skip: expect.stringMatching(/Invalid Addr undefined/),
    });
    const go = naming.decode(
      'orders/1.2.3.4:5',
      Buffer.from('{"Op":0,"Addr":"1.2.3.4:5","Metadata":"opaque"}'),
      'orders',
      'staging',
    );
    expect(go).toMatchObject({
      instance: { id: '1.2.3.4:5', address: '1.2.3.4:5', namespace: 'staging', service: 'orders' },
    });
  });
});
