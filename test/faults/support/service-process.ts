import { join } from 'node:path';
import type { DiscoveryOptions } from '../../../lib/index.js';
import { findFreePort } from '../../../lib/core/tcp.js';
import { PeerProcess } from '../../support/peers/peer-process.js';

/**
 * A service instance in its own process (instance-process.mjs): a real
 * Greeter server that registers itself when given discovery options.
 * Started and stopped through the peer launcher, so a crashed test leaves
 * nothing behind. `restart()` keeps the port, as a supervisor would.
 *
 * @example
 * const a = await ServiceProcess.start({ id: 'a', service: 'orders', discovery: options }); a.kill(); await a.restart();
 */
export class ServiceProcess {
  private peer: PeerProcess | undefined;

  private constructor(
    readonly id: string,
    readonly port: number,
    private readonly options: { service: string; discovery?: DiscoveryOptions; drainMs?: number },
  ) {}

  static async start(options: {
    id: string;
    service: string;
    discovery?: DiscoveryOptions;
    drainMs?: number;
    port?: number;
    waitForRegistration?: boolean;
  }): Promise<ServiceProcess> {
    const instance = new ServiceProcess(options.id, options.port ?? (await findFreePort()), options);
    await instance.start(options.waitForRegistration ?? true);
    return instance;
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return this.peer !== undefined;
  }

  /** Output of the current process (READY, REGISTERED, EVENT lost, warnings). */
  get log(): string {
    return this.peer?.log ?? '';
  }

  /** Starts the process (again, on the same port); waits until it serves and, when it registers, until it registered. */
  async start(waitForRegistration = true): Promise<void> {
    const marker = this.options.discovery && waitForRegistration ? 'REGISTERED' : 'READY';
    const peer: PeerProcess = new PeerProcess({
      name: `instance ${this.id} :${this.port}`,
      command: process.execPath,
      args: [join(import.meta.dirname, 'instance-process.mjs')],
      env: {
        PORT: String(this.port),
        ID: this.id,
        SERVICE: this.options.service,
        DISCOVERY: this.options.discovery ? JSON.stringify(this.options.discovery) : '',
        DRAIN_MS: String(this.options.drainMs ?? 0),
      },
      ready: async () => {
        if (peer.log.includes('BIND-FAILED'))
          throw new Error(`instance ${this.id} could not bind port ${this.port}: ${peer.log}`);
        return peer.log.includes(marker);
      },
      readyTimeoutMs: 30_000,
    });
    this.peer = peer;
    await peer.start();
  }

  /** SIGTERM: deregisters, drains, stops serving, exits. Resolves once it exited. */
  async stop(): Promise<void> {
    const peer = this.peer;
    this.peer = undefined;
    await peer?.stop(10_000);
  }

  /** SIGKILL, as a crash (no deregistration). Resolves once it exited. */
  async kill(): Promise<void> {
    const peer = this.peer;
    this.peer = undefined;
    await peer?.kill();
  }

  /** SIGSTOP / SIGCONT. */
  signal(signal: NodeJS.Signals): void {
    this.peer?.signal(signal);
  }

  /** Graceful stop, then a new process on the same port. */
  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }
}
