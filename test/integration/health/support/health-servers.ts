import * as grpc from '@grpc/grpc-js';
import { createServer, type Server as HttpServer } from 'node:http';
import { GrpcHealthService, ServingStatus } from '../../../../lib/index.js';
import { HEALTH_SERVICE_DEFINITION } from '../../../../lib/health/grpc-health-protocol.js';
import { greeterPackage, type HelloReply } from '../../../support/grpc/greeter.js';

/**
 * A real grpc-js server on 127.0.0.1 serving Greeter and grpc.health.v1,
 * counting Greeter calls and health checks. The health answers come from
 * switchyard's GrpcHealthService (its wire format is checked against
 * proto-loader in grpc-health-wire.spec.ts).
 */
export class HealthGreeterServer {
  calls = 0;
  checks = 0;
  readonly health = new GrpcHealthService();
  /** Answer Greeter calls with this status instead of a reply. */
  failWith: grpc.status | undefined;
  private server: grpc.Server | undefined;
  port = 0;

  constructor(readonly id: string) {}

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  async start(port = 0): Promise<this> {
    const server = new grpc.Server({ 'grpc.so_reuseport': 0 });
    server.addService(greeterPackage.greeter.Greeter.service, {
      SayHello: (
        call: grpc.ServerUnaryCall<{ name: string }, HelloReply>,
        callback: grpc.sendUnaryData<HelloReply>,
      ) => {
        this.calls++;
        if (this.failWith !== undefined) callback({ code: this.failWith, details: `${this.id} fails on purpose` });
        else callback(null, { message: `Hello, ${call.request.name}!`, instance: this.id });
      },
    });
    const health = this.health.implementation();
    server.addService(HEALTH_SERVICE_DEFINITION, {
      ...health,
      Check: (call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => {
        this.checks++;
        (health.Check as grpc.handleUnaryCall<unknown, unknown>)(call, callback);
      },
    });
    this.port = await new Promise<number>((resolve, reject) =>
      server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (error, bound) =>
        error ? reject(error) : resolve(bound),
      ),
    );
    this.server = server;
    return this;
  }

  setServing(serving: boolean): void {
    this.health.setStatus('', serving ? ServingStatus.SERVING : ServingStatus.NOT_SERVING);
  }

  kill(): void {
    this.health.close();
    this.server?.forceShutdown();
    this.server = undefined;
  }
}

/** A real HTTP server answering `GET <path>` with `status` (200 by default), counting requests to that path. */
export class HttpHealthServer {
  requests = 0;
  status = 200;
  private server: HttpServer | undefined;
  port = 0;

  constructor(readonly path = '/health') {}

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  async start(): Promise<this> {
    const server = createServer((req, res) => {
      if (req.method === 'GET' && req.url === this.path) {
        this.requests++;
        res.writeHead(this.status, { 'content-type': 'text/plain' }).end(this.status === 200 ? 'ok' : 'unhealthy');
      } else {
        res.writeHead(404).end();
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    this.port = (server.address() as { port: number }).port;
    this.server = server;
    return this;
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
