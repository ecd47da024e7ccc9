import 'reflect-metadata';
import * as grpc from '@grpc/grpc-js';
import { Controller, Module, type INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { GrpcMethod, Transport } from '@nestjs/microservices';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Discovery, DiscoveryModule, GrpcHealthService, ServingStatus } from '../../../lib/index.js';
import { findFreePort } from '../../../lib/core/tcp.js';
import {
  HealthClientConstructor,
  type HealthClient,
  type HealthCheckResponse,
} from '../../../lib/health/grpc-health-protocol.js';
import { GREETER_PROTO } from '../../support/grpc/greeter.js';
import { waitFor } from '../../support/wait-for.js';
import { recordingLogger } from './support/health-kit.js';

const DRAIN_MS = 400;

@Controller()
class GreeterController {
  @GrpcMethod('Greeter', 'SayHello')
  sayHello(request: { name: string }): { message: string; instance: string } {
    return { message: `Hello, ${request.name}!`, instance: 'drainer-1' };
  }
}

function check(client: HealthClient, service = ''): Promise<ServingStatus | string> {
  return new Promise((resolve) =>
    client.Check({ service }, new grpc.Metadata(), { deadline: Date.now() + 500 }, (error, response) =>
      resolve(error ? (grpc.status[error.code] ?? String(error.code)) : response!.status),
    ),
  );
}

describe('own grpc.health.v1 and graceful drain (Nest app with a gRPC microservice, local backend)', () => {
  let dir: string;
  const cleanups: Array<() => Promise<void> | void> = [];

  afterAll(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('on app.close() a client sees NOT_SERVING, then the instance leaving the registry, then the server closed, in that order', async () => {
    dir = await mkdtemp(join(tmpdir(), 'switchyard-drain-'));
    const port = await findFreePort();
    const address = `127.0.0.1:${port}`;

    @Module({
      imports: [
        DiscoveryModule.forRoot({
          backend: 'local',
          backendConfig: { dir },
          instance: { service: 'drainer', id: 'drainer-1', port },
          registration: { drainMs: DRAIN_MS },
          logger: recordingLogger(),
        }),
      ],
      controllers: [GreeterController],
    })
    class DrainerModule {}

    // A hybrid app (the usual shape of a Nest gRPC service): app.close() runs the
    // lifecycle hooks before closing the microservice. (A bare NestMicroservice's
    // close() stops its transport first; it drains properly on SIGTERM with enableShutdownHooks().)
    let app: INestApplication | undefined = await NestFactory.create(DrainerModule, { logger: false });
    app.connectMicroservice({
      transport: Transport.GRPC,
      options: {
        package: 'greeter',
        protoPath: GREETER_PROTO,
        url: address,
        loader: { keepCase: true },
        // The Nest-friendly hook: switchyard's Health service joins the microservice's own grpc server.
        onLoadPackageDefinition: (_pkg: unknown, server: grpc.Server) =>
          app!.get(GrpcHealthService).addToServer(server),
      },
    });
    cleanups.push(() => app?.close());
    await app.startAllMicroservices();
    await app.init();

    // The observer: another Discovery on the same directory, and a health client.
    const observer = await Discovery.create(
      { backend: 'local', backendConfig: { dir } },
      { logger: recordingLogger() },
    );
    cleanups.push(() => observer.close());
    const client = observer.client('drainer');
    await client.ready({ minEndpoints: 1, timeoutMs: 20_000 });
    expect(client.snapshot().endpoints[0].address).toBe(address);

    const health = new HealthClientConstructor(address, grpc.credentials.createInsecure());
    cleanups.push(() => health.close());
    expect(await check(health)).toBe(ServingStatus.SERVING);
    expect(await check(health, 'drainer')).toBe(ServingStatus.SERVING);
    expect(await check(health, 'nope')).toBe('NOT_FOUND');

    const timeline: Array<{ what: string; at: number }> = [];
    const note = (what: string) => {
      if (!timeline.some((t) => t.what === what)) timeline.push({ what, at: Date.now() });
    };
    const watch = health.Watch({ service: '' });
    const watched: ServingStatus[] = [];
    watch.on('data', (response: HealthCheckResponse) => {
      watched.push(response.status);
      if (response.status === ServingStatus.NOT_SERVING) note('not-serving');
    });
    watch.on('error', () => undefined);
    await waitFor(() => watched.length > 0, { what: 'the first Watch answer' });
    expect(watched).toEqual([ServingStatus.SERVING]);
    const subscription = client.endpoints$.subscribe((set) => set.size === 0 && note('deregistered'));
    cleanups.push(() => subscription.unsubscribe());
    // A separate prober notices the server closing (it keeps connecting until refused).
    const prober = new HealthClientConstructor(address, grpc.credentials.createInsecure(), {
      'grpc.use_local_subchannel_pool': 1,
      'grpc.initial_reconnect_backoff_ms': 20,
      'grpc.max_reconnect_backoff_ms': 50,
    });
    cleanups.push(() => prober.close());
    let probing = true;
    const probe = (async () => {
      while (probing) {
        const status = await check(prober);
        if (status === ServingStatus.NOT_SERVING) note('not-serving');
        if (status === 'UNAVAILABLE') note('closed');
        await new Promise((r) => setTimeout(r, 10));
      }
    })();

    const closing = app.close();
    await waitFor(() => timeline.some((t) => t.what === 'closed'), { timeoutMs: 10_000, what: 'the server closing' });
    probing = false;
    await probe;
    await closing;
    app = undefined;

    expect(timeline.map((t) => t.what)).toEqual(['not-serving', 'deregistered', 'closed']);
    const at = Object.fromEntries(timeline.map((t) => [t.what, t.at]));
    // The drain delay sits between leaving the registry and closing (removal is seen after a short debounce, so allow half).
    expect(at.closed - at.deregistered).toBeGreaterThanOrEqual(DRAIN_MS / 2);
  });
});
