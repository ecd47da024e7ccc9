import { firstValueFrom, lastValueFrom } from 'rxjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Discovery, type EndpointSet, type ServiceClient } from '../../../lib/index.js';
import { canConnect } from '../../../lib/core/tcp.js';
import { waitFor } from '../../support/wait-for.js';
import { quietLogger, TcpServers, underLoad } from './support/tcp-kit.js';

// Own deregistration and drain of a Nest TCP microservice come from the
// DiscoveryModule's lifecycle, as for gRPC: registered once the port accepts
// TCP; on SIGTERM (enableShutdownHooks) deregistered, drained, then closed.
describe('TCP microservices that restart (SIGTERM: deregister, drain, close)', () => {
  let servers: TcpServers;
  let discovery: Discovery;

  beforeAll(async () => {
    servers = await TcpServers.create();
    discovery = await Discovery.create(
      { backend: 'local', backendConfig: { dir: servers.dir }, loadBalance: 'round_robin' },
      { logger: quietLogger },
    );
  });

  afterAll(async () => {
    await discovery?.close();
    await servers?.stop();
  });

  it('leaves the registry before it stops accepting, and answers the request in flight', async () => {
    const server = await servers.start('drainer', { env: { SERVICE: 'drain', DELAY_MS: '500', DRAIN_MS: '800' } });
    const client = discovery.client('drain');
    await client.ready({ timeoutMs: 20_000 });
    const reply = firstValueFrom(client.proxy().send('create', { id: 'in-flight' }));
    await waitFor(() => servers.handled('request', 'create').has('in-flight'), { what: 'the request being handled' });
    let acceptingWhenLeft: boolean | undefined;
    const gone = new Promise<void>((resolve) => {
      const subscription = client.endpoints$.subscribe((set: EndpointSet) => {
        if (set.size > 0) return;
        void canConnect('127.0.0.1', server.port, 200).then((accepting) => {
          acceptingWhenLeft = accepting;
          resolve();
        });
        queueMicrotask(() => subscription.unsubscribe());
      });
    });
    server.peer.signal('SIGTERM');
    await gone;
    expect(acceptingWhenLeft).toBe(true);
    expect(await reply).toEqual({ instance: 'drainer', id: 'in-flight' });
    await server.peer.waitForExit();
    expect(await canConnect('127.0.0.1', server.port, 200)).toBe(false);
  });

  it('a rolling restart under load: zero failed sends (not idempotent), and every event handled exactly once', async () => {
    const ids = ['roll-1', 'roll-2', 'roll-3'];
    const env = { SERVICE: 'rolling', DRAIN_MS: '800' };
    const started = await Promise.all(ids.map((id) => servers.start(id, { env })));
    const client: ServiceClient = discovery.client('rolling');
    await client.ready({ minEndpoints: 3, timeoutMs: 20_000 });
    const proxy = client.proxy();
    let restarting = true;
    const emitted: string[] = [];
    const replies: string[] = [];
    const load = underLoad(
      4,
      () => !restarting,
      async (n) => {
        const id = `r-${n}`;
        if (n % 2 === 0) {
          await lastValueFrom(proxy.emit('tick', { id }), { defaultValue: undefined });
          emitted.push(id);
        } else {
          replies.push((await firstValueFrom(proxy.send<{ id: string }>('create', { id }))).id);
        }
      },
    );
    for (const [i, old] of started.entries()) {
      await old.peer.stop();
      await servers.start(ids[i], { env, port: old.port });
      await waitFor(() => client.snapshot().size === 3, { timeoutMs: 20_000, what: `${ids[i]} back in the set` });
    }
    restarting = false;
    const { sent, failures } = await load;
    expect(failures.map((e) => e.message)).toEqual([]);
    expect(emitted.length + replies.length).toBe(sent);
    const creates = servers.handled('request', 'create');
    expect(replies.filter((id) => creates.get(id)?.length !== 1)).toEqual([]);
    const ticks = await waitFor(
      () => {
        const handled = servers.handled('event', 'tick');
        return emitted.every((id) => handled.has(id)) ? handled : undefined;
      },
      { what: 'every event handled' },
    );
    expect(emitted.filter((id) => ticks.get(id)?.length !== 1)).toEqual([]);
    expect(emitted.length).toBeGreaterThan(50);
  }, 90_000);
});
