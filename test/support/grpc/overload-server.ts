import * as grpc from '@grpc/grpc-js';
import { join } from 'node:path';
import { canConnect, findFreePort } from '../../../lib/core/tcp.js';
import { PeerProcess } from '../peers/peer-process.js';

/** What an overload test server is told to do. */
export interface OverloadBehaviour {
  delayMs?: number;
  /** Share of calls answered with `rejectCode` (default RESOURCE_EXHAUSTED), 0..1. */
  rejectShare?: number;
  rejectCode?: grpc.status;
  /** Zero the counters. */
  reset?: boolean;
}

/** What it saw. */
export interface OverloadStats {
  calls: number;
  rejected: number;
  inFlight: number;
  maxInFlight: number;
}

const control = {
  path: '/test.Control/Set',
  requestStream: false,
  responseStream: false,
  requestSerialize: (v: unknown) => Buffer.from(JSON.stringify(v)),
  requestDeserialize: (b: Buffer) => JSON.parse(b.toString()) as unknown,
  responseSerialize: (v: unknown) => Buffer.from(JSON.stringify(v)),
  responseDeserialize: (b: Buffer) => JSON.parse(b.toString()) as OverloadStats,
};
const ControlClient = grpc.makeGenericClientConstructor({ Set: control }, 'Control');

/** A Greeter in its own process whose latency and refusals the test steers (test/support/grpc/overload-server.mjs). */
export class OverloadServer {
  private readonly control: grpc.Client;

  private constructor(
    readonly id: string,
    readonly address: string,
    private readonly peer: PeerProcess,
  ) {
    this.control = new ControlClient(address, grpc.credentials.createInsecure());
  }

  static async start(id: string): Promise<OverloadServer> {
    const port = await findFreePort();
    const peer = new PeerProcess({
      name: `overload greeter ${id}`,
      command: process.execPath,
      args: [join(import.meta.dirname, 'overload-server.mjs')],
      env: { PORT: String(port), ID: id },
      ready: () => canConnect('127.0.0.1', port, 200),
      readyTimeoutMs: 15_000,
    });
    await peer.start();
    return new OverloadServer(id, `127.0.0.1:${port}`, peer);
  }

  /** Changes the behaviour (only the given keys) and returns the counters. */
  set(behaviour: OverloadBehaviour = {}): Promise<OverloadStats> {
    return new Promise((resolve, reject) =>
      (this.control as unknown as { Set: (r: unknown, cb: (e: Error | null, s: OverloadStats) => void) => void }).Set(
        behaviour,
        (error, stats) => (error ? reject(error) : resolve(stats)),
      ),
    );
  }

  stats(): Promise<OverloadStats> {
    return this.set({});
  }

  async stop(): Promise<void> {
    this.control.close();
    await this.peer.stop();
  }
}
