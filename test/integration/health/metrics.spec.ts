import 'reflect-metadata';
import * as grpc from '@grpc/grpc-js';
import { Controller, Get, Header, Inject, Module, type INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Registry as PromRegistry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DiscoveryModule, getServiceClientToken, type Registration, type ServiceClient } from '../../../lib/index.js';
import { findFreePort } from '../../../lib/core/tcp.js';
import { MemoryRegistry, MemoryStore } from '../../../lib/testing.js';
import {
  GREETER_PROTO,
  greeterPackage,
  sayHello,
  type GreeterStub,
  type HelloReply,
} from '../../support/grpc/greeter.js';
import { waitFor } from '../../support/wait-for.js';
import { HealthGreeterServer } from './support/health-servers.js';
import { recordingLogger, register } from './support/health-kit.js';

const promRegistry = new PromRegistry();

@Controller()
class MetricsController {
  @Get('metrics')
  @Header('content-type', 'text/plain')
  metrics(): Promise<string> {
    return promRegistry.metrics();
  }
}

/** `{ name, labels, value }` of every sample in a Prometheus text exposition. */
function parse(text: string): Array<{ name: string; labels: Record<string, string>; value: number }> {
  const samples = [];
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)$/.exec(line);
    if (!match) continue;
    const labels: Record<string, string> = {};
    for (const pair of (match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[pair[1]] = pair[2]!;
    samples.push({ name: match[1], labels, value: Number(match[3]) });
  }
  return samples;
}

function helloOver(channel: grpc.Channel): Promise<HelloReply> {
  const stub = new greeterPackage.greeter.Greeter('unused', grpc.credentials.createInsecure(), {
    channelOverride: channel,
  }) as unknown as GreeterStub;
  return new Promise((resolve, reject) =>
    stub.SayHello({ name: 'x' }, new grpc.Metadata(), { deadline: Date.now() + 5_000 }, (e, r) =>
      e ? reject(e) : resolve(r!),
    ),
  );
}

describe('prom-client metrics exposed on /metrics', () => {
  let app: INestApplication;
  let base: string;
  let store: MemoryStore;
  let registry: MemoryRegistry;
  const registrations: Registration[] = [];
  const servers: HealthGreeterServer[] = [];
  let greeter: ServiceClient;
  let flaky: ServiceClient;

  async function scrape(): Promise<ReturnType<typeof parse>> {
    const response = await fetch(`${base}/metrics`);
    expect(response.status).toBe(200);
    return parse(await response.text());
  }

  async function value(name: string, labels: Record<string, string>): Promise<number | undefined> {
    const samples = await scrape();
    return samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
  }

  beforeAll(async () => {
    MemoryStore.reset('metrics');
    store = MemoryStore.named('metrics');
    registry = new MemoryRegistry(store);
    const started = await Promise.all(
      ['g1', 'g2', 'g3', 'f1', 'f2', 'f3'].map((id) => new HealthGreeterServer(id).start()),
    );
    servers.push(...started);
    for (const s of started.slice(0, 3)) registrations.push(await register(registry, 'greeter', s.id, s.address));
    for (const s of started.slice(3)) registrations.push(await register(registry, 'flaky', s.id, s.address));
    const port = await findFreePort();

    @Module({
      imports: [
        DiscoveryModule.forRoot({
          backend: 'memory',
          registry,
          loadBalance: 'round_robin',
          instance: { service: 'web', id: 'web-1', port },
          clients: [{ name: 'greeter', proto: { path: GREETER_PROTO } }, 'flaky'],
          healthCheck: { enabled: true, interval: 0.25, timeout: 0.2, failureThreshold: 3, successThreshold: 1 },
          outlierDetection: { consecutiveFailures: 2, baseEjectionTime: 60 },
          metrics: { register: promRegistry },
          logger: recordingLogger(),
        }),
      ],
      controllers: [MetricsController],
    })
    class AppModule {
      constructor(
        @Inject(getServiceClientToken('greeter')) readonly greeter: ServiceClient,
        @Inject(getServiceClientToken('flaky')) readonly flaky: ServiceClient,
      ) {}
    }

    app = await NestFactory.create(AppModule, { logger: false });
    await app.listen(port, '127.0.0.1');
    base = `http://127.0.0.1:${port}`;
    greeter = app.get(AppModule).greeter;
    flaky = app.get(AppModule).flaky;
    await Promise.all([greeter.ready({ minEndpoints: 3 }), flaky.ready({ minEndpoints: 3 })]);
  });

  afterAll(async () => {
    await app?.close();
    await Promise.all(registrations.map((r) => r.deregister()));
    servers.forEach((s) => s.kill());
  });

  it('registration state, endpoint counts and watch lag', async () => {
    await waitFor(
      async () =>
        (await value('switchyard_registration_state', { service: 'web', instance: 'web-1', state: 'registered' })) ===
        1,
      {
        what: 'the registered state in /metrics',
      },
    );
    expect(await value('switchyard_registration_state', { service: 'web', state: 'registering' })).toBe(0);
    expect(await value('switchyard_endpoints', { service: 'greeter', state: 'healthy' })).toBe(3);
    expect(await value('switchyard_endpoints', { service: 'greeter', state: 'unhealthy' })).toBe(0);
    expect(await value('switchyard_endpoints_served', { service: 'greeter' })).toBe(3);
    expect(await value('switchyard_watch_lag_seconds_count', { service: 'greeter' })).toBeGreaterThanOrEqual(1);
    expect(await value('switchyard_registry_reachable', { backend: 'memory' })).toBe(1);
  });

  it('picks per endpoint equal the calls each server received', async () => {
    const stub = greeter.getService<GreeterStub>('Greeter');
    for (let i = 0; i < 30; i++) await sayHello(stub, 'x');
    const samples = await scrape();
    for (const server of servers.slice(0, 3)) {
      const picks = samples.find(
        (s) =>
          s.name === 'switchyard_picks_total' && s.labels.service === 'greeter' && s.labels.endpoint === server.address,
      )?.value;
      expect(picks, server.id).toBe(server.calls);
    }
    expect(servers.slice(0, 3).reduce((sum, s) => sum + s.calls, 0)).toBe(30);
  });

  it('health-check results, unhealthy endpoints, panic mode', async () => {
    const [g1, g2, g3] = servers;
    g2.setServing(false);
    await waitFor(async () => (await value('switchyard_endpoints', { service: 'greeter', state: 'unhealthy' })) === 1, {
      what: 'one unhealthy endpoint',
    });
    expect(await value('switchyard_endpoints_served', { service: 'greeter' })).toBe(2);
    expect(
      await value('switchyard_health_checks_total', { endpoint: g2.address, kind: 'grpc', result: 'failure' }),
    ).toBeGreaterThanOrEqual(3);
    expect(
      await value('switchyard_health_checks_total', { endpoint: g1.address, kind: 'grpc', result: 'success' }),
    ).toBeGreaterThanOrEqual(1);
    expect(await value('switchyard_panic_mode', { service: 'greeter' })).toBe(0);
    g3.setServing(false);
    await waitFor(async () => (await value('switchyard_panic_mode', { service: 'greeter' })) === 1, {
      what: 'panic mode in /metrics',
    });
    expect(await value('switchyard_panic_total', { service: 'greeter' })).toBe(1);
    expect(await value('switchyard_endpoints_served', { service: 'greeter' })).toBe(3);
    g2.setServing(true);
    g3.setServing(true);
    await waitFor(async () => (await value('switchyard_endpoints', { service: 'greeter', state: 'healthy' })) === 3, {
      what: 'all healthy again',
    });
    expect(await value('switchyard_panic_mode', { service: 'greeter' })).toBe(0);
    expect(await value('switchyard_panic_total', { service: 'greeter' })).toBe(1);
  });

  it('ejections per endpoint', async () => {
    const sick = servers[3];
    sick.failWith = grpc.status.UNAVAILABLE;
    for (let i = 0; i < 12; i++) await flaky.call(({ channel }) => helloOver(channel)).catch(() => undefined);
    expect(await value('switchyard_ejections_total', { service: 'flaky', endpoint: sick.address })).toBe(1);
    expect(await value('switchyard_endpoints', { service: 'flaky', state: 'ejected' })).toBe(1);
    expect(await value('switchyard_endpoints_served', { service: 'flaky' })).toBe(2);
  });

  it('registry errors and reachability', async () => {
    expect(await value('switchyard_registry_errors_total', { service: 'greeter', backend: 'memory' })).toBeUndefined();
    store.setReachable(false);
    try {
      expect(await value('switchyard_registry_errors_total', { service: 'greeter', backend: 'memory' })).toBe(1);
      expect(await value('switchyard_registry_errors_total', { service: 'flaky', backend: 'memory' })).toBe(1);
      expect(await value('switchyard_registry_reachable', { backend: 'memory' })).toBe(0);
      expect(await value('switchyard_endpoint_set_stale', { service: 'greeter' })).toBe(1);
    } finally {
      store.setReachable(true);
    }
    expect(await value('switchyard_registry_reachable', { backend: 'memory' })).toBe(1);
    expect(await value('switchyard_endpoint_set_stale', { service: 'greeter' })).toBe(0);
    expect(await value('switchyard_registry_errors_total', { service: 'greeter', backend: 'memory' })).toBe(1);
  });
});
