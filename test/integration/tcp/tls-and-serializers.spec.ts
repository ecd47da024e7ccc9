import { readFileSync } from 'node:fs';
import { firstValueFrom } from 'rxjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Discovery } from '../../../lib/index.js';
import { makeTlsMaterial, type TlsMaterial } from '../consul/support/tls-material.js';
import { quietLogger, spread, TcpServers } from './support/tcp-kit.js';

describe("ClientTCP's own options pass through: TLS with a test CA, serializer, deserializer", () => {
  let tls: TlsMaterial;
  let servers: TcpServers;
  let discovery: Discovery;

  beforeAll(async () => {
    tls = makeTlsMaterial();
    servers = await TcpServers.create();
    const env = { SERVICE: 'secure', TLS_CERT: tls.serverCert, TLS_KEY: tls.serverKey };
    await Promise.all(['t1', 't2', 't3'].map((id) => servers.start(id, { env })));
    await servers.start('plain', { env: { SERVICE: 'plain' } });
    discovery = await Discovery.create(
      { backend: 'local', backendConfig: { dir: servers.dir }, loadBalance: 'round_robin' },
      { logger: quietLogger },
    );
  });

  afterAll(async () => {
    await discovery?.close();
    await servers?.stop();
    tls?.remove();
  });

  it('tlsOptions: sends over TLS to every instance, verified against the test CA', async () => {
    const client = discovery.client({ name: 'secure', tcp: { tlsOptions: { ca: readFileSync(tls.caFile) } } });
    await client.ready({ minEndpoints: 3, timeoutMs: 20_000 });
    const counts = await spread((pattern, data) => client.proxy().send(pattern, data), 30);
    expect(Object.fromEntries([...counts].sort())).toEqual({ t1: 10, t2: 10, t3: 10 });
    for (const connection of client.proxy().unwrap<Map<string, { unwrap<T>(): T }>>().values()) {
      expect(connection.unwrap<{ encrypted?: boolean; authorized?: boolean }>()).toMatchObject({
        encrypted: true,
        authorized: true,
      });
    }
  });

  it('a certificate the client does not trust: the send fails before anything was written, naming the endpoint', async () => {
    const client = discovery.client({ name: 'secure', retry: false, tcp: { tlsOptions: {} } });
    await client.ready({ minEndpoints: 3, timeoutMs: 20_000 });
    const error = await firstValueFrom(client.proxy().send('create', { id: 'untrusted' })).catch((e: Error) => e);
    expect(String(error)).toMatch(
      /'secure' endpoint 127\.0\.0\.1:\d+ could not be reached for send\('create'\): .*certificate.*\(not written\)/,
    );
    expect(servers.handled('request', 'create').has('untrusted')).toBe(false);
  });

  it("serializer and deserializer: the client's own, on every packet", async () => {
    const client = discovery.client({
      name: 'plain',
      tcp: {
        serializer: { serialize: (packet: any) => ({ ...packet, data: { ...packet.data, via: 'client serializer' } }) },
        deserializer: {
          deserialize: (message: any) => ({
            ...message,
            response: message.response && { ...message.response, seenBy: 'client deserializer' },
          }),
        },
      },
    });
    await client.ready({ timeoutMs: 20_000 });
    expect(await firstValueFrom(client.proxy().send('echo', { n: 1 }))).toEqual({
      instance: 'plain',
      data: { n: 1, via: 'client serializer' },
      seenBy: 'client deserializer',
    });
  });
});
