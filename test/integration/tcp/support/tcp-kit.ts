import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { firstValueFrom, type Observable } from 'rxjs';
import { canConnect, findFreePort } from '../../../../lib/core/tcp.js';
import { PeerProcess } from '../../../support/peers/peer-process.js';

const SERVER_SCRIPT = join(import.meta.dirname, '../../../support/tcp/tcp-server-process.mjs');

/** A quiet logger for the apps and Discoveries the tests make. */
export const quietLogger = { log() {}, warn() {}, error() {} };

/** One Nest TCP microservice in its own process (test/support/tcp/tcp-server-process.mjs). */
export interface TcpServer {
  id: string;
  port: number;
  address: string;
  peer: PeerProcess;
  /** Lines it wrote for handled requests and events: `<kind> <pattern> <id>`. */
  logFile: string;
}

/** What a test's servers share: a folder for the `local` registry and for their logs. */
export class TcpServers {
  readonly servers: TcpServer[] = [];

  private constructor(readonly dir: string) {}

  static async create(): Promise<TcpServers> {
    return new TcpServers(await mkdtemp(join(tmpdir(), 'switchyard-tcp-')));
  }

  /**
   * Starts a server; resolves once it accepts connections. With `register`
   * (the default) it registers as `orders` in the `local` registry in `dir`.
   */
  async start(
    id: string,
    options: { register?: boolean; port?: number; env?: Record<string, string> } = {},
  ): Promise<TcpServer> {
    const port = options.port ?? (await findFreePort());
    const logFile = join(this.dir, `${id}.log`);
    const peer = new PeerProcess({
      name: `tcp server ${id}`,
      command: process.execPath,
      args: [SERVER_SCRIPT],
      env: {
        PORT: String(port),
        ID: id,
        LOG_FILE: logFile,
        ...(options.register === false ? {} : { DISCOVERY_DIR: this.dir }),
        ...options.env,
      },
      ready: () => canConnect('127.0.0.1', port, 200),
    });
    await peer.start();
    const server = { id, port, address: `127.0.0.1:${port}`, peer, logFile };
    this.servers.push(server);
    return server;
  }

  /** Which servers handled each request or event id (`request create 17` lines -> '17' -> ['s1']). */
  handled(kind: 'request' | 'event', pattern: string): Map<string, string[]> {
    const out = new Map<string, string[]>();
    // A restarted server (same id) writes on in the same file: read each file once.
    const files = new Map(this.servers.map((s) => [s.logFile, s]));
    for (const server of files.values()) {
      if (!existsSync(server.logFile)) continue;
      for (const line of readFileSync(server.logFile, 'utf8').split('\n')) {
        const [k, p, key] = line.split(' ');
        if (k !== kind || p !== pattern) continue;
        out.set(key, [...(out.get(key) ?? []), server.id]);
      }
    }
    return out;
  }

  async stop(): Promise<void> {
    await Promise.all(this.servers.map((s) => s.peer.stop()));
    await rm(this.dir, { recursive: true, force: true });
  }
}

/** The instance ids `count` sequential `whoami` sends reached, counted. */
export async function spread(
  send: (pattern: string, data: unknown) => Observable<{ instance: string }>,
  count: number,
): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  for (let i = 0; i < count; i++) {
    const { instance } = await firstValueFrom(send('whoami', {}));
    counts.set(instance, (counts.get(instance) ?? 0) + 1);
  }
  return counts;
}

/**
 * Runs `worker` in `concurrency` closed loops until `until()` says stop;
 * counts sends and collects failures (never throws).
 */
export async function underLoad(
  concurrency: number,
  until: () => boolean,
  worker: (n: number) => Promise<unknown>,
): Promise<{ sent: number; failures: Error[] }> {
  let sent = 0;
  const failures: Error[] = [];
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (!until()) {
        const n = sent++;
        try {
          await worker(n);
        } catch (error) {
          failures.push(error as Error);
        }
      }
    }),
  );
  return { sent, failures };
}
