import 'reflect-metadata';
import { Controller, Get, Module, type INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { HealthCheck, HealthCheckService, TerminusModule } from '@nestjs/terminus';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DiscoveryHealthIndicator,
  DiscoveryModule,
  createServiceInstance,
  type Registration,
} from '../../../lib/index.js';
import { findFreePort } from '../../../lib/core/tcp.js';
import { MemoryRegistry, MemoryStore } from '../../../lib/testing.js';
import { waitFor } from '../../support/wait-for.js';
import { recordingLogger, TIMING } from './support/health-kit.js';

@Controller()
class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly discovery: DiscoveryHealthIndicator,
  ) {}

  @Get('health')
  @HealthCheck()
  check() {
    return this.health.check([() => this.discovery.isHealthy('discovery', { minEndpoints: { orders: 2 } })]);
  }

  @Get('health/orders')
  @HealthCheck()
  orders() {
    return this.health.check([() => this.discovery.checkService('orders', { minEndpoints: 2 })]);
  }
}

interface HealthBody {
  status: string;
  details: Record<
    string,
    {
      status: string;
      registry?: { reachable: unknown };
      dependencies?: Record<string, { status: string; endpoints: number; reason?: string }>;
      registration?: { state: string };
    } & Record<string, unknown>
  >;
}

describe('DiscoveryHealthIndicator with Terminus 12, over real HTTP', () => {
  let app: INestApplication;
  let base: string;
  let store: MemoryStore;
  let registry: MemoryRegistry;
  const registrations = new Map<string, Registration>();

  async function add(service: string, id: string, port: number): Promise<void> {
    registrations.set(
      id,
      await registry.register(createServiceInstance({ service, id, address: `127.0.0.1:${port}` }), TIMING),
    );
  }

  async function remove(id: string): Promise<void> {
    await registrations.get(id)?.deregister();
    registrations.delete(id);
  }

  async function get(path: string): Promise<{ code: number; body: HealthBody }> {
    const response = await fetch(`${base}${path}`);
    return { code: response.status, body: (await response.json()) as HealthBody };
  }

  beforeAll(async () => {
    MemoryStore.reset('terminus');
    store = MemoryStore.named('terminus');
    registry = new MemoryRegistry(store);
    await add('orders', 'o1', 7001);
    await add('orders', 'o2', 7002);
    await add('payments', 'p1', 7101);
    const port = await findFreePort();

    @Module({
      imports: [
        TerminusModule,
        // The app registers itself too (as 'web', on its HTTP port): the indicator reports that registration.
        DiscoveryModule.forRoot({
          backend: 'memory',
          registry,
          clients: ['orders', 'payments'],
          instance: { service: 'web', id: 'web-1', port },
          logger: recordingLogger(),
        }),
      ],
      controllers: [HealthController],
    })
    class AppModule {}

    app = await NestFactory.create(AppModule, { logger: false });
    await app.listen(port, '127.0.0.1');
    base = `http://127.0.0.1:${port}`;
  });

  afterAll(async () => {
    await app?.close();
    await Promise.all([...registrations.values()].map((r) => r.deregister()));
  });

  it('up: registry reachable, own instance registered, every dependency at or above its minimum', async () => {
    await waitFor(async () => (await get('/health')).body.details.discovery?.registration?.state === 'registered', {
      what: 'the app registering itself',
    });
    const { code, body } = await get('/health');
    expect(code).toBe(200);
    expect(body.status).toBe('ok');
    const discovery = body.details.discovery;
    expect(discovery.status).toBe('up');
    expect(discovery.registry).toMatchObject({ status: 'up', backend: 'memory', reachable: true });
    expect(discovery.registration).toMatchObject({
      status: 'up',
      state: 'registered',
      instance: 'web-1',
      service: 'web',
    });
    expect(discovery.dependencies).toMatchObject({
      orders: { status: 'up', endpoints: 2, minEndpoints: 2 },
      payments: { status: 'up', endpoints: 1 },
    });
  });

  it('degraded: a dependency below its minimum (HTTP 200, overall status degraded)', async () => {
    await remove('o2');
    const { code, body } = await get('/health');
    expect(code).toBe(200);
    expect(body.status).toBe('degraded');
    expect(body.details.discovery.status).toBe('degraded');
    expect(body.details.discovery.dependencies!.orders).toMatchObject({
      status: 'degraded',
      endpoints: 1,
      reason: '1 endpoint(s), fewer than the minimum of 2',
    });
    const single = await get('/health/orders');
    expect(single.body.details.orders).toMatchObject({ status: 'degraded', endpoints: 1 });
    await add('orders', 'o2', 7002);
    expect((await get('/health')).body.status).toBe('ok');
  });

  it('degraded: the registry is unreachable and the last known endpoints are served stale', async () => {
    store.setReachable(false);
    try {
      const { code, body } = await get('/health');
      expect(code).toBe(200);
      expect(body.status).toBe('degraded');
      expect(body.details.discovery.registry).toMatchObject({ status: 'degraded', reachable: false });
      expect(body.details.discovery.dependencies!.orders).toMatchObject({
        status: 'degraded',
        endpoints: 2,
        state: 'stale',
      });
    } finally {
      store.setReachable(true);
    }
    await waitFor(async () => (await get('/health')).body.status === 'ok', { what: 'health back to ok' });
  });

  it('down: a dependency with no endpoint left (HTTP 503)', async () => {
    await remove('p1');
    const { code, body } = await get('/health');
    expect(code).toBe(503);
    expect(body.status).toBe('error');
    expect(body.details.discovery.status).toBe('down');
    expect(body.details.discovery.dependencies!.payments).toMatchObject({
      status: 'down',
      endpoints: 0,
      reason: 'the registry reports zero instances',
    });
    await add('payments', 'p1', 7101);
    expect((await get('/health')).code).toBe(200);
  });
});
