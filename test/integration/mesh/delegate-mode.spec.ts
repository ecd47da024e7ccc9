import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveDiscoveryConfig } from '../../../lib/core/config/resolve-discovery-config.js';
import { createRegistry } from '../../../lib/registry/create-registry.js';
import type { Registry } from '../../../lib/registry/registry.interface.js';
import { GreeterServer, greeterPackage, sayHello, type GreeterStub } from '../../support/grpc/greeter.js';
import { waitFor } from '../../support/wait-for.js';
import { XdsControlPlane } from '../../support/xds/xds-control-plane.js';
import {
  apiListener,
  CLUSTER_TYPE,
  edsCluster,
  ENDPOINT_TYPE,
  LISTENER_TYPE,
  loadAssignment,
} from '../../support/xds/xds-resources.js';
import { RecordingLogger, SetRecorder } from './mesh-test-kit.js';

// Delegate mode registers @grpc/grpc-js-xds process-wide and exports its
// bootstrap through the environment: this file runs alone in its process.
describe('mesh backend, delegate mode: xds:/// targets handed to @grpc/grpc-js-xds', () => {
  const saved = {
    GRPC_XDS_BOOTSTRAP: process.env.GRPC_XDS_BOOTSTRAP,
    GRPC_XDS_BOOTSTRAP_CONFIG: process.env.GRPC_XDS_BOOTSTRAP_CONFIG,
  };
  let plane: XdsControlPlane;
  let server: GreeterServer;
  let registry: Registry;
  let stub: GreeterStub | undefined;
  const logger = new RecordingLogger();

  beforeAll(async () => {
    delete process.env.GRPC_XDS_BOOTSTRAP;
    delete process.env.GRPC_XDS_BOOTSTRAP_CONFIG;
    plane = await XdsControlPlane.start();
    server = await new GreeterServer('delegated').start();
    plane.set(LISTENER_TYPE, apiListener('greeter', { cluster: 'greeter' }));
    plane.set(CLUSTER_TYPE, edsCluster('greeter'));
    plane.set(ENDPOINT_TYPE, loadAssignment('greeter', [{ region: 'eu', endpoints: [{ address: server.address }] }]));
    registry = await createRegistry(
      resolveDiscoveryConfig({
        backend: 'mesh',
        backendConfig: { xdsServer: plane.url, nodeId: 'delegate-test', mode: 'delegate' },
      }),
      logger,
    );
  });

  afterAll(async () => {
    stub?.close();
    await registry?.close();
    server?.kill();
    await plane?.close();
    for (const [key, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
  });

  it('routes calls on xds:/// channels through grpc-js-xds with a bootstrap built from xds_server and node_id', async () => {
    expect(JSON.parse(process.env.GRPC_XDS_BOOTSTRAP_CONFIG!)).toMatchObject({
      xds_servers: [{ server_uri: plane.address, channel_creds: [{ type: 'insecure' }] }],
      node: { id: 'delegate-test' },
    });
    expect(logger.lines.some((l) => l.message.includes('delegate mode: @grpc/grpc-js-xds registered'))).toBe(true);

    stub = new greeterPackage.greeter.Greeter(
      'xds:///greeter',
      grpc.credentials.createInsecure(),
    ) as unknown as GreeterStub;
    const reply = await waitFor(() => sayHello(stub!, 'delegate'), { what: 'a call through grpc-js-xds' });
    expect(reply.instance).toBe('delegated');
    expect(plane.requestsOf('ack', LISTENER_TYPE).some((r) => r.nodeId === 'delegate-test')).toBe(true);
  });

  it('keeps serving the registry view (ServiceClient, health, metrics) from the same control plane', async () => {
    const greeter = new SetRecorder(registry.watch({ service: 'greeter' }));
    try {
      await waitFor(() => greeter.latest?.state === 'ok', { what: 'the registry view of greeter' });
      expect(greeter.addresses()).toEqual([server.address]);
      expect(registry.readOnly).toBe(true);
    } finally {
      greeter.unsubscribe();
    }
  });
});
