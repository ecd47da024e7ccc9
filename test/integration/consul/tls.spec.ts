import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServiceInstance } from '../../../lib/core/service-instance.js';
import { createConsulRegistry } from '../../../lib/registry/consul/consul.registry.js';
import { ConsulAgent, consulBinary, httpGet } from '../../support/peers/consul.js';
import { waitFor } from '../../support/wait-for.js';
import { Closer, consulConfig, RecordingLogger } from './support/consul-kit.js';
import { makeTlsMaterial, type TlsMaterial } from './support/tls-material.js';

const binary = consulBinary();

describe.skipIf(!binary)('consul: HTTPS with a private CA and a client certificate', () => {
  let tls: TlsMaterial;
  let agent: ConsulAgent;
  const closer = new Closer();

  beforeAll(async () => {
    tls = makeTlsMaterial();
    agent = await ConsulAgent.start(
      { tls: { certFile: tls.serverCert, keyFile: tls.serverKey, caFile: tls.caFile } },
      binary,
    );
  });
  afterAll(async () => {
    await closer.closeAll();
    await agent?.stop();
    tls?.remove();
  });

  it('registers and discovers over https with the CA and client certificate files', async () => {
    const registry = await closer.registry(agent.httpsUrl, {
      tls: { ca: tls.caFile, cert: tls.clientCert, key: tls.clientKey },
    });
    expect(registry.reachability.current.reachable).toBe(true);
    await registry.register(createServiceInstance({ service: 'tls-orders', id: 'tls-1', address: '127.0.0.1:7701' }), {
      ttlMs: 3_000,
      heartbeatMs: 500,
    });
    const seen = closer.collect(registry.watch({ service: 'tls-orders' }));
    await waitFor(() => seen.ids().join() === 'tls-1', { what: 'tls-1 discovered over https' });
    expect((await httpGet(`${agent.url}/v1/agent/service/tls-1`)).status).toBe(200);
  });

  it('cannot talk to the agent without the client certificate, and says the registry is unreachable', async () => {
    const logger = new RecordingLogger();
    const registry = await createConsulRegistry(consulConfig(agent.httpsUrl, { tls: { ca: tls.caFile } }), logger);
    try {
      expect(registry.reachability.current.reachable).toBe(false);
      expect(registry.reachability.current.reason).toMatch(
        /^registry unreachable: consul agent at https:\/\/127\.0\.0\.1:\d+/,
      );
    } finally {
      await registry.close();
    }
  });

  it('refuses a server certificate it cannot verify (no CA given)', async () => {
    const registry = await createConsulRegistry(
      consulConfig(agent.httpsUrl, { tls: { cert: tls.clientCert, key: tls.clientKey } }),
      new RecordingLogger(),
    );
    try {
      expect(registry.reachability.current.reachable).toBe(false);
      expect(registry.reachability.current.reason).toMatch(/certificate/i);
    } finally {
      await registry.close();
    }
  });
});
