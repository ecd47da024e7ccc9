import { createServer, type Server as HttpServer } from 'node:http';
import { Server as GrpcServer, ServerCredentials, type ServiceDefinition } from '@grpc/grpc-js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { findFreePort } from '../../../lib/core/tcp.js';
import { createServiceInstance } from '../../../lib/core/service-instance.js';
import { ConsulAgent, consulBinary, httpGet } from '../../support/peers/consul.js';
import { waitFor } from '../../support/wait-for.js';
import { agentPut, Closer } from './support/consul-kit.js';

const binary = consulBinary();

/** grpc.health.v1.Health/Check answering `status` (1 SERVING, 2 NOT_SERVING), encoded by hand. */
const HEALTH: ServiceDefinition = {
  Check: {
    path: '/grpc.health.v1.Health/Check',
    requestStream: false,
    responseStream: false,
    requestSerialize: (value: Buffer) => value,
    requestDeserialize: (bytes: Buffer) => bytes,
    responseSerialize: (status: number) => Buffer.from([0x08, status]),
    responseDeserialize: (bytes: Buffer) => bytes[1],
  },
};

describe.skipIf(!binary)('consul: HTTP and gRPC checks', () => {
  let agent: ConsulAgent;
  const closer = new Closer();
  const timing = { ttlMs: 10_000, heartbeatMs: 1_000 };

  beforeAll(async () => {
    agent = await ConsulAgent.start({}, binary);
  });
  afterEach(() => closer.closeAll());
  afterAll(async () => {
    await agent?.stop();
  });

  it('an HTTP check on the seed path decides whether the instance is passing', async () => {
    let healthy = true;
    const hits: string[] = [];
    const server: HttpServer = createServer((req, res) => {
      hits.push(req.url ?? '');
      res.writeHead(healthy ? 200 : 503).end(healthy ? 'ok' : 'down');
    });
    const port = await findFreePort();
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    try {
      const registry = await closer.registry(agent.url, { check: { kind: 'http', interval: 0.5 } });
      await registry.register(
        createServiceInstance({ service: 'ck-http', id: 'ck-http-1', address: `127.0.0.1:${port}` }),
        timing,
      );
      const seen = closer.collect(registry.watch({ service: 'ck-http' }));
      await waitFor(() => seen.ids().join() === 'ck-http-1', {
        timeoutMs: 10_000,
        what: 'passing after the first probe',
      });
      // health_check.path's default, '/health', is what Consul probes.
      expect(hits[0]).toBe('/health');
      healthy = false;
      await waitFor(() => seen.latest()?.state === 'empty', {
        timeoutMs: 10_000,
        what: 'critical after a failing probe',
      });
      healthy = true;
      await waitFor(() => seen.ids().join() === 'ck-http-1', { timeoutMs: 10_000, what: 'passing again' });
      const checks = JSON.parse((await httpGet(`${agent.url}/v1/agent/checks`)).body);
      expect(checks['service:ck-http-1']).toMatchObject({ Type: 'http', ServiceID: 'ck-http-1' });
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('a native gRPC health check decides whether the instance is passing', async () => {
    let status = 1;
    const server = new GrpcServer();
    server.addService(HEALTH, {
      Check: (_call: unknown, callback: (e: null, s: number) => void) => callback(null, status),
    });
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (error, bound) =>
        error ? reject(error) : resolve(bound),
      ),
    );
    try {
      const registry = await closer.registry(agent.url, { check: { kind: 'grpc', interval: 0.5 } });
      await registry.register(
        createServiceInstance({ service: 'ck-grpc', id: 'ck-grpc-1', address: `127.0.0.1:${port}` }),
        timing,
      );
      const seen = closer.collect(registry.watch({ service: 'ck-grpc' }));
      await waitFor(() => seen.ids().join() === 'ck-grpc-1', { timeoutMs: 10_000, what: 'SERVING makes it pass' });
      status = 2;
      await waitFor(() => seen.latest()?.state === 'empty', {
        timeoutMs: 10_000,
        what: 'NOT_SERVING makes it critical',
      });
      const checks = JSON.parse((await httpGet(`${agent.url}/v1/agent/checks`)).body);
      expect(checks['service:ck-grpc-1']).toMatchObject({ Type: 'grpc', ServiceID: 'ck-grpc-1' });
    } finally {
      server.forceShutdown();
    }
  });

  it('re-registers an HTTP-checked instance the agent forgot, on the next heartbeat', async () => {
    const registry = await closer.registry(agent.url, { check: { kind: 'http', interval: 5 } });
    const registration = await registry.register(
      createServiceInstance({ service: 'ck-forgot', id: 'ck-forgot-1', address: '127.0.0.1:1' }),
      timing,
    );
    const types: string[] = [];
    registration.events$.subscribe((e) => types.push(e.type));
    // Removed behind the registry's back (what an agent restart does).
    expect((await agentPut(agent.url, '/agent/service/deregister/ck-forgot-1')).status).toBe(200);
    await registration.heartbeat();
    expect(types).toEqual(['lost', 'restored']);
    expect((await httpGet(`${agent.url}/v1/agent/service/ck-forgot-1`)).status).toBe(200);
  });
});
