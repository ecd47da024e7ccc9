import { BehaviorSubject, distinctUntilChanged, type Observable } from 'rxjs';
import type { Etcd3, IOptions } from 'etcd3';
import { Backoff, backoffDelay } from '../../core/backoff.js';
import { DiscoveryError } from '../../core/errors.js';
import type { DiscoveryLogger } from '../registry.interface.js';
import type { EtcdSettings } from './etcd-settings.js';

/** gRPC call options as etcd3's clients take them. */
export type EtcdCallOptions = NonNullable<Parameters<Etcd3['kv']['range']>[1]>;

/** The `etcd3` module, loaded lazily by the backend's factory. */
export type Etcd3Library = typeof import('etcd3');

/**
 * `connecting`: nothing answered yet. `reachable`: etcd answered the last
 * request. `unreachable`: the last request failed for lack of a connection
 * (refused, timed out, stream broken). `closed`: the registry was closed.
 */
export type EtcdConnectionState = 'connecting' | 'reachable' | 'unreachable' | 'closed';

/** One observation of the connection, as published on `connectionState$`. */
export interface EtcdConnectionStatus {
  readonly state: EtcdConnectionState;
  /** Why etcd is considered unreachable (state `unreachable`). */
  readonly reason?: string;
  /** When this state began (ms since the epoch). */
  readonly since: number;
}

/** A request that got no answer within its deadline (a stalled server or a hung connection). */
export class EtcdTimeoutError extends DiscoveryError {}

/** gRPC status codes that mean "no answer", as opposed to "etcd said no". */
const NO_ANSWER_CODES = new Set([1 /* CANCELLED */, 4 /* DEADLINE_EXCEEDED */, 14 /* UNAVAILABLE */]);

/**
 * One etcd client plus what the backend needs around it: per-call deadlines,
 * gRPC keepalive, fault handling without long circuit-breaker pauses, and a
 * reachability state fed by every request and by a periodic probe (a
 * SIGSTOPped etcd breaks no connection, so only a probe with a deadline
 * notices it).
 *
 * @example
 * const connection = new EtcdConnection(await import('etcd3'), settings, logger);
 * await connection.call('range', (options) => connection.client.kv.range({ key }, options));
 */
export class EtcdConnection {
  readonly client: Etcd3;
  private readonly status: BehaviorSubject<EtcdConnectionStatus>;
  /** Distinct states; replays the current one to new subscribers. */
  readonly status$: Observable<EtcdConnectionStatus>;
  private users = 0;
  private probeTimer: NodeJS.Timeout | undefined;
  private probing = false;
  private closed = false;

  constructor(
    private readonly lib: Etcd3Library,
    readonly settings: EtcdSettings,
    private readonly logger: DiscoveryLogger,
  ) {
    this.status = new BehaviorSubject<EtcdConnectionStatus>({ state: 'connecting', since: Date.now() });
    this.status$ = this.status.pipe(distinctUntilChanged((a, b) => a.state === b.state && a.reason === b.reason));
    this.client = new lib.Etcd3(this.clientOptions());
  }

  /** The latest observation. */
  get current(): EtcdConnectionStatus {
    return this.status.value;
  }

  get reachable(): boolean {
    return this.status.value.state === 'reachable';
  }

  private clientOptions(): IOptions {
    const { settings, lib } = this;
    const requestTimeoutMs = settings.requestTimeoutMs;
    const deadline = () => ({ deadline: Date.now() + requestTimeoutMs });
    const hostCount = settings.hosts.length;
    // etcd3's default host policy is a circuit breaker that refuses every
    // call for 5 s after three failures: after an outage the key would come
    // back seconds late. The backend retries on its own jittered backoff, so
    // the host policy only passes calls through; the global one tries each
    // other endpoint once on a connection failure (leader loss in a cluster).
    // (Async like cockatiel's: etcd3's markFailed relies on a rejected promise, not a throw.)
    const passThrough = {
      async execute<T>(fn: (context: { signal: AbortSignal; attempt: number }) => T | Promise<T>): Promise<T> {
        return fn({ signal: new AbortController().signal, attempt: 0 });
      },
    };
    const acrossHosts = {
      async execute<T>(fn: (context: { signal: AbortSignal; attempt: number }) => Promise<T>): Promise<T> {
        const signal = new AbortController().signal;
        for (let attempt = 0; ; attempt++) {
          try {
            return await fn({ signal, attempt });
          } catch (error) {
            if (attempt + 1 >= hostCount || !lib.isRecoverableError(error as Error)) throw error;
          }
        }
      },
    };
    type FaultHandling = NonNullable<IOptions['faultHandling']>;
    const reconnectCapMs = Math.max(1_000, Math.min(5_000, settings.probeIntervalMs * 2));
    return {
      hosts: [...settings.hosts],
      ...(settings.credentials ? { credentials: settings.credentials as NonNullable<IOptions['credentials']> } : {}),
      ...(settings.auth ? { auth: { ...settings.auth, callOptions: deadline } } : {}),
      dialTimeout: settings.dialTimeoutMs,
      defaultCallOptions: (context) => (context.isStream ? {} : deadline()),
      grpcOptions: {
        // etcd refuses pings more often than every 5 s (--grpc-keepalive-min-time)
        // and only while a stream is open, so: 10 s, with calls only.
        'grpc.keepalive_time_ms': 10_000,
        'grpc.keepalive_timeout_ms': Math.max(1_000, requestTimeoutMs),
        'grpc.keepalive_permit_without_calls': 0,
        // grpc-js backs off up to 120 s between reconnects by default; an etcd
        // that is back must be noticed within a few seconds.
        'grpc.initial_reconnect_backoff_ms': 100,
        'grpc.max_reconnect_backoff_ms': reconnectCapMs,
      },
      faultHandling: {
        host: () => passThrough as unknown as ReturnType<NonNullable<FaultHandling['host']>>,
        global: acrossHosts as unknown as FaultHandling['global'],
        watchBackoff: jitteredWatchBackoff(0, reconnectCapMs) as unknown as FaultHandling['watchBackoff'],
      },
    };
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
    if (this.closed) return;
    const cur = this.status.value;
    if (cur.state === 'reachable') return;
    if (cur.state === 'unreachable') this.logger.log(`etcd reachable again at ${this.settings.hosts.join(', ')}`);
    this.status.next({ state: 'reachable', since: Date.now() });
  }

  /** Records that etcd did not answer, with why. Logged once per outage. */
  markUnreachable(reason: string): void {
    if (this.closed) return;
    const cur = this.status.value;
    if (cur.state === 'unreachable') return;
    this.logger.warn(`etcd unreachable at ${this.settings.hosts.join(', ')}: ${reason}`);
    this.status.next({ state: 'unreachable', reason, since: Date.now() });
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

  /** One cheap request that any authenticated user may make. Resolves true when etcd answered. */
  async probe(timeoutMs = this.settings.requestTimeoutMs): Promise<boolean> {
    try {
      await this.call('status', (options) => this.client.maintenance.status(options), timeoutMs);
      return true;
    } catch (error) {
      // An answer that refuses the call still proves etcd is there.
      return !this.isNoAnswer(error);
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
      await delay(Math.min(backoff.next(), Math.max(0, deadline - Date.now())));
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
      await this.probe();
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
    this.status.next({ state: 'closed', since: Date.now() });
    this.status.complete();
    this.client.close();
  }
}

/** A cockatiel-style backoff (what etcd3's watch manager expects) with full jitter. */
function jitteredWatchBackoff(attempt: number, maxMs: number): { duration: number; next(): unknown } {
  return {
    duration: Math.max(20, backoffDelay(attempt, { initialMs: 200, maxMs })),
    next: () => jitteredWatchBackoff(attempt + 1, maxMs),
  };
}

/** A short, single-line description of an error for logs and stale reasons. */
export function describeError(error: unknown): string {
  if (error instanceof Error) return error.message.split('\n')[0].replace(/ Please report this error at \S+/, '');
  return String(error);
}

export function delay(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
