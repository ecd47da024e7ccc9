import * as grpc from '@grpc/grpc-js';
import { join } from 'node:path';
import type { Observable, Subscription } from 'rxjs';
import type { DiscoveryOptions, EndpointSet, ServiceClient } from '../../../lib/index.js';
import { findFreePort } from '../../../lib/core/tcp.js';
import { greeterPackage, type GreeterStub, type HelloReply } from '../../support/grpc/greeter.js';
import { PeerProcess } from '../../support/peers/peer-process.js';
import { waitFor } from '../../support/wait-for.js';

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

/** The outcome of one call. Times are ms since epoch. */
export interface CallRecord {
  start: number;
  end: number;
  ok: boolean;
  instance?: string;
  error?: string;
}

/**
 * Steady, open-loop call load: `ratePerSecond` calls are started whatever
 * the answers do (a closed loop would slow down exactly when things break
 * and hide failures). Every call's outcome is recorded with timestamps.
 *
 * @example
 * const load = new LoadGenerator(() => helloThrough(client), { ratePerSecond: 300 }); load.start(); ...; const calls = await load.stop();
 */
export class LoadGenerator {
  readonly records: CallRecord[] = [];
  /** Calls not started because `maxInFlight` were already waiting (the client is overloaded). */
  notStarted = 0;
  /** Calls skipped because this process's own event loop fell behind the schedule. */
  lagged = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly inFlight = new Set<Promise<void>>();
  private startedAt = 0;
  private launched = 0;

  /** Calls finished, and finished successfully (kept even when only failures are recorded). */
  completed = 0;
  succeeded = 0;

  constructor(
    private readonly call: () => Promise<string>,
    private readonly options: {
      ratePerSecond: number;
      maxInFlight?: number;
      /** `failures`: keep only failed calls (long runs, where a record per call would itself look like a leak). Default `all`. */
      keep?: 'all' | 'failures';
    },
  ) {}

  start(): this {
    this.startedAt = performance.now();
    this.timer = setInterval(() => this.tick(), 5);
    return this;
  }

  /** Stops starting calls and waits for the ones in flight. */
  async stop(): Promise<CallRecord[]> {
    clearInterval(this.timer);
    this.timer = undefined;
    await Promise.all([...this.inFlight]);
    return this.records;
  }

  get failures(): CallRecord[] {
    return this.records.filter((r) => !r.ok);
  }

  /** Completed successful calls started at or after `since`. */
  successesSince(since: number): number {
    let n = 0;
    for (const r of this.records) if (r.ok && r.start >= since) n++;
    return n;
  }

  /** Resolves once `count` more calls succeeded (load is really flowing). */
  async flowing(count = 50, timeoutMs = 15_000): Promise<void> {
    const target = this.succeeded + count;
    await waitFor(() => this.succeeded >= target, { timeoutMs, what: `${count} successful calls` });
  }

  /** A summary for the results table. */
  summary(): {
    calls: number;
    failed: number;
    notStarted: number;
    lagged: number;
    servedBy: Record<string, number>;
    firstErrors: string[];
  } {
    const servedBy: Record<string, number> = {};
    for (const r of this.records) if (r.instance) servedBy[r.instance] = (servedBy[r.instance] ?? 0) + 1;
    const failures = this.failures;
    return {
      calls: this.completed,
      failed: failures.length,
      notStarted: this.notStarted,
      lagged: this.lagged,
      servedBy,
      firstErrors: [...new Set(failures.map((f) => f.error ?? ''))].slice(0, 3),
    };
  }

  private tick(): void {
    const due = Math.floor(((performance.now() - this.startedAt) / 1000) * this.options.ratePerSecond);
    // After an event-loop stall, fire at most 50 ms worth of calls at once; the rest is counted as lag.
    const maxBurst = Math.ceil(this.options.ratePerSecond / 20);
    if (due - this.launched > maxBurst) {
      this.lagged += due - this.launched - maxBurst;
      this.launched = due - maxBurst;
    }
    const batch = due - this.launched;
    this.launched = due;
    for (let i = 0; i < batch; i++) {
      if (this.inFlight.size >= (this.options.maxInFlight ?? 1_000)) {
        this.notStarted++;
        continue;
      }
      const record: CallRecord = { start: Date.now(), end: 0, ok: false };
      const done = this.call().then(
        (instance) => {
          record.ok = true;
          record.instance = instance;
        },
        (error: Error & { code?: unknown }) => {
          record.error =
            `${typeof error?.code === 'string' ? error.code : ''} ${error?.message ?? String(error)}`.trim();
        },
      );
      const tracked = done.then(() => {
        record.end = Date.now();
        this.completed++;
        if (record.ok) this.succeeded++;
        if (!record.ok || this.options.keep !== 'failures') this.records.push(record);
        this.inFlight.delete(tracked);
      });
      this.inFlight.add(tracked);
    }
  }
}

/** One emission of `endpoints$`, as seen by the client. */
export interface EndpointsEmission {
  at: number;
  revision: number;
  state: EndpointSet['state'];
  resolved: boolean;
  size: number;
  ids: string[];
  addresses: string[];
  reason: string | undefined;
}

/**
 * Records every `endpoints$` emission with its arrival time, and whether the
 * stream ever errored or completed (it must do neither while open).
 *
 * @example
 * const sets = new EndpointRecorder(client.endpoints$); ...; expect(sets.errored).toBeUndefined();
 */
export class EndpointRecorder {
  readonly emissions: EndpointsEmission[] = [];
  errored: unknown;
  completed = false;
  private readonly subscription: Subscription;

  constructor(source: Observable<EndpointSet>) {
    this.subscription = source.subscribe({
      next: (set) =>
        this.emissions.push({
          at: Date.now(),
          revision: set.revision,
          state: set.state,
          resolved: set.resolved,
          size: set.size,
          ids: set.instances.map((i) => i.id).sort(),
          addresses: set.endpoints.map((e) => e.address).sort(),
          reason: set.reason,
        }),
      error: (error: unknown) => {
        this.errored = error ?? new Error('errored');
      },
      complete: () => {
        this.completed = true;
      },
    });
  }

  latest(): EndpointsEmission | undefined {
    return this.emissions.at(-1);
  }

  /** True when the latest set is `ok` with exactly these addresses (ids differ per backend: DNS makes its own). */
  settledOn(addresses: readonly string[]): boolean {
    const last = this.latest();
    return last !== undefined && last.state === 'ok' && last.addresses.join() === [...addresses].sort().join();
  }

  /** Emissions at or after `since`. */
  since(since: number): EndpointsEmission[] {
    return this.emissions.filter((e) => e.at >= since);
  }

  stop(): void {
    this.subscription.unsubscribe();
  }
}

/** One stub per pooled channel: building a grpc-js client per call would cost more than the call. */
const stubs = new WeakMap<grpc.Channel, GreeterStub>();
const insecure = grpc.credentials.createInsecure();

function stubFor(channel: grpc.Channel): GreeterStub {
  let stub = stubs.get(channel);
  if (!stub) {
    stub = new greeterPackage.greeter.Greeter('unused', insecure, {
      channelOverride: channel,
    }) as unknown as GreeterStub;
    stubs.set(channel, stub);
  }
  return stub;
}

/** One unary SayHello through `ServiceClient.call()` (retries as the client is configured); resolves with the answering instance. */
export function helloThrough(client: ServiceClient, timeoutMs = 3_000): Promise<string> {
  return client.call(
    ({ channel, deadline }) =>
      new Promise<string>((resolve, reject) => {
        const stub = stubFor(channel);
        stub.SayHello(
          { name: 'load' },
          new grpc.Metadata(),
          { deadline: deadline ?? Date.now() + timeoutMs },
          (error, reply?: HelloReply) => (error ? reject(error) : resolve(reply!.instance)),
        );
      }),
    { timeoutMs },
  );
}

/**
 * Keeps a fault in place for `ms` (a stall held past a TTL, say). This is
 * the fault's duration, not a way to wait for an effect: effects are awaited
 * with waitFor.
 */
export function holdFault(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
