import { createServer, type Server } from 'node:http';
import { firstValueFrom } from 'rxjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Discovery, type DiscoveryEvent, type ServiceClient, type ServiceClientOptions } from '../../../lib/index.js';
import { findFreePort } from '../../../lib/core/tcp.js';
import { waitFor } from '../../support/wait-for.js';
import { quietLogger, TcpServers, underLoad, type TcpServer } from './support/tcp-kit.js';

/** Retries on, with a budget that does not run out in these short bursts (as the gRPC SIGKILL tests have). */
const RETRIES: ServiceClientOptions['retry'] = { maxAttempts: 3, budget: { maxTokens: 100, tokenRatio: 1 } };

describe('TCP sends when endpoints fail (Nest TCP microservices in their own processes)', () => {
  let servers: TcpServers;
  let discovery: Discovery;
  const events: DiscoveryEvent[] = [];

  beforeAll(async () => {
    servers = await TcpServers.create();
    discovery = await Discovery.create(
      {
        backend: 'local',
        backendConfig: { dir: servers.dir },
        loadBalance: 'round_robin',
        outlierDetection: { consecutiveFailures: 3, baseEjectionTime: 30 },
      },
      { logger: quietLogger },
    );
    discovery.events$.subscribe((event) => events.push(event));
  });

  afterAll(async () => {
    await discovery?.close();
    await servers?.stop();
  });

  /** Three servers of their own service; `slow` (the first) answers 400 ms late. */
  async function service(name: string, slowFirst = false): Promise<{ client: ServiceClient; started: TcpServer[] }> {
    const started = await Promise.all(
      ['1', '2', '3'].map((n, i) =>
        servers.start(`${name}-${n}`, {
          env: { SERVICE: name, TTL: '60', ...(slowFirst && i === 0 ? { DELAY_MS: '400' } : {}) },
        }),
      ),
    );
    const client = discovery.client({ name, retry: RETRIES, tcp: { idempotent: ['read'], timeoutMs: 10_000 } });
    await client.ready({ minEndpoints: 3, timeoutMs: 20_000 });
    return { client, started };
  }

  /** Sends `count` requests at once; resolves once `victim` handles its share, SIGKILLs it, and returns every outcome. */
  async function killWhileHandling(
    client: ServiceClient,
    victim: TcpServer,
    pattern: 'create' | 'read',
    count: number,
  ) {
    const ids = Array.from({ length: count }, (_, i) => `${pattern}-${i}`);
    const outcomes = Promise.allSettled(ids.map((id) => firstValueFrom(client.proxy().send(pattern, { id }))));
    const onVictim = await waitFor(
      () => {
        const handled = [...servers.handled('request', pattern)].filter(([, by]) => by.includes(victim.id));
        return handled.length === count / 3 ? handled.map(([id]) => id) : undefined;
      },
      { what: `${victim.id} handling its share of the requests` },
    );
    await victim.peer.kill();
    return { ids, onVictim, outcomes: await outcomes };
  }

  it('a send written to an instance that dies is not retried (not idempotent): only those fail, and none ran twice', async () => {
    const { client, started } = await service('inflight-create', true);
    const victim = started[0];
    const { ids, onVictim, outcomes } = await killWhileHandling(client, victim, 'create', 6);
    const failed = ids.filter((_, i) => outcomes[i].status === 'rejected');
    expect(failed.sort()).toEqual(onVictim.sort());
    for (const outcome of outcomes.filter((o) => o.status === 'rejected')) {
      expect(String(outcome.reason)).toMatch(
        new RegExp(
          `'inflight-create' endpoint ${victim.address} did not answer send\\('create'\\).*retried only if the pattern is idempotent`,
        ),
      );
    }
    const handled = servers.handled('request', 'create');
    for (const id of ids) expect(handled.get(id), id).toHaveLength(1);
  });

  it('the same with an idempotent pattern: the written sends are retried on another instance, and all succeed', async () => {
    const { client, started } = await service('inflight-read', true);
    const victim = started[0];
    const { ids, onVictim, outcomes } = await killWhileHandling(client, victim, 'read', 6);
    expect(outcomes.map((o) => o.status)).toEqual(ids.map(() => 'fulfilled'));
    const handled = servers.handled('request', 'read');
    for (const id of onVictim) {
      expect(handled.get(id)).toHaveLength(2);
      expect((outcomes[ids.indexOf(id)] as PromiseFulfilledResult<{ instance: string }>).value.instance).not.toBe(
        victim.id,
      );
    }
  });

  it('SIGKILL of one instance under load: zero failed sends, and it is ejected before the registry drops it', async () => {
    const { client, started } = await service('killed');
    const victim = started[0];
    let done = 0;
    const { sent, failures } = await underLoad(
      6,
      () => done >= 400,
      async (n) => {
        if (n === 100) victim.peer.signal('SIGKILL');
        await firstValueFrom(client.proxy().send('read', { id: `killed-${n}` }));
        done++;
      },
    );
    await victim.peer.waitForExit();
    expect(failures.map((e) => e.message)).toEqual([]);
    expect(sent).toBeGreaterThanOrEqual(400);
    expect(events).toContainEqual(
      expect.objectContaining({ type: 'ejected', service: 'killed', address: victim.address, consecutiveFailures: 3 }),
    );
    // Its registration (TTL 60 s) is still there: the registry lists it, the client does not serve it.
    const report = client.describeEndpoints().find((e) => e.endpoint.address === victim.address);
    expect(report).toMatchObject({ served: false, health: 'ejected' });
  });

  it('a listed endpoint that refuses connections: every send goes elsewhere (never written), whatever the pattern', async () => {
    const alive = await servers.start('refused-alive', { register: false });
    const dead = `127.0.0.1:${await findFreePort()}`;
    const plain = await Discovery.create(
      { backend: 'static', backendConfig: { addresses: [dead, alive.address] }, loadBalance: 'round_robin' },
      { logger: quietLogger },
    );
    try {
      const client = plain.client({ name: 'refused', retry: RETRIES });
      for (let i = 0; i < 10; i++) {
        expect(await firstValueFrom(client.proxy().send('create', { id: `refused-${i}` }))).toMatchObject({
          instance: 'refused-alive',
        });
      }
      const handled = servers.handled('request', 'create');
      for (let i = 0; i < 10; i++) expect(handled.get(`refused-${i}`)).toEqual(['refused-alive']);
      expect(client.describeEndpoints().find((e) => e.endpoint.address === dead)?.failuresLastMinute).toBeGreaterThan(
        0,
      );
    } finally {
      await plain.close();
    }
  });

  it('an endpoint that is not a Nest TCP server: the error names it, and counts as its failure', async () => {
    const http: Server = createServer((_req, res) => res.end('hello'));
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    const address = `127.0.0.1:${(http.address() as { port: number }).port}`;
    const plain = await Discovery.create(
      { backend: 'static', backendConfig: { addresses: [address] }, loadBalance: 'round_robin' },
      { logger: quietLogger },
    );
    try {
      const client = plain.client({ name: 'http-service', retry: false, tcp: { timeoutMs: 5_000 } });
      const error = await firstValueFrom(client.proxy().send('whoami', {})).catch((e: Error) => e);
      expect(String(error)).toMatch(
        new RegExp(`'http-service' endpoint ${address} did not answer send\\('whoami'\\).*not a Nest TCP reply`),
      );
      expect(client.describeEndpoints()[0]).toMatchObject({ failuresLastMinute: 1 });
    } finally {
      await plain.close();
      await new Promise((resolve) => http.close(resolve));
    }
  });

  it('a send without an answer before tcp.timeoutMs fails as a timeout, counted against the endpoint', async () => {
    const slow = await servers.start('timeout-slow', { register: false, env: { DELAY_MS: '2000' } });
    const plain = await Discovery.create(
      { backend: 'static', backendConfig: { addresses: [slow.address] }, loadBalance: 'round_robin' },
      { logger: quietLogger },
    );
    try {
      const client = plain.client({ name: 'slow', tcp: { timeoutMs: 300 } });
      const error = await firstValueFrom(client.proxy().send('whoami', {})).catch((e: Error) => e);
      expect(String(error)).toMatch(
        new RegExp(`'slow' endpoint ${slow.address} did not answer send\\('whoami'\\) before its deadline`),
      );
      expect(client.describeEndpoints()[0]).toMatchObject({ failuresLastMinute: 1 });
    } finally {
      await plain.close();
    }
  });
});
