import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadDiscoveryConfig, parseDiscoveryConfig } from '../../../lib/core/config/load-discovery-config.js';
import { resolveDiscoveryConfig } from '../../../lib/core/config/resolve-discovery-config.js';
import { ConfigurationError, NotSupportedError } from '../../../lib/core/errors.js';
import { configFor } from '../../../lib/registry/backend-context.js';
import { createRegistry } from '../../../lib/registry/create-registry.js';
import { MeshRegistry, parseXdsServer } from '../../../lib/registry/mesh/mesh.registry.js';
import { createServiceInstance } from '../../../lib/core/service-instance.js';
import { MissingPeerDependencyError } from '../../../lib/core/optional-peer.js';
import { registerGrpcJsXds } from '../../../lib/registry/mesh/xds-delegate.js';
import { loadProtoLoader, loadXdsProtos, xdsProtoIncludeDirs } from '../../../lib/registry/mesh/xds-protos.js';
import { waitFor } from '../../support/wait-for.js';
import { XdsControlPlane } from '../../support/xds/xds-control-plane.js';
import { CLUSTER_TYPE, edsCluster, ENDPOINT_TYPE, loadAssignment } from '../../support/xds/xds-resources.js';
import { RecordingLogger, SetRecorder } from './mesh-test-kit.js';

const FIXTURE = join(import.meta.dirname, '../../fixtures/mesh.toml');

/** The mesh backend's settings, as the configuration loader resolves them (with `env` as the environment). */
function settings(backendConfig: Record<string, unknown>, env: NodeJS.ProcessEnv = {}) {
  return configFor(resolveDiscoveryConfig({ backend: 'mesh', backendConfig }, { env }), 'mesh').backendConfig;
}

function configError(run: () => unknown): ConfigurationError {
  try {
    run();
  } catch (error) {
    if (error instanceof ConfigurationError) return error;
    throw error;
  }
  throw new Error('expected a ConfigurationError');
}

describe('mesh backend configuration', () => {
  let dir: string;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'switchyard-mesh-config-'));
  });

  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it("loads the seed's mesh example (test/fixtures/mesh.toml) unchanged, read-only, and serves it from a control plane", async () => {
    const config = await loadDiscoveryConfig(FIXTURE);
    expect(config.backend).toBe('mesh');
    expect(config.serviceType).toBe('session');
    expect(config.loadBalance).toBe('least_connections');
    const logger = new RecordingLogger();
    const seed = await createRegistry(config, logger);
    try {
      expect(seed).toBeInstanceOf(MeshRegistry);
      expect(seed.backend).toBe('mesh');
      expect(seed.readOnly).toBe(true);
      const mesh = seed as MeshRegistry;
      expect(mesh.settings.server).toEqual({
        target: 'localhost:8080',
        secure: false,
        display: 'http://localhost:8080',
      });
      expect(mesh.settings.mode).toBe('data');
      expect(mesh.clusterName('session', 'default')).toBe('session');
      expect(mesh.settings.node.id).toMatch(/^switchyard-.+-\d+$/);
      await expect(
        mesh.register(createServiceInstance({ service: 'session', address: '127.0.0.1:9000' }), {
          ttlMs: 90_000,
          heartbeatMs: 30_000,
        }),
      ).rejects.toThrow(NotSupportedError);
      expect(logger.lines.filter((l) => l.level === 'log' && l.message.includes('read-only'))).toHaveLength(1);
    } finally {
      await seed.close();
    }

    // The same file with only the server moved to the test control plane serves its service.
    const plane = await XdsControlPlane.start();
    const moved = readFileSync(FIXTURE, 'utf8').replace('http://localhost:8080', plane.url);
    const registry = await createRegistry(parseDiscoveryConfig(moved, 'toml', FIXTURE), new RecordingLogger());
    try {
      plane.set(CLUSTER_TYPE, edsCluster('session'));
      plane.set(
        ENDPOINT_TYPE,
        loadAssignment('session', [{ region: 'eu', endpoints: [{ address: '127.0.0.1:9001' }] }]),
      );
      const sessions = new SetRecorder(registry.watch({ service: config.serviceType! }));
      await waitFor(() => sessions.latest?.state === 'ok', { what: 'the session endpoints' });
      expect(sessions.addresses()).toEqual(['127.0.0.1:9001']);
      sessions.unsubscribe();
    } finally {
      await registry.close();
      await plane.close();
    }
  });

  it("accepts the alias backend = 'xds'", async () => {
    const registry = await createRegistry(
      resolveDiscoveryConfig({ backend: 'xds', backendConfig: { xdsServer: '127.0.0.1:18000' } }),
      new RecordingLogger(),
    );
    expect(registry.backend).toBe('mesh');
    await registry.close();
  });

  it('accepts http, https, host:port and gRPC targets as xds_server', () => {
    expect(parseXdsServer('http://127.0.0.1:18000')).toMatchObject({ target: '127.0.0.1:18000', secure: false });
    expect(parseXdsServer('https://istiod.istio-system.svc:15012')).toMatchObject({
      target: 'istiod.istio-system.svc:15012',
      secure: true,
    });
    expect(parseXdsServer('https://xds.example.com')).toMatchObject({ target: 'xds.example.com:443', secure: true });
    expect(parseXdsServer('http://[::1]:18000')).toMatchObject({ target: '[::1]:18000' });
    expect(parseXdsServer('control-plane:18000')).toMatchObject({ target: 'control-plane:18000', secure: false });
    expect(parseXdsServer('dns:///control-plane:18000')).toMatchObject({ target: 'dns:///control-plane:18000' });
    expect(parseXdsServer('unix:///etc/istio/proxy/XDS')).toMatchObject({ target: 'unix:///etc/istio/proxy/XDS' });
  });

  it.each([
    'not a url',
    'localhost',
    'ftp://control-plane:21',
    'http://control-plane:18000/v3/discovery',
    'http://',
    'dns:///',
  ])('rejects xds_server %j with an error naming the field (backendConfig.xdsServer, as written)', (value) => {
    const error = configError(() => settings({ xdsServer: value }));
    expect(error.issues).toHaveLength(1);
    expect(error.issues[0].path).toBe('backendConfig.xdsServer');
    expect(error.message).toContain('backendConfig.xdsServer');
    expect(error.message).toContain('http://host:port');
    expect(error.message).toContain(JSON.stringify(value));
  });

  it('rejects in the configuration, before anything is opened, naming the field as the file spells it', () => {
    expect(() =>
      parseDiscoveryConfig(
        '[discovery]\nbackend = "mesh"\n[discovery.backend_config]\nxds_server = "not a url"\n',
        'toml',
      ),
    ).toThrow(/discovery\.backend_config\.xds_server: an xDS server/);
  });

  it('needs a server: xds_server, a bootstrap file or GRPC_XDS_BOOTSTRAP', () => {
    const error = configError(() => settings({}));
    expect(error.issues[0].path).toBe('backendConfig.xdsServer');
    expect(error.message).toMatch(/backend_config\.bootstrap/);
  });

  it('reads server and node from a bootstrap file in GRPC_XDS_BOOTSTRAP format; node_id and xds_server win over it', async () => {
    const protos = await loadXdsProtos();
    const file = join(dir, 'bootstrap.json');
    writeFileSync(
      file,
      JSON.stringify({
        xds_servers: [
          {
            server_uri: 'xds.internal:18000',
            channel_creds: [{ type: 'google_default' }, { type: 'insecure' }],
            server_features: ['xds_v3'],
          },
        ],
        node: {
          id: 'projects/1/networks/default/nodes/abc',
          cluster: 'edge',
          locality: { zone: 'eu-1a' },
          metadata: { TRAFFICDIRECTOR_NETWORK_NAME: 'default', n: 1 },
        },
      }),
    );
    const fromFile = settings({ bootstrap: file });
    expect(fromFile.server).toMatchObject({ target: 'xds.internal:18000', secure: false });
    expect(fromFile.node).toMatchObject({
      id: 'projects/1/networks/default/nodes/abc',
      cluster: 'edge',
      locality: { zone: 'eu-1a' },
    });
    expect(fromFile.bootstrap).toEqual({ kind: 'file', path: file, origin: 'backend_config.bootstrap' });

    // The node (with its metadata as a google.protobuf.Struct) survives the wire.
    const wire = protos.ads.requestDeserialize(
      protos.ads.requestSerialize({
        version_info: '',
        node: fromFile.node,
        resource_names: [],
        type_url: 't',
        response_nonce: '',
      }),
    ) as unknown as {
      node: { id: string; cluster: string; metadata: { fields: Record<string, Record<string, unknown>> } };
    };
    expect(wire.node).toMatchObject({ id: 'projects/1/networks/default/nodes/abc', cluster: 'edge' });
    expect(wire.node.metadata.fields.TRAFFICDIRECTOR_NETWORK_NAME).toMatchObject({ stringValue: 'default' });
    expect(wire.node.metadata.fields.n).toMatchObject({ numberValue: 1 });

    const overridden = settings({ bootstrap: file, nodeId: 'mine', xdsServer: 'http://127.0.0.1:19000' });
    expect(overridden.node.id).toBe('mine');
    expect(overridden.server.target).toBe('127.0.0.1:19000');

    // Without xds_server or bootstrap, gRPC's own environment variable is read.
    expect(settings({}, { GRPC_XDS_BOOTSTRAP: file }).server.target).toBe('xds.internal:18000');
    expect(
      settings(
        {},
        {
          GRPC_XDS_BOOTSTRAP_CONFIG: JSON.stringify({
            xds_servers: [{ server_uri: 'inline:1', channel_creds: [{ type: 'insecure' }] }],
          }),
        },
      ).server.target,
    ).toBe('inline:1');
  });

  it('names the bootstrap file that does not parse, or cannot be read', () => {
    const broken = join(dir, 'broken.json');
    writeFileSync(broken, '{ "xds_servers": [ { "server_uri": ');
    const error = configError(() => settings({ bootstrap: broken }));
    expect(error.message).toContain(broken);
    expect(error.message).toContain('backend_config.bootstrap');
    expect(error.message).toMatch(/does not parse/);
    expect(error.source).toBe(broken);

    const missing = join(dir, 'missing.json');
    const unreadable = configError(() => settings({ bootstrap: missing }));
    expect(unreadable.message).toContain(missing);
    expect(unreadable.message).toMatch(/ENOENT/);

    const fromEnv = configError(() => settings({}, { GRPC_XDS_BOOTSTRAP: broken }));
    expect(fromEnv.message).toContain('GRPC_XDS_BOOTSTRAP');
  });

  it('explains bootstrap files it cannot use: no servers, or only credentials it does not speak', () => {
    const empty = join(dir, 'no-servers.json');
    writeFileSync(empty, JSON.stringify({ node: { id: 'x' } }));
    expect(configError(() => settings({ bootstrap: empty })).message).toMatch(/xds_servers/);

    const google = join(dir, 'google.json');
    writeFileSync(
      google,
      JSON.stringify({
        xds_servers: [
          { server_uri: 'trafficdirector.googleapis.com:443', channel_creds: [{ type: 'google_default' }] },
        ],
      }),
    );
    const error = configError(() => settings({ bootstrap: google }));
    expect(error.message).toMatch(/channel_creds/);
    expect(error.message).toMatch(/delegate/);
  });

  it('fills cluster_template with {service} and {namespace}, and rejects templates it cannot fill', () => {
    expect(settings({ xdsServer: '127.0.0.1:1' }).clusterTemplate).toBe('{service}');
    const istio = settings({
      xdsServer: '127.0.0.1:1',
      clusterTemplate: 'outbound|50051||{service}.{namespace}.svc.cluster.local',
    });
    expect(istio.clusterTemplate).toBe('outbound|50051||{service}.{namespace}.svc.cluster.local');
    expect(configError(() => settings({ xdsServer: '127.0.0.1:1', clusterTemplate: 'fixed' })).issues[0].path).toBe(
      'backendConfig.clusterTemplate',
    );
    expect(
      configError(() => settings({ xdsServer: '127.0.0.1:1', clusterTemplate: '{service}.{zone}' })).message,
    ).toMatch(/\{zone\}/);
  });

  it('refuses a TLS xds_server in delegate mode (grpc-js-xds cannot speak it from a generated bootstrap)', () => {
    const error = configError(() => settings({ xdsServer: 'https://xds.example.com:443', mode: 'delegate' }));
    expect(error.issues[0].path).toBe('backendConfig.xdsServer');
    expect(error.message).toMatch(/delegate/);
  });

  it('names the missing package and how to install it, for each package the mesh backend may need', async () => {
    const notFound = (specifier: string, code = 'MODULE_NOT_FOUND') =>
      Object.assign(new Error(`Cannot find module '${specifier}'`), { code });
    const xds = (() => {
      try {
        xdsProtoIncludeDirs((specifier) => {
          throw notFound(specifier);
        });
      } catch (error) {
        return error;
      }
    })();
    expect(xds).toBeInstanceOf(MissingPeerDependencyError);
    expect((xds as Error).message).toBe(
      "backend 'mesh' needs the package @grpc/grpc-js-xds: npm install @grpc/grpc-js-xds@^1.14.0",
    );

    const loader = await loadProtoLoader(() =>
      Promise.reject(notFound('@grpc/proto-loader', 'ERR_MODULE_NOT_FOUND')),
    ).catch((error: unknown) => error);
    expect(loader).toBeInstanceOf(MissingPeerDependencyError);
    expect((loader as Error).message).toBe(
      "backend 'mesh' needs the package @grpc/proto-loader: npm install @grpc/proto-loader@^0.8.0",
    );

    const delegate = await registerGrpcJsXds(
      settings({ xdsServer: '127.0.0.1:1', mode: 'delegate' }),
      new RecordingLogger(),
      {},
      () => Promise.reject(notFound('@grpc/grpc-js-xds', 'ERR_MODULE_NOT_FOUND')),
    ).catch((error: unknown) => error);
    expect(delegate).toBeInstanceOf(MissingPeerDependencyError);
    expect((delegate as Error).message).toBe(
      "backend 'mesh' needs the package @grpc/grpc-js-xds: npm install @grpc/grpc-js-xds@^1.14.0",
    );

    // A package that is there but misses one of its own dependencies is not reported as missing.
    const broken = await loadProtoLoader(() => Promise.reject(notFound('protobufjs'))).catch((error: unknown) => error);
    expect(broken).not.toBeInstanceOf(MissingPeerDependencyError);
  });
});
