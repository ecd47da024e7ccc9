import { firstValueFrom } from 'rxjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Discovery } from '../../../lib/index.js';
import { quietLogger, TcpServers, underLoad } from './support/tcp-kit.js';

// Runs in the 'serial' project (alone, after the rest): it measures how
// traffic spreads by latency, which other suites' CPU load would blur.
describe('load-aware strategies over Nest TCP microservices', () => {
  let servers: TcpServers;
  let discovery: Discovery;

  beforeAll(async () => {
    servers = await TcpServers.create();
    await Promise.all([
      servers.start('fast1'),
      servers.start('fast2'),
      servers.start('slow', { env: { DELAY_MS: '20' } }),
    ]);
    discovery = await Discovery.create(
      { backend: 'local', backendConfig: { dir: servers.dir }, loadBalance: 'round_robin' },
      { logger: quietLogger },
    );
  });

  afterAll(async () => {
    await discovery?.close();
    await servers?.stop();
  });

  it.each(['least_connections', 'p2c_ewma'])(
    '%s: sends in flight and reply latency shift traffic away from an instance that answers 20 ms slower',
    async (strategy) => {
      const client = discovery.client({ name: 'orders', loadBalance: strategy });
      await client.ready({ minEndpoints: 3, timeoutMs: 20_000 });
      const proxy = client.proxy();
      // Warm up: connections to all three come up.
      for (let i = 0; i < 30; i++) await firstValueFrom(proxy.send('whoami', {}));
      const served = new Map<string, number>();
      const { sent, failures } = await underLoad(
        4,
        () => [...served.values()].reduce((a, b) => a + b, 0) >= 600,
        async () => {
          const { instance } = await firstValueFrom(proxy.send<{ instance: string }>('whoami', {}));
          served.set(instance, (served.get(instance) ?? 0) + 1);
        },
      );
      expect(failures).toEqual([]);
      const total = [...served.values()].reduce((a, b) => a + b, 0);
      expect(total).toBe(sent);
      expect((served.get('slow') ?? 0) / total).toBeLessThan(0.2);
    },
  );
});
