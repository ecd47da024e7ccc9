import type { ResolvedDiscoveryConfig } from '../core/config/resolve-discovery-config.js';
import type { ActiveCheckSettings } from './endpoint-health-checker.js';
import type { OutlierSettings } from './outlier-detector.js';

/** Everything the health overlay of one client needs to know. */
export interface HealthSettings {
  /** Active checks; `enabled: false` (the default) runs none. */
  active: ActiveCheckSettings & { enabled: boolean };
  outlier: OutlierSettings;
  /** Percent; 0 disables panic mode. */
  panicThreshold: number;
}

/** Settings under which the health overlay serves the registry's sets as they are (no checks, no ejection). */
export const PASS_THROUGH_HEALTH: Readonly<HealthSettings> = Object.freeze<HealthSettings>({
  active: {
    enabled: false,
    kind: 'grpc',
    service: '',
    path: '/health',
    intervalMs: 10_000,
    timeoutMs: 5_000,
    failureThreshold: 3,
    successThreshold: 2,
    jitter: 0.1,
  },
  outlier: {
    enabled: false,
    consecutiveFailures: 5,
    baseEjectionMs: 30_000,
    maxEjectionMs: 300_000,
    maxEjectionPercent: 50,
  },
  panicThreshold: 0,
});

/**
 * The health settings a resolved configuration describes.
 *
 * @example
 * const settings = healthSettingsOf(resolveDiscoveryConfig({ healthCheck: { enabled: true } }));
 */
export function healthSettingsOf(config: ResolvedDiscoveryConfig): HealthSettings {
  const h = config.healthCheck;
  return {
    active: {
      enabled: h.enabled,
      kind: h.kind,
      service: h.service,
      path: h.path,
      intervalMs: h.intervalMs,
      timeoutMs: h.timeoutMs,
      failureThreshold: h.failureThreshold,
      successThreshold: h.successThreshold,
      jitter: h.jitter ?? 0.1,
    },
    outlier: config.outlierDetection ?? {
      enabled: true,
      consecutiveFailures: 5,
      baseEjectionMs: 30_000,
      maxEjectionMs: 300_000,
      maxEjectionPercent: 50,
    },
    panicThreshold: config.panicThreshold ?? 50,
  };
}
