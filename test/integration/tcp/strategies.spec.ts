import { firstValueFrom } from 'rxjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Discovery, type ServiceClient } from '../../../lib/index.js';
import { quietLogger, spread, TcpServers } from './support/tcp-kit.js';

/** Shares as plain percentages, for readable failure messages. */
const shares = (counts: Map<string, number>, total: number) =>
  Object.fromEntries([...counts].sort().map(([id, n]) => [id, Math.round((n / total) * 100)]));

describe('every strategy balances TCP sends (3 Nest TCP microservices with weights 1, 2, 3)', () => {
  let servers: TcpServers;
  let discovery: Discovery;

  beforeAll(async () => {
    servers = await TcpServers.create();
    await Promise.all(['w1', 'w2', 'w3'].map((id, i) => servers.start(id, { env: { WEIGHT: String(i + 1) } })));
    discovery = await Discovery.create(
      { backend: 'local', backendConfig: { dir: servers.dir }, loadBalance: 'round_robin' },
      { logger: quietLogger },
    );
  });

  afterAll(async () => {
    await discovery?.close();
    await servers?.stop();
  });

  async function clientWith(loadBalance: string, tcp?: { hashKey: (pattern: unknown, data: any) => string }) {
    const client: ServiceClient = discovery.client({ name: 'orders', loadBalance, tcp });
    await client.ready({ minEndpoints: 3, timeoutMs: 20_000 });
    return client;
  }

  const sendVia = (client: ServiceClient) => (pattern: string, data: unknown) =>
    client.proxy().send<{ instance: string }>(pattern, data);

  it('round_robin: exact equal shares', async () => {
    const counts = await spread(sendVia(await clientWith('round_robin')), 300);
    expect(Object.fromEntries([...counts].sort())).toEqual({ w1: 100, w2: 100, w3: 100 });
  });

  it('weighted_round_robin: exact shares by weight', async () => {
    const counts = await spread(sendVia(await clientWith('weighted_round_robin')), 600);
    expect(Object.fromEntries([...counts].sort())).toEqual({ w1: 100, w2: 200, w3: 300 });
  });

  it.each([
    ['random', { w1: 33, w2: 33, w3: 33 }],
    ['weighted_random', { w1: 17, w2: 33, w3: 50 }],
  ])('%s: shares near the expected ones', async (strategy, expected) => {
    const counts = await spread(sendVia(await clientWith(strategy)), 600);
    // 600 draws: one standard deviation of a share is under 2.1 points; allow 7.
    for (const [id, percent] of Object.entries(shares(counts, 600)))
      expect(Math.abs(percent - expected[id as keyof typeof expected]), `${id}: ${percent}%`).toBeLessThanOrEqual(7);
  });

  it.each(['least_connections', 'p2c_ewma', 'consistent_hash'])(
    '%s (sends without a key): every instance gets a share',
    async (strategy) => {
      const counts = await spread(sendVia(await clientWith(strategy)), 150);
      expect([...counts.keys()].sort()).toEqual(['w1', 'w2', 'w3']);
    },
  );

  it('consistent_hash with tcp.hashKey: each user stays on one instance, and users spread over all three', async () => {
    const client = await clientWith('consistent_hash', {
      hashKey: (_pattern, data: { userId: string }) => data.userId,
    });
    const placement = new Map<string, Set<string>>();
    for (let round = 0; round < 4; round++) {
      for (let user = 0; user < 40; user++) {
        const { instance } = await firstValueFrom(
          client.proxy().send<{ instance: string }>('echo', { userId: `user-${user}` }),
        );
        placement.set(`user-${user}`, (placement.get(`user-${user}`) ?? new Set()).add(instance));
      }
    }
    expect([...placement.values()].filter((instances) => instances.size !== 1)).toEqual([]);
    expect(new Set([...placement.values()].map((s) => [...s][0])).size).toBe(3);
  });
});
