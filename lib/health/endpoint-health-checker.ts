import { Subject, type Observable } from 'rxjs';
import { createProbe, type HealthCheckKind, type HealthProbe, type ProbeTarget } from './health-probe.js';

/** Active check settings (what `health_check` resolves to), durations in ms. */
export interface ActiveCheckSettings {
  kind: HealthCheckKind;
  /** grpc: service name asked for; `''` = the whole server. */
  service: string;
  /** http: path requested. */
  path: string;
  intervalMs: number;
  timeoutMs: number;
  /** Consecutive failures that take a healthy endpoint out. */
  failureThreshold: number;
  /** Consecutive passes that bring an unhealthy endpoint back. */
  successThreshold: number;
  /** Spread of each interval, as a fraction of it (0.1 = ±10 %); the first check waits a random part of it. */
  jitter: number;
}

/** One finished check. */
export interface HealthCheckResult {
  address: string;
  kind: HealthCheckKind;
  /** grpc service name or http path. */
  target: string;
  ok: boolean;
  /** The endpoint's state after this check. */
  healthy: boolean;
  /** True when this check flipped `healthy`. */
  changed: boolean;
  detail: string | undefined;
  consecutiveFailures: number;
  consecutiveSuccesses: number;
  durationMs: number;
  at: number;
}

/**
 * Periodic active checks of one endpoint address with hysteresis: a healthy
 * endpoint turns unhealthy after `failureThreshold` consecutive failures, an
 * unhealthy one healthy after `successThreshold` consecutive passes. A new
 * endpoint is assumed healthy (the registry just said it is up) until the
 * checks say otherwise. Checks never overlap: the next one is scheduled when
 * the previous one has finished, after the jittered interval.
 *
 * @example
 * const checker = healthCheckerPool.acquire('127.0.0.1:50051', settings); checker.results$.subscribe((r) => r.changed && console.log(r.healthy));
 */
export class EndpointHealthChecker {
  private readonly results = new Subject<HealthCheckResult>();
  readonly results$: Observable<HealthCheckResult> = this.results.asObservable();
  private probe: HealthProbe | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = true;
  private state = true;
  private failures = 0;
  private successes = 0;
  private checks = 0;
  private last: HealthCheckResult | undefined;

  constructor(
    readonly address: string,
    private readonly target: ProbeTarget,
    readonly settings: ActiveCheckSettings,
    private readonly random: () => number = Math.random,
  ) {}

  /** Current verdict. */
  get healthy(): boolean {
    return this.state;
  }

  /** Checks run so far. */
  get checkCount(): number {
    return this.checks;
  }

  /** The latest result, if any check finished. */
  get lastResult(): HealthCheckResult | undefined {
    return this.last;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.probe = createProbe(this.target);
    // A random first delay within one jitter span, so endpoints added together are not checked in lockstep.
    this.schedule(this.random() * this.settings.intervalMs * this.settings.jitter);
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.probe?.close();
    this.probe = undefined;
    this.results.complete();
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.run(), Math.max(0, delayMs));
    // Checks alone never keep the process alive.
    this.timer.unref?.();
  }

  private async run(): Promise<void> {
    const probe = this.probe;
    if (this.stopped || !probe) return;
    const started = performance.now();
    const result = await probe
      .check(this.settings.timeoutMs)
      .catch((error: Error) => ({ ok: false, detail: error.message }));
    if (this.stopped) return;
    this.checks++;
    let changed = false;
    if (result.ok) {
      this.successes++;
      this.failures = 0;
      if (!this.state && this.successes >= this.settings.successThreshold) changed = this.state = true;
    } else {
      this.failures++;
      this.successes = 0;
      if (this.state && this.failures >= this.settings.failureThreshold) {
        this.state = false;
        changed = true;
      }
    }
    this.last = {
      address: this.address,
      kind: this.settings.kind,
      target: checkTarget(this.settings),
      ok: result.ok,
      healthy: this.state,
      changed,
      detail: result.detail,
      consecutiveFailures: this.failures,
      consecutiveSuccesses: this.successes,
      durationMs: performance.now() - started,
      at: Date.now(),
    };
    this.results.next(this.last);
    const spread = this.settings.jitter * (2 * this.random() - 1);
    this.schedule(this.settings.intervalMs * (1 + spread));
  }
}

/**
 * Process-wide table of checkers: every client of the same endpoint (same
 * address, protocol, service/path and timing) shares one checker, so N
 * clients do not probe a server N times. Reference counted: the checker
 * stops when its last user releases it.
 *
 * @example
 * const checker = healthCheckerPool.acquire(endpoint, settings); ...; healthCheckerPool.release(checker);
 */
export class HealthCheckerPool {
  private readonly checkers = new Map<string, { checker: EndpointHealthChecker; refs: number }>();

  /** Number of running checkers (for tests and diagnostics). */
  get size(): number {
    return this.checkers.size;
  }

  /** The shared checker of `address` with these settings, started on first use. */
  acquire(
    endpoint: { address: string; host: string; port: number },
    settings: ActiveCheckSettings,
  ): EndpointHealthChecker {
    const key = checkerKey(endpoint.address, settings);
    let entry = this.checkers.get(key);
    if (!entry) {
      const target: ProbeTarget = {
        host: endpoint.host,
        port: endpoint.port,
        kind: settings.kind,
        service: settings.service,
        path: settings.path,
        intervalMs: settings.intervalMs,
      };
      entry = { checker: new EndpointHealthChecker(endpoint.address, target, settings), refs: 0 };
      this.checkers.set(key, entry);
      entry.checker.start();
    }
    entry.refs++;
    return entry.checker;
  }

  /** Gives a checker back; the last release stops it. */
  release(checker: EndpointHealthChecker): void {
    const key = checkerKey(checker.address, checker.settings);
    const entry = this.checkers.get(key);
    if (!entry || entry.checker !== checker) return;
    if (--entry.refs > 0) return;
    this.checkers.delete(key);
    checker.stop();
  }
}

/** What a check asks for: the grpc service name, the http path; a tcp check asks for nothing. */
function checkTarget(s: ActiveCheckSettings): string {
  return s.kind === 'grpc' ? s.service : s.kind === 'http' ? s.path : '';
}

function checkerKey(address: string, s: ActiveCheckSettings): string {
  return `${s.kind}|${address}|${checkTarget(s)}|${s.intervalMs}|${s.timeoutMs}|${s.failureThreshold}|${s.successThreshold}`;
}

/**
 * The pool every Discovery in this process uses.
 *
 * @example
 * console.log(`${healthCheckerPool.size} endpoints under active checks`);
 */
export const healthCheckerPool = new HealthCheckerPool();
