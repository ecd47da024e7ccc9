import { promises as dns } from 'node:dns';
import { Backoff } from '../../core/backoff.js';
import type { CompiledQuery } from '../../core/discovery-query.js';
import type { ServiceInstance } from '../../core/service-instance.js';
import type { DiscoveryLogger } from '../registry.interface.js';
import type { EndpointSetPublisher } from '../shared/endpoint-set-publisher.js';
import type { ReachabilityTracker } from '../shared/reachability.js';
import { resolveService, type DnsAnswer } from './dns-resolution.js';
import type { DnsSettings } from './dns.schema.js';

/**
 * One subscription's resolve loop: asks DNS, publishes on change, sleeps
 * for the records' TTL (clamped to floor..ceiling), retries with backoff
 * while the nameservers fail (and tells the registry's reachability). Owns
 * its own Resolver so `stop()` can cancel exactly its pending queries.
 */
export class DnsServiceWatch {
  private readonly resolver: dns.Resolver;
  private readonly backoff: Backoff;
  private stopped = false;
  private inFlight = false;
  private timer: NodeJS.Timeout | undefined;
  /** When the next resolution is due (ms since epoch); Infinity when none is scheduled. */
  private nextAt = Number.POSITIVE_INFINITY;
  private lastStartedAt = Number.NEGATIVE_INFINITY;
  private readonly warnedTargets = new Set<string>();

  constructor(
    readonly service: string,
    private readonly settings: DnsSettings,
    private readonly query: CompiledQuery,
    /** Fallback addresses as instances of this service (may be empty). */
    private readonly seeds: readonly ServiceInstance[],
    private readonly publisher: EndpointSetPublisher,
    private readonly reachability: ReachabilityTracker,
    private readonly logger: DiscoveryLogger,
  ) {
    this.resolver = new dns.Resolver({ timeout: settings.timeoutMs, tries: settings.tries });
    if (settings.nameservers.length > 0) this.resolver.setServers(settings.nameservers);
    this.backoff = new Backoff({ initialMs: settings.ttlFloorMs, maxMs: settings.ttlCeilingMs });
  }

  start(): void {
    if (this.seeds.length > 0) this.publishInstances(this.seeds);
    if (this.settings.mode === 'static') {
      if (!this.publisher.hasPublished) this.publishInstances([]);
      return;
    }
    void this.resolveNow();
  }

  /**
   * Asks DNS again soon (a connection to an endpoint failed). Rate-limited:
   * at most one resolution per TTL floor; calls inside that window are
   * coalesced into one resolution at its end. Returns true when this call
   * moved the next resolution earlier.
   */
  requestRefresh(): boolean {
    if (this.stopped || this.inFlight || this.settings.mode === 'static') return false;
    const earliest = this.lastStartedAt + this.settings.ttlFloorMs;
    const now = Date.now();
    if (now >= earliest) {
      void this.resolveNow();
      return true;
    }
    if (this.nextAt <= earliest) return false;
    this.schedule(earliest - now);
    return true;
  }

  /** Stops timers and cancels pending queries; idempotent. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.resolver.cancel();
  }

  private async resolveNow(): Promise<void> {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.nextAt = Number.POSITIVE_INFINITY;
    this.inFlight = true;
    this.lastStartedAt = Date.now();
    let answer: DnsAnswer;
    try {
      answer = await resolveService(this.resolver, this.settings, this.service, this.query.namespace);
    } catch (error) {
      // Not a DNS failure (a bug or a record we could not model): never let it end the loop.
      answer = {
        kind: 'unreachable',
        name: this.service,
        reason: `DNS resolution failed: ${(error as Error).message}`,
      };
      this.logger.error(`dns: resolving '${this.service}' threw: ${(error as Error).stack ?? String(error)}`);
    }
    this.inFlight = false;
    if (this.stopped) return;
    this.schedule(this.apply(answer));
  }

  /** Applies an answer and returns the delay before the next resolution. */
  private apply(answer: DnsAnswer): number {
    const { ttlFloorMs, ttlCeilingMs } = this.settings;
    if (answer.kind === 'unreachable') {
      this.reachability.unreachable(answer.reason);
      const known = this.publisher.latest.size;
      if (this.publisher.publishStale(answer.reason)) {
        const serving = known > 0 ? `serving the last known ${known} endpoint(s)` : 'no endpoints known yet';
        this.logger.warn(`dns: '${this.service}' is unreachable (${answer.reason}); ${serving}`);
      }
      return Math.max(ttlFloorMs, this.backoff.next());
    }
    this.reachability.reachable();
    const wasStale = this.publisher.hasPublished && this.publisher.latest.state === 'stale';
    this.backoff.reset();
    this.warnSkipped(answer.name, answer.skippedTargets);
    if (answer.kind === 'records') {
      this.publishInstances(answer.instances);
      if (wasStale)
        this.logger.log(
          `dns: '${this.service}' answers again (${answer.instances.length} record(s) for ${answer.name})`,
        );
      // No TTL reported (IP-literal SRV targets): fall back to the ceiling.
      const ttlMs = answer.ttlS === undefined ? ttlCeilingMs : answer.ttlS * 1000;
      return Math.min(ttlCeilingMs, Math.max(ttlFloorMs, ttlMs));
    }
    // NXDOMAIN / no data: zero instances, unless fallback addresses are configured.
    this.publishInstances(this.seeds);
    if (wasStale) this.logger.log(`dns: '${this.service}' answers again (${answer.detail})`);
    // A negative answer has no TTL node can read; ask again at the ceiling.
    return ttlCeilingMs;
  }

  private publishInstances(instances: readonly ServiceInstance[]): void {
    if (!this.stopped) this.publisher.publish(instances.filter(this.query.matches));
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.nextAt = Date.now() + delayMs;
    this.timer = setTimeout(() => void this.resolveNow(), delayMs);
  }

  private warnSkipped(name: string, skipped: readonly string[]): void {
    for (const target of skipped) {
      if (this.warnedTargets.has(target)) continue;
      this.warnedTargets.add(target);
      this.logger.warn(`dns: SRV target '${target}' of ${name} resolves to no A/AAAA address; skipped`);
    }
    for (const target of [...this.warnedTargets]) if (!skipped.includes(target)) this.warnedTargets.delete(target);
  }
}
