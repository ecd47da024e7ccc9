import 'reflect-metadata';
import * as grpc from '@grpc/grpc-js';
import { Controller, Module, type INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { GrpcMethod, Transport } from '@nestjs/microservices';
import { afterAll, describe, expect, it } from 'vitest';
import { Discovery, DiscoveryModule, GrpcHealthService, ServingStatus } from '../../../lib/index.js';
import { findFreePort } from '../../../lib/core/tcp.js';
import { HealthClientConstructor, type HealthCheckResponse } from '../../../lib/health/grpc-health-protocol.js';
import { GREETER_PROTO, greeterPackage, sayHello, type GreeterStub } from '../../support/grpc/greeter.js';
import { endpointSlice, KubernetesApiPeer } from '../../support/kubernetes/kubernetes-api-peer.js';
import { waitFor } from '../../support/wait-for.js';
import { recordingLogger } from '../health/support/health-kit.js';
import { kubeconfigFor, reader, RecordingLogger } from './kubernetes-test-kit.js';

// Long enough for this test to play the kubelet and the EndpointSlice controller within it.
const DRAIN_MS = 3_000;

@Controller()
class GreeterController {
  @GrpcMethod('Greeter', 'SayHello')
  sayHello(request: { name: string }): { message: string; instance: string } {
    return { message: `Hello, ${request.name}!`, instance: 'pod-1' };
  }
}

describe('kubernetes backend: a Nest app that Kubernetes lists (read-only backend)', () => {
  const cleanups: Array<() => Promise<void> | void> = [];

  afterAll(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  it('skips self-registration with one log line, and on shutdown turns NOT_SERVING and drains before closing', async () => {
    const api = await KubernetesApiPeer.start({ users: { reader: reader('reader-token') } });
    cleanups.push(() => api.stop());
    const port = await findFreePort();
    const slice = (ready: boolean) =>
      endpointSlice({
        service: 'drainer',
        name: 'drainer-a',
        namespace: 'shop',
        ports: [{ name: 'grpc', port }],
        endpoints: [
          ready
            ? { address: '127.0.0.1', pod: 'pod-1' }
            : { address: '127.0.0.1', pod: 'pod-1', ready: false, serving: false, terminating: true },
        ],
      });
    const logger = recordingLogger();

    @Module({
      imports: [
        DiscoveryModule.forRoot({
          backend: 'kubernetes',
          backendConfig: kubeconfigFor(api, 'reader-token'),
          instance: { service: 'drainer', id: 'pod-1', port },
          registration: { drainMs: DRAIN_MS },
          logger,
        }),
      ],
      controllers: [GreeterController],
    })
    class PodModule {}

    let app: INestApplication | undefined = await NestFactory.create(PodModule, { logger: false });
    app.connectMicroservice({
      transport: Transport.GRPC,
      options: {
        package: 'greeter',
        protoPath: GREETER_PROTO,
        url: `127.0.0.1:${port}`,
        loader: { keepCase: true },
        onLoadPackageDefinition: (_pkg: unknown, server: grpc.Server) =>
          app!.get(GrpcHealthService).addToServer(server),
      },
    });
    cleanups.push(() => app?.close());
    await app.startAllMicroservices();
    await app.init();
    expect(logger.lines.filter((l) => l.includes('self-registration'))).toEqual([
      "log backend 'kubernetes' is read-only: skipping self-registration of 'drainer'",
    ]);

    // Kubernetes lists the pod once its readiness probe passes; a caller follows the slice.
    await api.apply(slice(true));
    const caller = await Discovery.create(
      { backend: 'kubernetes', backendConfig: kubeconfigFor(api, 'reader-token') },
      { logger: new RecordingLogger() },
    );
    cleanups.push(() => caller.close());
    const client = caller.client('drainer');
    await client.ready();
    expect(client.snapshot().endpoints.map((e) => e.address)).toEqual([`127.0.0.1:${port}`]);

    const timeline: string[] = [];
    const note = (what: string) => !timeline.includes(what) && timeline.push(what);
    // The kubelet's readiness probe on grpc.health.v1 (as a Watch, so the change is seen when it happens).
    const probe = new HealthClientConstructor(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    cleanups.push(() => probe.close());
    const statuses: ServingStatus[] = [];
    const watch = probe.Watch({ service: '' });
    watch.on('error', () => undefined);
    const notServing = new Promise<void>((resolve) =>
      watch.on('data', (response: HealthCheckResponse) => {
        statuses.push(response.status);
        if (response.status === ServingStatus.NOT_SERVING) resolve();
      }),
    );
    await waitFor(() => statuses[0] === ServingStatus.SERVING, { what: 'the probe passing' });

    const direct = new greeterPackage.greeter.Greeter(
      `127.0.0.1:${port}`,
      grpc.credentials.createInsecure(),
    ) as unknown as GreeterStub;
    cleanups.push(() => direct.close());

    const closing = app.close();
    await notServing;
    note('not-serving');
    // The probe fails: the EndpointSlice controller marks the endpoint not ready, and callers drop it.
    await api.apply(slice(false));
    await waitFor(() => client.snapshot().size === 0, { what: 'the caller dropping the pod' });
    note('unlisted');
    // The pod still answers while it drains: calls that were already on their way finish.
    expect((await sayHello(direct, 'late')).instance).toBe('pod-1');
    note('answered while draining');
    await closing;
    app = undefined;
    // A fresh channel: the old one may still hold the closing connection, whose last stream is CANCELLED.
    const after = new greeterPackage.greeter.Greeter(
      `127.0.0.1:${port}`,
      grpc.credentials.createInsecure(),
    ) as unknown as GreeterStub;
    cleanups.push(() => after.close());
    await expect(sayHello(after, 'after', { deadlineMs: 1_000 })).rejects.toMatchObject({
      code: grpc.status.UNAVAILABLE,
    });
    note('closed');
    expect(timeline).toEqual(['not-serving', 'unlisted', 'answered while draining', 'closed']);
    expect(logger.lines).toContain(`log draining for ${DRAIN_MS} ms before the server closes`);
  });
});
