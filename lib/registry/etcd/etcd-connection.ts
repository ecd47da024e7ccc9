// One etcd client and what must hold around it (deadlines, bounded reads,
// per-member keepalives, cluster-wide reachability): one state machine, kept whole.
import type { Etcd3 } from 'etcd3';
import { Backoff } from '../../core/backoff.js';
import { DiscoveryError } from '../../core/errors.js';
import type { DiscoveryLogger } from '../registry.interface.js';
import { abortableSleep } from '../shared/abortable-sleep.js';
import { ReachabilityTracker } from '../shared/reachability.js';
import { RequestSlots } from '../shared/request-slots.js';
import { EtcdTimeoutError, etcdClientOptions } from './etcd-client-options.js';
import type { EtcdSettings } from './etcd.schema.js';

export { EtcdTimeoutError } from './etcd-client-options.js';

/**
 * Range reads in flight at once. 1,000 services read at start-up (three
 * prefixes each in the default layout): all at once, their replies queue
 * behind each other in both processes and miss their deadlines; sixteen at
 * a time keep etcd and the client busy without a queue on either side.
 */
const READ_SLOTS = 16;

/** gRPC call options as etcd3's clients take them. */
export type EtcdCallOptions = NonNullable<Parameters<Etcd3['kv']['range']>[1]>;

/** The `etcd3` module, loaded lazily by the backend's factory. */
export type Etcd3Library = typeof import('etcd3');

/** gRPC status codes that mean "no answer", as opposed to "etcd said no". */
const NO_ANSWER_CODES = new Set([1 /* CANCELLED */, 4 /* DEADLINE_EXCEEDED */, 14 /* UNAVAILABLE */]);

/**
 * One etcd client plus what the backend needs around it: per-call deadlines,
 * gRPC keepalive, fault handling without long circuit-breaker pauses (see
 * etcd-client-options.ts), bounded range-read concurrency, and the
 * registry's reachability, fed by requests and by a periodic probe (a
 * SIGSTOPped etcd breaks no connection, so only a probe with a deadline
 * notices it).
 *
 * Reachability is the cluster's, not one request's: a request that timed
 * out (a busy etcd, or this process too busy to read the answer in time), or
 * a connection to one member of several that broke, only asks for a probe
 * now; the probe asks every member and etcd is unreachable only when none
 * answers. With a single member a refused connection is an outage at once.
 * Keepalives run on a client per member, so they move to a live member
 * within an election instead of retrying at random.
 *
 * @example
 * const connection = new EtcdConnection(await import('etcd3'), settings, logger);
 * await connection.call('range', (options) => connection.client.kv.range({ key }, options));
 */
export class EtcdConnection {
  readonly client: Etcd3;
  /** Whether etcd answered the latest request or probe. */
  readonly reachability: ReachabilityTracker;
  /** Range reads wait here for one of the read slots. */
  readonly reads = new RequestSlots(READ_SLOTS);
  /** One client per member (clusters only): probes and keepalives choose the member. */
  private memberClients: Etcd3[] | undefined;
  /** The member that answered the last keepalive: tried first next time. */
  private keepAliveMember = 0;
  private users = 0;
  private probeTimer: NodeJS.Timeout | undefined;
  private probing = false;
  private probeAgain = false;
  private closed = false;

  constructor(
    private readonly lib: Etcd3Library,
    readonly settings: EtcdSettings,
    private readonly logger: DiscoveryLogger,
  ) {
    this.reachability = new ReachabilityTracker(() => this.check());
    this.client = new lib.Etcd3(etcdClientOptions(lib, settings));
  }

  /** True when etcd is a cluster of several members (as configured). */
  get clustered(): boolean {
    return this.settings.hosts.length > 1;
  }

  /** The client of each member (created on first use). */
  private members(): Etcd3[] {
    return (this.memberClients ??= this.settings.hosts.map(
      (host) => new this.lib.Etcd3(etcdClientOptions(this.lib, this.settings, [host])),
    ));
  }

  /** True for failures that mean "etcd did not answer" (the others are answers: permission denied, ...). */
  isNoAnswer(error: unknown): boolean {
    if (error instanceof EtcdTimeoutError) return true;
    if (!(error instanceof Error)) return false;
    const lib = this.lib;
    if (
      error instanceof lib.GRPCUnavailableError ||
      error instanceof lib.GRPCDeadlineExceededError ||
      error instanceof lib.GRPCCancelledError ||
      error instanceof lib.EtcdWatchStreamEnded
    ) {
      return true;
    }
    const code = (error as { code?: unknown }).code;
    if (typeof code === 'number' && NO_ANSWER_CODES.has(code)) return true;
    // Untyped transport failures ("No connection established", broken circuit).
    return (
      error.constructor === lib.GRPCGenericError || error.name === 'BrokenCircuitError' || lib.isRecoverableError(error)
    );
  }

  /** True when etcd answered that a lease does not exist (expired or revoked). */
  isLeaseGone(error: unknown): boolean {
    return error instanceof this.lib.EtcdLeaseInvalidError;
  }

  /** Records that etcd answered. */
  markReachable(): void {
    if (this.closed || this.reachability.current.reachable) return;
    this.logger.log(`etcd reachable again at ${this.settings.hosts.join(', ')}`);
    this.reachability.reachable();
  }

  /** Records that etcd did not answer, with why. Logged once per outage. */
  markUnreachable(reason: string): void {
    if (this.closed || !this.reachability.current.reachable) return;
    this.logger.warn(`etcd unreachable at ${this.settings.hosts.join(', ')}: ${reason}`);
    this.reachability.unreachable(reason);
  }

  /**
   * Feeds the reachability state from a request's outcome. An answer (even
   * a refusal) proves etcd is there. No answer is an outage at once only
   * for a refused connection to a single member; a timeout, or a member of
   * a cluster gone, makes the probe ask every member now instead.
   */
  observe(error?: unknown): void {
    if (error === undefined || !this.isNoAnswer(error)) this.markReachable();
    else if (!this.clustered && !(error instanceof EtcdTimeoutError) && !this.isTimeout(error))
      this.markUnreachable(describeError(error));
    else this.probeSoon();
  }

  /** Runs the reachability probe now (or right after the one running). */
  probeSoon(): void {
    if (this.closed) return;
    if (this.probing) {
      this.probeAgain = true;
      return;
    }
    this.scheduleProbe(0);
  }

  /** A deadline passed (ours or gRPC's): the server may be busy, not gone. */
  private isTimeout(error: unknown): boolean {
    return error instanceof this.lib.GRPCDeadlineExceededError || (error as { code?: unknown })?.code === 4;
  }

  /**
   * Runs one request with the request deadline, also enforced locally (a
   * call queued behind authentication or a connecting channel can outlive
   * its gRPC deadline), and records the outcome.
   */
  async call<T>(
    what: string,
    fn: (options: EtcdCallOptions) => Promise<T>,
    timeoutMs = this.settings.requestTimeoutMs,
  ): Promise<T> {
    try {
      const result = await this.timed(what, fn, timeoutMs);
      this.observe();
      return result;
    } catch (error) {
      this.observe(error);
      throw error;
    }
  }

  /**
   * One cheap request that any authenticated user may make, to every member
   * at once; resolves when one answers, rejects (with the first member's
   * reason) only when none did. An answer that refuses the call still
   * proves etcd is there.
   */
  private async check(): Promise<void> {
    const ask = async (client: Etcd3) => {
      try {
        await this.timed('status', (options) => client.maintenance.status(options));
      } catch (error) {
        if (this.isNoAnswer(error)) throw new Error(describeError(error), { cause: error });
      }
    };
    if (!this.clustered) return ask(this.client);
    try {
      await Promise.any(this.members().map(ask));
    } catch (error) {
      const first = (error as AggregateError).errors?.[0] as Error | undefined;
      throw new Error(`no member answered (${first?.message ?? 'no answer'})`, { cause: error });
    }
  }

  /**
   * One lease keepalive, sent to the member that answered the last one
   * first and, when a member does not answer (it is gone, or waits for a
   * leader during an election), to the next, until one renews the lease or
   * `budgetMs` (the time the lease has left) is spent. Resolves with the
   * TTL etcd answered (0: the lease is gone).
   */
  async keepAlive(lease: string, budgetMs: number): Promise<number> {
    const clients = this.clustered ? this.members() : [this.client];
    const deadline = Date.now() + Math.max(budgetMs, this.settings.requestTimeoutMs);
    let lastError: Error | undefined;
    for (let attempt = 0; ; attempt++) {
      const index = (this.keepAliveMember + attempt) % clients.length;
      const left = deadline - Date.now();
      if (left <= 0 || (attempt > 0 && this.closed)) break;
      // Each member gets a request deadline; the last attempt what is left.
      const timeoutMs = Math.min(left, this.settings.requestTimeoutMs);
      try {
        const ttl = await keepAliveOn(clients[index], lease, timeoutMs);
        this.keepAliveMember = index;
        this.markReachable();
        return ttl;
      } catch (error) {
        lastError = error instanceof Error ? error : new Error(String(error));
        if (!this.isNoAnswer(error)) {
          this.markReachable();
          throw error;
        }
        this.observe(error);
        // A member that refused the connection fails fast: pause before going round again.
        if ((attempt + 1) % clients.length === 0)
          await abortableSleep(Math.min(200, Math.max(0, deadline - Date.now())));
      }
    }
    throw lastError ?? new EtcdTimeoutError(`etcd lease keepalive got no answer within ${budgetMs} ms`);
  }

  /** A request with a deadline (gRPC's and a timer's), without feeding reachability (the probe's own requests; {@link call} feeds it). */
  private async timed<T>(
    what: string,
    fn: (options: EtcdCallOptions) => Promise<T>,
    timeoutMs = this.settings.requestTimeoutMs,
  ): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new EtcdTimeoutError(`etcd ${what} got no answer within ${timeoutMs} ms`)),
        timeoutMs,
      );
    });
    try {
      return await Promise.race([fn({ deadline: Date.now() + timeoutMs }), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Fails unless etcd answers within the dial timeout (used when `strict`).
   * The error names the endpoints and the cause.
   */
  async verify(): Promise<void> {
    const deadline = Date.now() + this.settings.dialTimeoutMs;
    let lastError: unknown;
    const backoff = new Backoff({ initialMs: 50, maxMs: 500 });
    while (Date.now() < deadline) {
      try {
        await this.call(
          'status',
          (options) => this.client.maintenance.status(options),
          Math.max(50, deadline - Date.now()),
        );
        return;
      } catch (error) {
        lastError = error;
        if (!this.isNoAnswer(error)) break;
      }
      await abortableSleep(Math.min(backoff.next(), Math.max(0, deadline - Date.now())));
    }
    const where = this.settings.hosts.join(', ');
    const message =
      lastError !== undefined && !this.isNoAnswer(lastError)
        ? `etcd at ${where} refused the start-up check (backend_config.strict is set): ${describeError(lastError)}`
        : `etcd is unreachable at ${where} (backend_config.strict is set): ${describeError(lastError ?? `no answer within ${this.settings.dialTimeoutMs} ms`)}`;
    throw new DiscoveryError(message, { cause: lastError });
  }

  /**
   * Keeps the reachability probe running while at least one watch or
   * registration uses the connection. Returns the release function.
   */
  acquire(): () => void {
    this.users++;
    if (this.users === 1) this.scheduleProbe(0);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.users--;
      if (this.users === 0 && this.probeTimer) {
        clearTimeout(this.probeTimer);
        this.probeTimer = undefined;
      }
    };
  }

  private scheduleProbe(delayMs: number): void {
    if (this.closed) return;
    clearTimeout(this.probeTimer);
    this.probeTimer = setTimeout(() => void this.runProbe(), delayMs);
  }

  private async runProbe(): Promise<void> {
    this.probeTimer = undefined;
    if (this.probing || this.closed) return;
    this.probing = true;
    try {
      await this.reachability.probe();
    } finally {
      this.probing = false;
    }
    if (this.probeAgain) {
      this.probeAgain = false;
      this.scheduleProbe(0);
    } else if (this.users > 0) this.scheduleProbe(this.settings.probeIntervalMs);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.probeTimer);
    this.probeTimer = undefined;
    this.reachability.close();
    this.client.close();
    for (const member of this.memberClients ?? []) member.close();
  }
}

/**
 * One keepalive over a short-lived stream on `client`, with a local
 * deadline rather than a gRPC one: a stream failing with DEADLINE_EXCEEDED
 * (or cancelled while open) makes etcd3 close every client of the host, the
 * watch stream too. Half-closed first, a stream is no longer reported.
 */
function keepAliveOn(client: Etcd3, lease: string, timeoutMs: number): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    let settled = false;
    let stream: Awaited<ReturnType<Etcd3['leaseClient']['leaseKeepAlive']>> | undefined;
    const finish = (error: Error | undefined, ttl?: number) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (stream) {
        // Half-close: etcd ends the stream cleanly; a cancel after it is no longer reported to the pool.
        stream.end();
        if (error !== undefined) stream.cancel();
      }
      if (error !== undefined) reject(error);
      else resolve(ttl!);
    };
    const timer = setTimeout(
      () => finish(new EtcdTimeoutError(`etcd lease keepalive got no answer within ${timeoutMs} ms`)),
      timeoutMs,
    );
    client.leaseClient.leaseKeepAlive().then(
      (opened) => {
        stream = opened;
        if (settled) {
          opened.end();
          opened.cancel();
          return;
        }
        opened.on('data', (response) => finish(undefined, Number(response.TTL)));
        opened.on('error', (error: Error) => finish(error));
        opened.on('end', () => finish(new Error('lease keepalive stream ended without an answer')));
        opened.write({ ID: lease });
      },
      (error: unknown) => finish(error instanceof Error ? error : new Error(String(error))),
    );
  });
}

/** A short, single-line description of an error for logs and stale reasons. */
export function describeError(error: unknown): string {
  if (error instanceof Error) return error.message.split('\n')[0].replace(/ Please report this error at \S+/, '');
  return String(error);
}
