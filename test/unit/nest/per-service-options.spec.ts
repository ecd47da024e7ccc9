import 'reflect-metadata';
import {
  Injectable,
  Module,
  type DynamicModule,
  type INestApplicationContext,
  type ModuleMetadata,
} from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  ConfigurationError,
  DiscoveryModule,
  InjectServiceClient,
  ServiceClient,
  type DiscoveryModuleOptions,
  type ServiceClientOptions,
} from '../../../lib/index.js';
import { MemoryRegistry, MemoryStore } from '../../../lib/testing.js';
import { GREETER_PROTO } from '../../support/grpc/greeter.js';

@Injectable()
class OrdersCaller {
  constructor(@InjectServiceClient('orders') readonly orders: ServiceClient) {}
}

const quiet = { log() {}, warn() {}, error() {} };
/** The README's per-service options: strategy, proto and retry. */
const ORDERS: ServiceClientOptions = {
  name: 'orders',
  loadBalance: 'least_connections',
  proto: { path: GREETER_PROTO },
  retry: { maxAttempts: 2 },
};

function rootOptions(store: MemoryStore, extra: Partial<DiscoveryModuleOptions> = {}): DiscoveryModuleOptions {
  return {
    backend: 'memory',
    loadBalance: 'round_robin',
    registry: new MemoryRegistry(store),
    logger: quiet,
    ...extra,
  };
}

async function start(
  imports: NonNullable<ModuleMetadata['imports']>,
  feature?: DynamicModule,
): Promise<INestApplicationContext> {
  @Module({ imports: feature ? [feature] : [], providers: [OrdersCaller], exports: [OrdersCaller] })
  class OrdersModule {}
  @Module({ imports: [...imports, OrdersModule] })
  class AppModule {}
  return NestFactory.createApplicationContext(AppModule, { logger: false, abortOnError: false });
}

function expectReadmeOptions(client: ServiceClient): void {
  expect(client.strategy).toBe('least_connections');
  expect(client.retryPolicy.maxAttempts).toBe(2);
  // The proto reached the client: a stub for its service can be made.
  expect(() => client.getService('Greeter')).not.toThrow();
}

describe('per-service options (forFeature, forRoot clients, forRootAsync)', () => {
  let store: MemoryStore;
  const apps: INestApplicationContext[] = [];

  beforeEach(() => {
    MemoryStore.reset('options');
    store = MemoryStore.named('options');
  });

  afterEach(async () => {
    await Promise.all(apps.splice(0).map((app) => app.close()));
  });

  it('reach the injected client when forFeature is imported after forRoot (the README quick start)', async () => {
    const app = await start([DiscoveryModule.forRoot(rootOptions(store))], DiscoveryModule.forFeature([ORDERS]));
    apps.push(app);
    expectReadmeOptions(app.get(OrdersCaller).orders);
  });

  it('reach the injected client when forFeature sits in the root module before forRoot', async () => {
    const app = await start([DiscoveryModule.forFeature([ORDERS]), DiscoveryModule.forRoot(rootOptions(store))]);
    apps.push(app);
    expectReadmeOptions(app.get(OrdersCaller).orders);
  });

  it('reach the injected client with forRootAsync and forFeature', async () => {
    const app = await start(
      [DiscoveryModule.forRootAsync({ useFactory: () => rootOptions(store) })],
      DiscoveryModule.forFeature([ORDERS]),
    );
    apps.push(app);
    expectReadmeOptions(app.get(OrdersCaller).orders);
  });

  it('reach the injected client when the async factory returns them as clients', async () => {
    const app = await start([
      DiscoveryModule.forRootAsync({ useFactory: async () => rootOptions(store, { clients: [ORDERS] }) }),
    ]);
    apps.push(app);
    expectReadmeOptions(app.get(OrdersCaller).orders);
  });

  it('reach the injected client from forRoot({ clients })', async () => {
    const app = await start([DiscoveryModule.forRoot(rootOptions(store, { clients: [ORDERS] }))]);
    apps.push(app);
    expectReadmeOptions(app.get(OrdersCaller).orders);
  });

  it('are one client per service: a feature module and the root module inject the same one', async () => {
    @Injectable()
    class RootCaller {
      constructor(@InjectServiceClient('orders') readonly orders: ServiceClient) {}
    }
    @Module({ imports: [DiscoveryModule.forFeature([ORDERS])], providers: [OrdersCaller], exports: [OrdersCaller] })
    class OrdersModule {}
    @Module({ imports: [DiscoveryModule.forRoot(rootOptions(store)), OrdersModule], providers: [RootCaller] })
    class AppModule {}
    const app = await NestFactory.createApplicationContext(AppModule, { logger: false, abortOnError: false });
    apps.push(app);
    expect(app.get(RootCaller).orders).toBe(app.get(OrdersCaller).orders);
    expectReadmeOptions(app.get(RootCaller).orders);
  });

  it('refuse two different option sets for one service at bootstrap, naming both', async () => {
    @Module({ imports: [DiscoveryModule.forFeature([{ name: 'orders', loadBalance: 'random' }])] })
    class BillingModule {}
    @Module({
      imports: [DiscoveryModule.forRoot(rootOptions(store)), DiscoveryModule.forFeature([ORDERS]), BillingModule],
      providers: [OrdersCaller],
    })
    class AppModule {}
    const failure = NestFactory.createApplicationContext(AppModule, { logger: false, abortOnError: false });
    await expect(failure).rejects.toThrow(ConfigurationError);
    await expect(failure).rejects.toThrow(
      /'orders' is declared by .*forFeature\(\) in (AppModule|BillingModule).*forFeature\(\) in (AppModule|BillingModule)/,
    );
  });

  it('accept the same option set declared twice', async () => {
    @Module({ imports: [DiscoveryModule.forFeature([{ ...ORDERS }])] })
    class BillingModule {}
    const app = await start(
      [DiscoveryModule.forRoot(rootOptions(store)), BillingModule],
      DiscoveryModule.forFeature([ORDERS]),
    );
    apps.push(app);
    expectReadmeOptions(app.get(OrdersCaller).orders);
  });
});

describe('clients named by @InjectServiceClient belong to the app that injects them', () => {
  const apps: INestApplicationContext[] = [];
  afterEach(async () => {
    await Promise.all(apps.splice(0).map((app) => app.close()));
  });

  it('does not create, in a second app of the process, the clients only the first app injects', async () => {
    MemoryStore.reset('apps');
    const store = MemoryStore.named('apps');
    @Injectable()
    class InventoryCaller {
      constructor(@InjectServiceClient('inventory-only-in-app-one') readonly inventory: ServiceClient) {}
    }
    @Module({ imports: [DiscoveryModule.forRoot(rootOptions(store))], providers: [InventoryCaller] })
    class AppOne {}
    @Module({ imports: [DiscoveryModule.forRoot(rootOptions(store))] })
    class AppTwo {}
    const one = await NestFactory.createApplicationContext(AppOne, { logger: false, abortOnError: false });
    apps.push(one);
    const two = await NestFactory.createApplicationContext(AppTwo, { logger: false, abortOnError: false });
    apps.push(two);
    const services = (app: INestApplicationContext) =>
      app
        .get<{ listClients(): ServiceClient[] }>('SWITCHYARD:DISCOVERY')
        .listClients()
        .map((c) => c.service);
    expect(services(one)).toContain('inventory-only-in-app-one');
    expect(services(two)).not.toContain('inventory-only-in-app-one');
  });
});
