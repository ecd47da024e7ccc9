import 'reflect-metadata';
import { createServer, type Server } from 'node:net';
import { Inject, Injectable, Module, type INestApplicationContext } from '@nestjs/common';
import { ConfigModule, ConfigService } from '@nestjs/config';
import { NestFactory } from '@nestjs/core';
import { firstValueFrom, filter } from 'rxjs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  ConfigurationError,
  DiscoveryModule,
  InjectServiceClient,
  InjectServiceRegistry,
  ServiceClient,
  ServiceDiscoveryModule,
  ServiceRegistry,
  type DiscoveryLogger,
  type DiscoveryModuleOptions,
  type DiscoveryOptionsFactory,
} from '../../../lib/index.js';
import { canConnect, findFreePort } from '../../../lib/core/tcp.js';
import { MemoryRegistry, MemoryStore } from '../../../lib/testing.js';
import { waitFor } from '../../support/wait-for.js';

@Injectable()
class OrdersCaller {
  constructor(
    @InjectServiceClient('orders') readonly orders: ServiceClient,
    @InjectServiceRegistry() readonly self: ServiceRegistry,
  ) {}
}

function listen(port: number): Promise<Server> {
  return new Promise((resolve) => {
    const server = createServer((socket) => socket.end());
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
}

function recordingLogger(): DiscoveryLogger & { lines: string[] } {
  const lines: string[] = [];
  return {
    lines,
    log: (m) => lines.push(`log ${m}`),
    warn: (m) => lines.push(`warn ${m}`),
    error: (m) => lines.push(`error ${m}`),
  };
}

async function createApp(options: DiscoveryModuleOptions): Promise<INestApplicationContext> {
  @Module({ imports: [DiscoveryModule.forRoot(options)], providers: [OrdersCaller] })
  class AppModule {}
  return NestFactory.createApplicationContext(AppModule, { logger: false, abortOnError: false });
}

describe('DiscoveryModule', () => {
  let store: MemoryStore;
  const apps: INestApplicationContext[] = [];
  const servers: Server[] = [];

  beforeEach(() => {
    MemoryStore.reset('nest');
    store = MemoryStore.named('nest');
  });

  afterEach(async () => {
    await Promise.all(apps.splice(0).map((a) => a.close()));
    await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
  });

  it('registers the app only once its advertised port accepts TCP, and another app discovers it', async () => {
    const port = await findFreePort();
    const provider = await createApp({
      backend: 'memory',
      backendConfig: { store: 'nest' },
      instance: { service: 'orders', port, id: 'orders-1' },
      logger: recordingLogger(),
    });
    apps.push(provider);
    const consumer = await createApp({
      backend: 'memory',
      backendConfig: { store: 'nest' },
      logger: recordingLogger(),
    });
    apps.push(consumer);
    const self = provider.get(OrdersCaller).self;
    expect(self.state).toBe('unregistered');
    expect(store.get('orders-1')).toBeUndefined();

    servers.push(await listen(port));
    await waitFor(() => store.get('orders-1'), { what: 'registration after listen' });
    expect(self.state).toBe('registered');

    const client = consumer.get(OrdersCaller).orders;
    await client.ready({ timeoutMs: 2_000 });
    expect(client.pick().address).toBe(`127.0.0.1:${port}`);
    expect(client.snapshot().state).toBe('ok');
  });

  it('deregisters on shutdown while the server still accepts, then waits the drain delay', async () => {
    const port = await findFreePort();
    servers.push(await listen(port));
    const app = await createApp({
      backend: 'memory',
      backendConfig: { store: 'nest' },
      instance: { service: 'orders', port, id: 'orders-drain' },
      registration: { drainMs: 150 },
      logger: recordingLogger(),
    });
    const self = app.get(OrdersCaller).self;
    await firstValueFrom(self.events$.pipe(filter((e) => e.type === 'registered')));
    const order: string[] = [];
    self.events$.subscribe((e) => {
      if (e.type !== 'deregistered') return;
      order.push(`deregistered (in store: ${store.get('orders-drain') !== undefined})`);
      void canConnect('127.0.0.1', port).then((ok) => order.push(`port open after deregistration: ${ok}`));
    });
    const started = Date.now();
    await app.close();
    order.push('closed');
    expect(order).toEqual(['deregistered (in store: false)', 'port open after deregistration: true', 'closed']);
    expect(Date.now() - started).toBeGreaterThanOrEqual(150);
  });

  it('works for client-only apps and provides clients named by @InjectServiceClient without forFeature', async () => {
    const other = new MemoryRegistry(store);
    const { createServiceInstance } = await import('../../../lib/index.js');
    const reg = await other.register(createServiceInstance({ service: 'orders', address: '127.0.0.1:7001' }), {
      ttlMs: 90_000,
      heartbeatMs: 30_000,
    });
    const app = await createApp({ backend: 'memory', backendConfig: { store: 'nest' }, logger: recordingLogger() });
    apps.push(app);
    const caller = app.get(OrdersCaller);
    expect(caller.self.instance()).toBeUndefined();
    expect(caller.self.state).toBe('disabled');
    await caller.orders.ready({ timeoutMs: 2_000 });
    expect(caller.orders.snapshot().endpoints.map((e) => e.address)).toEqual(['127.0.0.1:7001']);
    await reg.deregister();
    await waitFor(() => caller.orders.snapshot().state === 'empty', { what: 'empty set after deregistration' });
  });

  it('forRootAsync takes a factory with injected ConfigService', async () => {
    @Module({
      imports: [
        ConfigModule.forRoot({ ignoreEnvFile: true, load: [() => ({ DISCOVERY_STORE: 'nest', LB: 'random' })] }),
        DiscoveryModule.forRootAsync({
          imports: [ConfigModule],
          inject: [ConfigService],
          useFactory: (config: ConfigService) => ({
            backend: 'memory',
            backendConfig: { store: config.get('DISCOVERY_STORE') },
            loadBalance: config.get('LB'),
            logger: recordingLogger(),
          }),
        }),
      ],
      providers: [OrdersCaller],
    })
    class AsyncModule {}
    const app = await NestFactory.createApplicationContext(AsyncModule, { logger: false, abortOnError: false });
    apps.push(app);
    expect(app.get(OrdersCaller).orders.strategy).toBe('random');
  });

  it('forRootAsync takes useClass and useExisting', async () => {
    @Injectable()
    class OptionsFactory implements DiscoveryOptionsFactory {
      createDiscoveryOptions(): DiscoveryModuleOptions {
        return {
          backend: 'memory',
          backendConfig: { store: 'nest' },
          loadBalance: 'round_robin',
          logger: recordingLogger(),
        };
      }
    }
    @Module({ imports: [DiscoveryModule.forRootAsync({ useClass: OptionsFactory })], providers: [OrdersCaller] })
    class WithClass {}
    const a = await NestFactory.createApplicationContext(WithClass, { logger: false, abortOnError: false });
    apps.push(a);
    expect(a.get(OrdersCaller).orders.strategy).toBe('round_robin');

    @Module({ providers: [OptionsFactory], exports: [OptionsFactory] })
    class OptionsModule {}
    @Module({
      imports: [ServiceDiscoveryModule.forRootAsync({ imports: [OptionsModule], useExisting: OptionsFactory })],
      providers: [OrdersCaller],
    })
    class WithExisting {}
    const b = await NestFactory.createApplicationContext(WithExisting, { logger: false, abortOnError: false });
    apps.push(b);
    expect(b.get(OrdersCaller).orders).toBeInstanceOf(ServiceClient);
  });

  it('forFeature gives a module its own per-service options', async () => {
    @Injectable()
    class Feature {
      constructor(@Inject('SWITCHYARD:CLIENT:payments') readonly payments: ServiceClient) {}
    }
    @Module({
      imports: [DiscoveryModule.forFeature([{ name: 'payments', loadBalance: 'random', version: 'v2' }])],
      providers: [Feature],
      exports: [Feature],
    })
    class PaymentsModule {}
    @Module({
      imports: [
        DiscoveryModule.forRoot({ backend: 'memory', backendConfig: { store: 'nest' }, logger: recordingLogger() }),
        PaymentsModule,
      ],
    })
    class App {}
    const app = await NestFactory.createApplicationContext(App, { logger: false, abortOnError: false });
    apps.push(app);
    const payments = app.get(Feature).payments;
    expect(payments.strategy).toBe('random');
    expect(payments.options.version).toBe('v2');
  });

  it('fails bootstrap with a field-path error on invalid options, registering nothing', async () => {
    const port = await findFreePort();
    servers.push(await listen(port));
    const attempt = createApp({
      backend: 'memory',
      backendConfig: { store: 'nest' },
      loadBalance: 'fastest',
      instance: { service: 'orders', port, id: 'never' },
      logger: recordingLogger(),
    });
    await expect(attempt).rejects.toBeInstanceOf(ConfigurationError);
    await expect(attempt).rejects.toThrow(/loadBalance: one of round_robin.*\(got "fastest"\)/);
    expect(store.list()).toEqual([]);
  });

  it('rejects an advertised address that is not host:port at bootstrap', async () => {
    await expect(
      createApp({
        backend: 'memory',
        backendConfig: { store: 'nest' },
        instance: { service: 'orders', address: 'http://x:1' },
        logger: recordingLogger(),
      }),
    ).rejects.toThrow(/Invalid address "http:\/\/x:1"/);
  });

  it('logs a clear error when the advertised port never accepts connections', async () => {
    const port = await findFreePort();
    const logger = recordingLogger();
    const app = await createApp({
      backend: 'memory',
      backendConfig: { store: 'nest' },
      instance: { service: 'orders', port, id: 'deaf' },
      registration: { awaitListenMs: 200 },
      logger,
    });
    apps.push(app);
    await waitFor(() => logger.lines.find((l) => l.startsWith('error') && l.includes(`127.0.0.1:${port}`)), {
      what: 'the never-listened error',
    });
    expect(store.get('deaf')).toBeUndefined();
  });

  it('skips self-registration with one log line on a read-only registry', async () => {
    const port = await findFreePort();
    servers.push(await listen(port));
    const logger = recordingLogger();
    const readOnly = Object.assign(new MemoryRegistry(store), { readOnly: true, backend: 'static' });
    const app = await createApp({
      backend: 'memory',
      registry: readOnly,
      instance: { service: 'orders', port },
      logger,
    });
    apps.push(app);
    expect(logger.lines.filter((l) => l.includes('read-only'))).toHaveLength(1);
    expect(store.list()).toEqual([]);
  });
});
