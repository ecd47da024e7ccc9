import 'reflect-metadata';
import { Inject, Injectable, Module, type INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ClientsModule, type ClientProxy } from '@nestjs/microservices';
import { firstValueFrom, toArray, type Observable } from 'rxjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DiscoveryClientProxy,
  DiscoveryModule,
  InjectServiceClient,
  NoEndpointsError,
  ServiceClient,
} from '../../../lib/index.js';
import { waitFor } from '../../support/wait-for.js';
import { quietLogger, spread, TcpServers } from './support/tcp-kit.js';

@Injectable()
class OrdersCaller {
  constructor(
    @Inject('ORDERS') readonly registered: ClientProxy,
    @Inject('ORDERS_ASYNC') readonly registeredAsync: ClientProxy,
    @Inject('NOWHERE') readonly nowhere: ClientProxy,
    @InjectServiceClient('orders') readonly client: ServiceClient,
  ) {}
}

function callerModule(dir: string) {
  @Module({
    imports: [
      DiscoveryModule.forRoot({
        backend: 'local',
        backendConfig: { dir },
        loadBalance: 'round_robin',
        logger: quietLogger,
      }),
      ClientsModule.register([{ name: 'ORDERS', customClass: DiscoveryClientProxy, options: { service: 'orders' } }]),
      ClientsModule.registerAsync([
        {
          name: 'ORDERS_ASYNC',
          useFactory: () => ({
            customClass: DiscoveryClientProxy,
            options: { service: 'orders', tcp: { timeoutMs: 5_000 } },
          }),
        },
        {
          name: 'NOWHERE',
          useFactory: () => ({
            customClass: DiscoveryClientProxy,
            options: { service: 'nowhere', readyTimeoutMs: 300 },
          }),
        },
      ]),
    ],
    providers: [OrdersCaller],
  })
  class CallerModule {}
  return CallerModule;
}

describe("DiscoveryClientProxy through Nest's ClientsModule (3 Nest TCP microservices, each in its own process)", () => {
  let servers: TcpServers;
  let app: INestApplicationContext;
  let caller: OrdersCaller;

  beforeAll(async () => {
    servers = await TcpServers.create();
    await Promise.all(['s1', 's2', 's3'].map((id) => servers.start(id)));
    app = await NestFactory.createApplicationContext(callerModule(servers.dir), { logger: false, abortOnError: false });
    caller = app.get(OrdersCaller);
    await caller.client.ready({ minEndpoints: 3, timeoutMs: 20_000 });
  });

  afterAll(async () => {
    await app?.close();
    await servers?.stop();
  });

  const send = (proxy: ClientProxy) => (pattern: string, data: unknown) =>
    proxy.send<{ instance: string }>(pattern, data);

  it('register(): sends spread over the three instances in exact round-robin shares', async () => {
    expect(caller.registered).toBeInstanceOf(DiscoveryClientProxy);
    const counts = await spread(send(caller.registered), 300);
    expect(Object.fromEntries([...counts].sort())).toEqual({ s1: 100, s2: 100, s3: 100 });
  });

  it('registerAsync() with options of its own (a client of its own) spreads the same way', async () => {
    expect(caller.registeredAsync).toBeInstanceOf(DiscoveryClientProxy);
    const counts = await spread(send(caller.registeredAsync), 150);
    expect(Object.fromEntries([...counts].sort())).toEqual({ s1: 50, s2: 50, s3: 50 });
  });

  it("@InjectServiceClient's proxy() is one proxy per client, balanced by the client's picker", async () => {
    const proxy = caller.client.proxy();
    expect(proxy).toBe(caller.client.proxy());
    expect(proxy).toBeInstanceOf(DiscoveryClientProxy);
    const counts = await spread(send(proxy), 90);
    expect(Object.fromEntries([...counts].sort())).toEqual({ s1: 30, s2: 30, s3: 30 });
  });

  it('passes object patterns, stream replies of several values and errors answered by the server', async () => {
    const proxy = caller.registered;
    expect(await firstValueFrom(proxy.send({ cmd: 'sum' }, { numbers: [1, 2, 3] }))).toBe(6);
    const stream = await firstValueFrom(
      proxy.send<{ instance: string; n: number }>('stream', { count: 5 }).pipe(toArray()),
    );
    expect(stream.map((v) => v.n)).toEqual([1, 2, 3, 4, 5]);
    expect(new Set(stream.map((v) => v.instance)).size).toBe(1);
    await expect(firstValueFrom(proxy.send('fail', {}))).rejects.toEqual({
      code: 'refused',
      instance: expect.any(String),
    });
    await expect(firstValueFrom(proxy.send('no-such-pattern', {}))).rejects.toMatch(/no matching message handler/);
  });

  it('emit() is hot: each event reaches one instance once, round robin, without a subscriber', async () => {
    for (let i = 0; i < 30; i++) caller.registered.emit('tick', { id: `hot-${i}` });
    const handled = await waitFor(
      () => {
        const events = [...servers.handled('event', 'tick')].filter(([id]) => id.startsWith('hot-'));
        return events.length === 30 ? events : undefined;
      },
      { what: '30 events handled' },
    );
    expect(handled.every(([, by]) => by.length === 1)).toBe(true);
    const perServer = new Map<string, number>();
    for (const [, [by]] of handled) perServer.set(by, (perServer.get(by) ?? 0) + 1);
    expect(Object.fromEntries([...perServer].sort())).toEqual({ s1: 10, s2: 10, s3: 10 });
  });

  it('an unknown service: NoEndpointsError through the Observable after readyTimeoutMs, never a synchronous throw', async () => {
    let observable: Observable<unknown> | undefined;
    expect(() => (observable = caller.nowhere.send('whoami', {}))).not.toThrow();
    const error = await firstValueFrom(observable!).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NoEndpointsError);
    expect(error).toMatchObject({ service: 'nowhere', reason: 'empty' });
    await expect(caller.nowhere.connect()).rejects.toBeInstanceOf(NoEndpointsError);
    const emitted = await firstValueFrom(caller.nowhere.emit('tick', { id: 'lost' })).catch((e: unknown) => e);
    expect(emitted).toBeInstanceOf(NoEndpointsError);
  });

  it('send() and emit() with a null pattern or data fail through the Observable, as ClientTCP does', async () => {
    await expect(firstValueFrom(caller.registered.send(null, {}))).rejects.toThrow(/pattern/);
    await expect(firstValueFrom(caller.registered.emit('tick', undefined))).rejects.toThrow(/data/);
  });
});

describe('DiscoveryClientProxy options and application lookup', () => {
  it('options without `service` fail at bootstrap, naming the field (register and registerAsync)', async () => {
    expect(() =>
      ClientsModule.register([{ name: 'BAD', customClass: DiscoveryClientProxy, options: { name: 'orders' } }]),
    ).toThrow(/options\.service: the name of the service to call/);
    expect(() =>
      ClientsModule.register([
        { name: 'BAD', customClass: DiscoveryClientProxy, options: { service: 'orders', tlsOptions: {} } },
      ]),
    ).toThrow(/options\.tlsOptions: nothing here: ClientTCP options go under options\.tcp/);
    expect(() =>
      ClientsModule.register([
        { name: 'BAD', customClass: DiscoveryClientProxy, options: { service: 'orders', tcp: { port: 3000 } } },
      ]),
    ).toThrow(/options\.tcp\.port: nothing: endpoints \(host and port\) come from the registry/);

    @Module({
      imports: [
        DiscoveryModule.forRoot({ backend: 'memory', logger: quietLogger }),
        ClientsModule.registerAsync([
          { name: 'BAD', useFactory: () => ({ customClass: DiscoveryClientProxy, options: {} }) },
        ]),
      ],
    })
    class BadModule {}
    await expect(
      NestFactory.createApplicationContext(BadModule, { logger: false, abortOnError: false }),
    ).rejects.toThrow(/options\.service/);
  });

  it('one module bootstrapped twice (as tests do): the proxy ClientsModule made once sends through the live application', async () => {
    const [first, second] = await Promise.all([TcpServers.create(), TcpServers.create()]);
    let dir = first.dir;
    @Module({
      imports: [
        DiscoveryModule.forRootAsync({
          useFactory: () => ({ backend: 'local', backendConfig: { dir }, logger: quietLogger }),
        }),
        ClientsModule.register([{ name: 'ORDERS', customClass: DiscoveryClientProxy, options: { service: 'orders' } }]),
      ],
    })
    class ReusedModule {}
    try {
      await Promise.all([first.start('first'), second.start('second')]);
      const reached: unknown[] = [];
      let proxy: ClientProxy | undefined;
      for (const servers of [first, second]) {
        dir = servers.dir;
        const app = await NestFactory.createApplicationContext(ReusedModule, { logger: false, abortOnError: false });
        try {
          expect(proxy === undefined || proxy === app.get('ORDERS')).toBe(true);
          proxy = app.get<ClientProxy>('ORDERS');
          reached.push(await firstValueFrom(proxy.send('whoami', {})));
        } finally {
          await app.close();
        }
      }
      expect(reached).toEqual([{ instance: 'first' }, { instance: 'second' }]);
      // No application holds it any more: its client was closed.
      await expect(firstValueFrom(proxy!.send('whoami', {}))).rejects.toThrow(/client for 'orders' was closed/);
    } finally {
      await Promise.all([first.stop(), second.stop()]);
    }
  }, 60_000);

  it('with two applications in one process, each ClientsModule proxy sends through its own application', async () => {
    const [a, b] = await Promise.all([TcpServers.create(), TcpServers.create()]);
    const apps: INestApplicationContext[] = [];
    try {
      await Promise.all([a.start('in-a'), b.start('in-b')]);
      for (const servers of [a, b])
        apps.push(
          await NestFactory.createApplicationContext(callerModule(servers.dir), { logger: false, abortOnError: false }),
        );
      const [fromA, fromB] = apps.map((app) => app.get(OrdersCaller).registered);
      const [countsA, countsB] = await Promise.all([spread(send(fromA), 6), spread(send(fromB), 6)]);
      expect(Object.fromEntries(countsA)).toEqual({ 'in-a': 6 });
      expect(Object.fromEntries(countsB)).toEqual({ 'in-b': 6 });
    } finally {
      for (const app of apps) await app.close();
      await Promise.all([a.stop(), b.stop()]);
    }

    function send(proxy: ClientProxy) {
      return (pattern: string, data: unknown) => proxy.send<{ instance: string }>(pattern, data);
    }
  }, 60_000);
});
