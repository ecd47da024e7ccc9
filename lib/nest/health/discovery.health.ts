import { Inject, Injectable } from '@nestjs/common';
import type { Discovery } from '../../discovery/discovery.js';
import { importOptionalPeer } from '../../core/optional-peer.js';
import type { ServiceRegistry } from '../../discovery/service-registry.js';
import type {
  DiscoveryHealthOptions,
  DiscoveryHealthReport,
  HealthLevel,
} from '../../health/discovery-health-report.js';
import { DISCOVERY_INSTANCE, SERVICE_REGISTRY } from '../discovery.constants.js';

/** A Terminus indicator result: `{ [key]: { status, ...details } }`. */
export type DiscoveryIndicatorResult<Key extends string = string> = Record<
  Key,
  { status: HealthLevel } & Record<string, unknown>
>;

type TerminusModule = typeof import('@nestjs/terminus');
type Session = ReturnType<InstanceType<TerminusModule['HealthIndicatorService']>['check']>;

let terminus: Promise<TerminusModule> | undefined;

/** @nestjs/terminus is an optional peer: loaded on the first check only. */
function loadTerminus(): Promise<TerminusModule> {
  terminus ??= importOptionalPeer(
    '@nestjs/terminus',
    'DiscoveryHealthIndicator',
    () => import('@nestjs/terminus'),
  ).catch((error: unknown) => {
    terminus = undefined;
    throw error;
  });
  return terminus;
}

/**
 * Terminus health indicator for discovery (built on Terminus 11+'s
 * `HealthIndicatorService`): registry reachability, the app's own
 * registration, and per dependency the served endpoint count — `down` at 0,
 * `degraded` below its minimum or while served stale. Terminus 12 reports
 * `degraded` as such (HTTP 200, overall status `degraded`); on Terminus 11,
 * which has no `degraded`, it is reported `up` with `degraded: true`.
 *
 * @example
 * @Get('health') @HealthCheck() check() { return this.health.check([() => this.discovery.isHealthy('discovery')]); }
 */
@Injectable()
export class DiscoveryHealthIndicator {
  private service: InstanceType<TerminusModule['HealthIndicatorService']> | undefined;

  constructor(
    @Inject(DISCOVERY_INSTANCE) private readonly discovery: Discovery,
    @Inject(SERVICE_REGISTRY) private readonly self: ServiceRegistry,
  ) {}

  /** The whole picture under one key: registry, registration and every dependency. */
  async isHealthy<const Key extends string = 'discovery'>(
    key: Key = 'discovery' as Key,
    options: DiscoveryHealthOptions = {},
  ): Promise<DiscoveryIndicatorResult<Key>> {
    const report = this.report(options);
    const session = await this.session(key);
    return this.result(session, report.status, {
      registry: report.registry,
      registration: report.registration,
      dependencies: report.dependencies,
    });
  }

  /**
   * One dependency under its own key (default: the service name).
   *
   * @example
   * () => this.discovery.checkService('orders', { minEndpoints: 2 })
   */
  async checkService(
    service: string,
    options: { key?: string; minEndpoints?: number } = {},
  ): Promise<DiscoveryIndicatorResult> {
    const report = this.report({
      services: [service],
      ...(options.minEndpoints !== undefined ? { minEndpoints: options.minEndpoints } : {}),
    });
    const dependency = report.dependencies[service];
    const { status, ...details } = dependency;
    const session = await this.session(options.key ?? service);
    return this.result(session, status, details);
  }

  /** The report behind the indicator, without Terminus. */
  report(options: DiscoveryHealthOptions = {}): DiscoveryHealthReport {
    return this.discovery.healthReport(this.self, options);
  }

  private async session(key: string): Promise<Session> {
    if (!this.service) {
      const { HealthIndicatorService } = await loadTerminus();
      this.service = new HealthIndicatorService();
    }
    return this.service.check(key);
  }

  private result(session: Session, status: HealthLevel, details: Record<string, unknown>): DiscoveryIndicatorResult {
    if (status === 'down') return session.down(details);
    if (status === 'degraded') {
      const withDegraded = session as Session & { degraded?: (data: Record<string, unknown>) => unknown };
      if (typeof withDegraded.degraded === 'function') return withDegraded.degraded(details);
      return session.up({ ...details, degraded: true });
    }
    return session.up(details);
  }
}
