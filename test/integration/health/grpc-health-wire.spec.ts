import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GrpcHealthService, ServingStatus } from '../../../lib/index.js';
import { createProbe } from '../../../lib/health/health-probe.js';
import { HealthClientConstructor, type HealthCheckResponse } from '../../../lib/health/grpc-health-protocol.js';
import { waitFor } from '../../support/wait-for.js';

// The official grpc.health.v1 definition, so the hand-written codec is checked against protobufjs.
const HEALTH_PROTO = `syntax = "proto3";
package grpc.health.v1;
message HealthCheckRequest { string service = 1; }
message HealthCheckResponse {
  enum ServingStatus { UNKNOWN = 0; SERVING = 1; NOT_SERVING = 2; SERVICE_UNKNOWN = 3; }
  ServingStatus status = 1;
}
service Health {
  rpc Check(HealthCheckRequest) returns (HealthCheckResponse);
  rpc Watch(HealthCheckRequest) returns (stream HealthCheckResponse);
}
`;

type ProtoHealthClient = grpc.Client & {
  Check(
    req: { service: string },
    options: grpc.CallOptions,
    cb: (e: grpc.ServiceError | null, r?: { status: string }) => void,
  ): void;
  Watch(req: { service: string }): grpc.ClientReadableStream<{ status: string }>;
};

function bind(server: grpc.Server): Promise<number> {
  return new Promise((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, port) =>
      e ? reject(e) : resolve(port),
    ),
  );
}

describe('grpc.health.v1 on the wire, against proto-loader', () => {
  let dir: string;
  let Health: grpc.ServiceClientConstructor;
  const closers: Array<() => void> = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'switchyard-health-proto-'));
    const path = join(dir, 'health.proto');
    await writeFile(path, HEALTH_PROTO);
    const pkg = grpc.loadPackageDefinition(
      loadSync(path, { keepCase: true, enums: String, defaults: true }),
    ) as unknown as { grpc: { health: { v1: { Health: grpc.ServiceClientConstructor } } } };
    Health = pkg.grpc.health.v1.Health;
  });

  afterAll(async () => {
    closers.reverse().forEach((close) => close());
    await rm(dir, { recursive: true, force: true });
  });

  it('GrpcHealthService answers a proto-loader client: Check per service, NOT_FOUND for unknown, Watch streams changes', async () => {
    const health = new GrpcHealthService({ '': ServingStatus.SERVING, 'pkg.Orders': ServingStatus.NOT_SERVING });
    const server = new grpc.Server();
    expect(health.addToServer(server)).toBe(true);
    // A server that already serves Health keeps its own.
    expect(new GrpcHealthService().addToServer(server)).toBe(false);
    const port = await bind(server);
    closers.push(() => server.forceShutdown());
    const client = new Health(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as unknown as ProtoHealthClient;
    closers.push(() => client.close());
    const check = (service: string) =>
      new Promise<string>((resolve) =>
        client.Check({ service }, { deadline: Date.now() + 2_000 }, (e, r) =>
          resolve(e ? grpc.status[e.code] : r!.status),
        ),
      );
    expect(await check('')).toBe('SERVING');
    expect(await check('pkg.Orders')).toBe('NOT_SERVING');
    expect(await check('unknown')).toBe('NOT_FOUND');

    const seen: string[] = [];
    const watch = client.Watch({ service: 'pkg.Orders' });
    watch.on('data', (r: { status: string }) => seen.push(r.status));
    watch.on('error', () => undefined);
    await waitFor(() => seen.length === 1, { what: 'the first Watch answer' });
    health.setStatus('pkg.Orders', ServingStatus.SERVING);
    await waitFor(() => seen.length === 2, { what: 'the change' });
    await health.setNotServing();
    await waitFor(() => seen.length === 3, { what: 'NOT_SERVING' });
    expect(seen).toEqual(['NOT_SERVING', 'SERVING', 'NOT_SERVING']);
    const unknown: string[] = [];
    const watchUnknown = client.Watch({ service: 'later' });
    watchUnknown.on('data', (r: { status: string }) => unknown.push(r.status));
    watchUnknown.on('error', () => undefined);
    await waitFor(() => unknown.length === 1, { what: 'SERVICE_UNKNOWN' });
    expect(unknown).toEqual(['SERVICE_UNKNOWN']);
    watch.cancel();
    watchUnknown.cancel();
    health.close();
  });

  it("switchyard's client and probe understand a proto-loader server", async () => {
    let status = 'SERVING';
    const server = new grpc.Server();
    server.addService(Health.service, {
      Check: (call: grpc.ServerUnaryCall<{ service: string }, unknown>, cb: grpc.sendUnaryData<unknown>) =>
        call.request.service === 'x.Y' ? cb(null, { status }) : cb({ code: grpc.status.NOT_FOUND, details: 'unknown' }),
      Watch: (call: grpc.ServerWritableStream<unknown, unknown>) => call.end(),
    });
    const port = await bind(server);
    closers.push(() => server.forceShutdown());
    const client = new HealthClientConstructor(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    closers.push(() => client.close());
    const answer = await new Promise<HealthCheckResponse>((resolve, reject) =>
      client.Check({ service: 'x.Y' }, new grpc.Metadata(), { deadline: Date.now() + 2_000 }, (e, r) =>
        e ? reject(e) : resolve(r!),
      ),
    );
    expect(answer).toEqual({ status: ServingStatus.SERVING });

    const probe = createProbe({ host: '127.0.0.1', port, kind: 'grpc', service: 'x.Y', path: '/', intervalMs: 1_000 });
    closers.push(() => probe.close());
    expect(await probe.check(1_000)).toEqual({ ok: true });
    status = 'NOT_SERVING';
    expect(await probe.check(1_000)).toEqual({ ok: false, detail: 'NOT_SERVING' });
    const other = createProbe({ host: '127.0.0.1', port, kind: 'grpc', service: 'nope', path: '/', intervalMs: 1_000 });
    closers.push(() => other.close());
    expect(await other.check(1_000)).toMatchObject({ ok: false, detail: expect.stringMatching(/^NOT_FOUND/) });
  });

  it('a server without the Health service counts as serving (gRPC client-side health semantics), noted once', async () => {
    const server = new grpc.Server();
    const port = await bind(server);
    closers.push(() => server.forceShutdown());
    const probe = createProbe({ host: '127.0.0.1', port, kind: 'grpc', service: '', path: '/', intervalMs: 1_000 });
    closers.push(() => probe.close());
    expect(await probe.check(1_000)).toEqual({
      ok: true,
      detail: expect.stringMatching(/does not implement grpc.health.v1/),
    });
    expect(await probe.check(1_000)).toEqual({ ok: true, detail: undefined });
  });
});
