import type { Etcd3 } from 'etcd3';
import { Backoff } from '../../core/backoff.js';
import { DiscoveryError } from '../../core/errors.js';
import type { DiscoveryLogger } from '../registry.interface.js';
import { abortableSleep } from '../shared/abortable-sleep.js';
import { ReachabilityTracker } from '../shared/reachability.js';
import { etcdClientOptions } from './etcd-client-options.js';
import type { EtcdSettings } from './etcd.schema.js';

/** gRPC call options as etcd3's clients take them. */
export type EtcdCallOptions = NonNullable<Parameters<Etcd3['kv']['range']>[1]>;

/** The `etcd3` module, loaded lazily by the backend's factory. */
export type Etcd3Library = typeof import('etcd3');

/** A request that got no answer within its deadline (a stalled server or a hung connection). */
export class EtcdTimeoutError extends DiscoveryError {}

/** gRPC status codes that mean "no answer", as opposed to "etcd said no". */
const NO_ANSWER_CODES = new Set([1 /* CANCELLED */, 4 /* DEADLINE_EXCEEDED */, 14 /* UNAVAILABLE */]);

/**
 * One etcd client plus what the backend needs around it: per-call deadlines,
 * gRPC keepalive, fault handling without long circuit-breaker pauses (see
 * etcd-client-options.ts), and the registry's reachability, fed by every
 * request and by a periodic probe (a SIGSTOPped etcd breaks no connection,
 * so only a probe with a deadline notices it).
 *
 * @example
 * const connection = new EtcdConnection(await import('etcd3'), settings, logger);
 * await connection.call('range', (options) => connection.client.kv.range({ key }, options));
 */
export class EtcdConnection {
  readonly client: Etcd3;
  /** Whether etcd answered the latest request or probe. */
  readonly reachability: ReachabilityTracker;
  private users = 0;
  private probeTimer: NodeJS.Timeout | undefined;
  private probing = false;
  private closed = false;

  constructor(
    private readonly lib: Etcd3Library,
    readonly settings: EtcdSettings,
    private readonly logger: DiscoveryLogger,
  ) {
    this.reachability = new ReachabilityTracker(() => this.check());
    this.client = new lib.Etcd3(etcdClientOptions(lib, settings));
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

  /** Feeds the reachability state from a request's outcome. */
  observe(error?: unknown): void {
    if (error === undefined) this.markReachable();
    else if (this.isNoAnswer(error)) this.markUnreachable(describeError(error));
    else this.markReachable();
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
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new EtcdTimeoutError(`etcd ${what} got no answer within ${timeoutMs} ms`)),
        timeoutMs,
      );
    });
    try {
      const result = await Promise.race([fn({ deadline: Date.now() + timeoutMs }), timeout]);
      this.observe();
      return result;
    } catch (error) {
      this.observe(error);
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  /** One cheap request that any authenticated user may make; rejects only when etcd did not answer. */
  private async check(): Promise<void> {
    try {
      await this.call('status', (options) => this.client.maintenance.status(options));
    } catch (error) {
      // An answer that refuses the call still proves etcd is there.
      if (this.isNoAnswer(error)) throw new Error(describeError(error), { cause: error });
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
    if (this.closed || this.users === 0) return;
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
    this.scheduleProbe(this.settings.probeIntervalMs);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.probeTimer);
    this.probeTimer = undefined;
    this.reachability.close();
    this.client.close();
  }
}

/** A short, single-line description of an error for logs and stale reasons. */
export function describeError(error: unknown): string {
  if (error instanceof Error) return error.message.split('\n')[0].replace(/ Please report this error at \S+/, '');
  return String(error);
}
