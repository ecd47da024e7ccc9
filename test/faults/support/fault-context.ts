import { expect } from 'vitest';
import { filter, firstValueFrom, timeout } from 'rxjs';
import { Discovery, type DiscoveryOptions, type RetryOptions, type ServiceClient } from '../../../lib/index.js';
import type { DiscoveryLogger } from '../../../lib/registry/registry.interface.js';
import type { FaultBackend } from './fault-backends.js';
import { EndpointRecorder, helloThrough } from './fault-harness.js';
import { LoadGenerator } from './load-generator.js';
import { ServiceProcess } from './service-process.js';

/** Retries "on" in every scenario: gRPC-style, with a budget that a handful of failures in a burst cannot exhaust. */
export const RETRIES_ON: RetryOptions = {
  maxAttempts: 3,
  initialBackoffMs: 25,
  maxBackoffMs: 250,
  budget: { maxTokens: 100, tokenRatio: 1 },
};

/**
 * The largest share of the calls due in a fault window that the load
 * generator may have skipped (its own event loop stalled, or too many calls
 * waited) for a scenario to still claim its call rate.
 */
export const MAX_SKIPPED_SHARE = 0.01;

/** A logger that keeps lines, for assertions on warnings. */
export class LinesLogger implements DiscoveryLogger {
  readonly lines: string[] = [];
  log(m: string): void {
    this.lines.push(`log ${m}`);
  }
  warn(m: string): void {
    this.lines.push(`warn ${m}`);
  }
  error(m: string): void {
    this.lines.push(`error ${m}`);
  }
  warned(pattern: RegExp): boolean {
    return this.lines.some((l) => l.startsWith('warn') && pattern.test(l));
  }
}

/** A client opened by a scenario: its Discovery, the client, what it saw, and the registry's own view beside it. */
export interface OpenedClient {
  discovery: Discovery;
  client: ServiceClient;
  sets: EndpointRecorder;
  registryView: EndpointRecorder;
  logger: LinesLogger;
}

/**
 * What a fault scenario works with: the backend under fault and helpers
 * that start instance processes, clients and load, each closed again after
 * the scenario (also when it fails), and the registry put back to running.
 *
 * @example
 * const [a, b] = await ctx.startInstances(service, 2); const { client } = await ctx.openClient(service);
 */
export class FaultContext {
  private readonly cleanups: Array<() => unknown> = [];
  private registryDown = false;
  private stalled = false;
  private sequence = 0;

  constructor(readonly backend: FaultBackend) {}

  /** A service name no earlier scenario used. */
  freshService(name: string): string {
    return `${name}-${++this.sequence}`;
  }

  /** Registers something to close once the scenario ends. */
  onCleanup(cleanup: () => unknown): void {
    this.cleanups.push(cleanup);
  }

  /** Whatever a scenario did to the registry, the next one starts with it running. */
  async cleanup(): Promise<void> {
    if (this.stalled) this.backend.resumeRegistry();
    this.stalled = false;
    if (this.registryDown) await this.backend.startRegistry();
    this.registryDown = false;
    for (const cleanup of this.cleanups.splice(0).reverse()) await cleanup();
  }

  async stopRegistry(): Promise<void> {
    this.registryDown = true;
    await this.backend.stopRegistry();
  }

  async startRegistry(): Promise<void> {
    await this.backend.startRegistry();
    this.registryDown = false;
  }

  stallRegistry(): void {
    this.stalled = true;
    this.backend.stallRegistry();
  }

  resumeRegistry(): void {
    this.backend.resumeRegistry();
    this.stalled = false;
  }

  /** Starts instance processes of `service` (registering themselves, or published in DNS / xDS). */
  async startInstances(
    service: string,
    count: number,
    options: { drainMs?: number; waitForRegistration?: boolean } = {},
  ): Promise<ServiceProcess[]> {
    const instances = await Promise.all(
      Array.from({ length: count }, (_, i) =>
        ServiceProcess.start({
          id: `${service}-i${i + 1}`,
          service,
          discovery: this.backend.registers ? this.backend.options() : undefined,
          drainMs: options.drainMs,
          waitForRegistration: options.waitForRegistration,
        }),
      ),
    );
    this.onCleanup(() => Promise.all(instances.map((i) => i.kill())));
    if (!this.backend.registers)
      await this.backend.publish(
        service,
        instances.map((i) => i.port),
      );
    return instances;
  }

  /** A Discovery of its own with one client of `service`, recording its sets and log lines. */
  async openClient(
    service: string,
    options: { discovery?: DiscoveryOptions; extra?: Record<string, unknown>; retry?: RetryOptions | false } = {},
  ): Promise<OpenedClient> {
    const logger = new LinesLogger();
    const discovery = await Discovery.create(
      { ...(options.discovery ?? this.backend.options()), ...options.extra },
      { logger, retry: options.retry ?? RETRIES_ON },
    );
    const client: ServiceClient = discovery.client(service);
    const sets = new EndpointRecorder(client.endpoints$);
    // The registry's own view, before the client's health overlay (outlier ejection) filters it.
    const registryView = new EndpointRecorder(discovery.registry.watch(discovery.queryFor({ name: service })));
    this.onCleanup(async () => {
      sets.stop();
      registryView.stop();
      await discovery.close();
    });
    return { discovery, client, sets, registryView, logger };
  }

  /**
   * What the registry lists for `service` now, read by a Discovery opened for
   * this read alone (a new connection and a first answer, not a watch that
   * may still be delivering an earlier change).
   */
  async freshRead(service: string): Promise<string[]> {
    const discovery = await Discovery.create(this.backend.options(), { logger: new LinesLogger() });
    try {
      const set = await firstValueFrom(
        discovery.registry.watch(discovery.queryFor({ name: service })).pipe(
          filter((s) => s.resolved),
          timeout(15_000),
        ),
      );
      return set.endpoints.map((e) => e.address).sort();
    } finally {
      await discovery.close();
    }
  }

  /** A load of `ratePerSecond` SayHello calls through `client`, stopped at cleanup if the test did not. */
  startLoad(client: ServiceClient, ratePerSecond: number): LoadGenerator {
    const load = new LoadGenerator(() => helloThrough(client), { ratePerSecond }).start();
    this.onCleanup(() => load.stop());
    return load;
  }
}

/**
 * The calls due between `from` and `to` (a fault and the recovery from it)
 * were made: at most {@link MAX_SKIPPED_SHARE} of them skipped by the load
 * generator. Records the window's numbers for the table.
 */
export function expectLoadHeld(load: LoadGenerator, details: Record<string, unknown>, from: number, to: number): void {
  const window = load.windowLoad(from, to);
  details.faultWindow = window;
  expect(
    window.skippedShare,
    `${window.skipped} of the ${window.scheduled} calls due in the ${window.windowMs} ms fault window were never made (over the whole run: ${load.lagged} as this process lagged, ${load.notStarted} as too many calls waited): the rate was not held`,
  ).toBeLessThanOrEqual(MAX_SKIPPED_SHARE);
}
