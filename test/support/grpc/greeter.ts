import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { join } from 'node:path';
import { canConnect, findFreePort } from '../../../lib/core/tcp.js';
import { PeerProcess } from '../peers/peer-process.js';

/** The sample's proto, reused by the tests. */
export const GREETER_PROTO = join(import.meta.dirname, '../../../sample/01-greeter/protos/greeter.proto');

const definition = loadSync(GREETER_PROTO, { keepCase: true, defaults: true });
export const greeterPackage = grpc.loadPackageDefinition(definition) as unknown as {
  greeter: { Greeter: grpc.ServiceClientConstructor };
};

export interface HelloReply {
  message: string;
  instance: string;
}

export interface GreeterServerOptions {
  /** Added latency per call, ms. */
  delayMs?: number;
  /** Answer every call with this status instead of a reply. */
  failWith?: grpc.status;
}

/** A real grpc-js Greeter server on 127.0.0.1, answering with its id; counts calls. */
export class GreeterServer {
  calls = 0;
  private server: grpc.Server | undefined;
  port = 0;

  constructor(
    readonly id: string,
    public options: GreeterServerOptions = {},
  ) {}

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
        const answer = () => {
          if (this.options.failWith !== undefined)
            callback({ code: this.options.failWith, details: `${this.id} fails on purpose` });
          else callback(null, { message: `Hello, ${call.request.name}!`, instance: this.id });
        };
        if (this.options.delayMs) setTimeout(answer, this.options.delayMs);
        else answer();
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

  /** Hard stop: open connections are cut, like a killed process. */
  kill(): void {
    this.server?.forceShutdown();
    this.server = undefined;
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
  }
}

export type GreeterStub = grpc.Client & {
  SayHello(
    request: { name: string },
    metadata: grpc.Metadata,
    options: grpc.CallOptions,
    callback: (error: grpc.ServiceError | null, reply?: HelloReply) => void,
  ): grpc.ClientUnaryCall;
};

/** Promisified unary call. */
export function sayHello(
  stub: GreeterStub,
  name: string,
  options: { key?: string; header?: string; deadlineMs?: number } = {},
): Promise<HelloReply> {
  const metadata = new grpc.Metadata();
  if (options.key) metadata.set(options.header ?? 'x-hash-key', options.key);
  return new Promise((resolve, reject) =>
    stub.SayHello({ name }, metadata, { deadline: Date.now() + (options.deadlineMs ?? 5_000) }, (error, reply) =>
      error ? reject(error) : resolve(reply!),
    ),
  );
}

/** Starts a Greeter server in a child process (SIGKILL-able), tracked by the peer launcher. */
export async function startGreeterProcess(
  id: string,
  options: { delayMs?: number } = {},
  attempts = 3,
): Promise<{ peer: PeerProcess; address: string }> {
  try {
    return await startGreeterProcessOnce(id, options);
  } catch (error) {
    // Another process on this machine may have taken the free port first.
    if (attempts <= 1) throw error;
    return startGreeterProcess(id, options, attempts - 1);
  }
}

async function startGreeterProcessOnce(
  id: string,
  options: { delayMs?: number },
): Promise<{ peer: PeerProcess; address: string }> {
  const port = await findFreePort();
  const peer = new PeerProcess({
    name: `greeter ${id}`,
    command: process.execPath,
    args: [join(import.meta.dirname, 'greeter-process.mjs')],
    env: { PORT: String(port), ID: id, DELAY_MS: String(options.delayMs ?? 0) },
    ready: () => canConnect('127.0.0.1', port, 200),
    readyTimeoutMs: 15_000,
  });
  await peer.start();
  return { peer, address: `127.0.0.1:${port}` };
}
