import type { EndpointSet, EndpointSetState } from '../core/endpoint-set.js';
import type { ServiceHealth } from './health-overlay.js';

/** Terminus's three indicator states. */
export type HealthLevel = 'up' | 'degraded' | 'down';

/** One dependency (a discovered service). */
export interface DependencyHealth {
  status: HealthLevel;
  /** Endpoints calls are balanced over. */
  endpoints: number;
  /** Endpoints the registry knows (healthy or not). */
  known: number;
  healthy: number;
  /** State of the served set: ok, stale (registry unreachable), empty (zero instances). */
  state: EndpointSetState;
  minEndpoints: number;
  panic: boolean;
  reason?: string;
}

/** What `DiscoveryHealthIndicator` reports. */
export interface DiscoveryHealthReport {
  status: HealthLevel;
  registry: { status: HealthLevel; backend: string; reachable: boolean | 'unknown'; reason?: string };
  registration: { status: HealthLevel; state: string; instance?: string; service?: string };
  dependencies: Record<string, DependencyHealth>;
}

/** A discovered service as the report reads it (a ServiceClient fits). */
export interface HealthReportDependency {
  readonly service: string;
  readonly options: { minEndpoints?: number };
  snapshot(): EndpointSet;
  readonly healthStatus: ServiceHealth;
}

/** Everything the report reads (a Discovery plus the app's ServiceRegistry). */
export interface DiscoveryHealthSource {
  backend: string;
  /** The backend's own reachability signal, when it has one. */
  registryReachable(): boolean | undefined;
  /** The app's own registration; undefined for client-only apps. */
  registration(): { state: string; instance?: string; service?: string } | undefined;
  dependencies(): Iterable<HealthReportDependency>;
}

/** Options of a health report. */
export interface DiscoveryHealthOptions {
  /** Below this many served endpoints a dependency is `degraded` (per service, or one number for all). Default: the client's `minEndpoints`, else 1. */
  minEndpoints?: number | Record<string, number>;
  /** Only these dependencies (default: every client of the Discovery). */
  services?: string[];
}

const RANK: Record<HealthLevel, number> = { up: 0, degraded: 1, down: 2 };

/**
 * Grades discovery's health: a dependency is `down` with no endpoint to
 * call, `degraded` when served stale (registry unreachable) or below its
 * minimum; an unreachable registry is `degraded` (last known endpoints are
 * still served); the app's registration is `degraded` while registering or
 * lost and `down` when it failed or was withdrawn. The overall status is
 * the worst of these.
 *
 * @example
 * const report = assessDiscoveryHealth(source, { minEndpoints: { orders: 2 } }); if (report.status === 'down') alert();
 */
export function assessDiscoveryHealth(
  source: DiscoveryHealthSource,
  options: DiscoveryHealthOptions = {},
): DiscoveryHealthReport {
  const wanted = options.services ? new Set(options.services) : undefined;
  const dependencies: Record<string, DependencyHealth> = {};
  let anyStale = false;
  let staleReason: string | undefined;
  for (const client of source.dependencies()) {
    if (wanted && !wanted.has(client.service)) continue;
    if (dependencies[client.service]) continue;
    const set = client.snapshot();
    const health = client.healthStatus;
    const min =
      typeof options.minEndpoints === 'number'
        ? options.minEndpoints
        : (options.minEndpoints?.[client.service] ?? client.options.minEndpoints ?? 1);
    let status: HealthLevel = 'up';
    let reason: string | undefined;
    if (set.state === 'stale') {
      anyStale = true;
      staleReason ??= set.reason;
    }
    if (set.size === 0) {
      status = 'down';
      reason =
        set.state === 'stale'
          ? `registry unreachable: ${set.reason ?? ''}`.trim()
          : !set.resolved
            ? 'no answer from the registry yet'
            : set.state === 'empty'
              ? 'the registry reports zero instances'
              : 'every known endpoint is unhealthy';
    } else if (set.state === 'stale') {
      status = 'degraded';
      reason = `serving the last known endpoints: ${set.reason ?? 'registry unreachable'}`;
    } else if (set.size < min) {
      status = 'degraded';
      reason = `${set.size} endpoint(s), fewer than the minimum of ${min}`;
    }
    dependencies[client.service] = {
      status,
      endpoints: set.size,
      known: health.total,
      healthy: health.healthy,
      state: set.state,
      minEndpoints: min,
      panic: health.panic,
      ...(reason ? { reason } : {}),
    };
  }
  if (wanted) {
    for (const service of wanted) {
      dependencies[service] ??= {
        status: 'down',
        endpoints: 0,
        known: 0,
        healthy: 0,
        state: 'empty',
        minEndpoints: 1,
        panic: false,
        reason: 'no client for this service',
      };
    }
  }
  const own = source.registryReachable();
  const reachable: boolean | 'unknown' = own ?? (anyStale ? false : 'unknown');
  const registry: DiscoveryHealthReport['registry'] = {
    status: reachable === false ? 'degraded' : 'up',
    backend: source.backend,
    reachable,
    ...(reachable === false && staleReason ? { reason: staleReason } : {}),
  };
  const self = source.registration();
  const registration: DiscoveryHealthReport['registration'] = self
    ? { status: registrationLevel(self.state), ...self }
    : { status: 'up', state: 'disabled' };
  let status: HealthLevel = worst(registry.status, registration.status);
  for (const dependency of Object.values(dependencies)) status = worst(status, dependency.status);
  return { status, registry, registration, dependencies };
}

function registrationLevel(state: string): HealthLevel {
  switch (state) {
    case 'registered':
    case 'disabled':
      return 'up';
    case 'failed':
    case 'deregistered':
      return 'down';
    default:
      // unregistered (waiting for the port), registering, lost (being restored)
      return 'degraded';
  }
}

function worst(a: HealthLevel, b: HealthLevel): HealthLevel {
  return RANK[a] >= RANK[b] ? a : b;
}
