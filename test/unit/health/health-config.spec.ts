import { describe, expect, it } from 'vitest';
import { ConfigurationError, resolveDiscoveryConfig } from '../../../lib/index.js';
import { healthSettingsOf } from '../../../lib/health/health-settings.js';
import { parseDiscoveryConfig } from '../../../lib/core/config/load-discovery-config.js';

function issuesOf(fn: () => unknown): ConfigurationError {
  try {
    fn();
  } catch (error) {
    if (error instanceof ConfigurationError) return error;
    throw error;
  }
  throw new Error('expected a ConfigurationError');
}

function toml(body: string) {
  return () => parseDiscoveryConfig(`[discovery]\nbackend = "memory"\n${body}`, 'toml', 'health.toml');
}

describe('health configuration', () => {
  it('defaults: checks off (opt-in), seed timings, outlier detection on, panic at 50 %', () => {
    const settings = healthSettingsOf(resolveDiscoveryConfig({}));
    expect(settings.active).toMatchObject({
      enabled: false,
      kind: 'grpc',
      intervalMs: 10_000,
      timeoutMs: 5_000,
      failureThreshold: 3,
      successThreshold: 2,
      path: '/health',
      jitter: 0.1,
    });
    expect(settings.outlier).toEqual({
      enabled: true,
      consecutiveFailures: 5,
      baseEjectionMs: 30_000,
      maxEjectionMs: 300_000,
      maxEjectionPercent: 50,
    });
    expect(settings.panicThreshold).toBe(50);
  });

  it('reads the snake_case keys from a file', () => {
    const config = parseDiscoveryConfig(
      [
        '[discovery]',
        'backend = "memory"',
        'panic_threshold = 0',
        '[discovery.health_check]',
        'enabled = true',
        'kind = "http"',
        'path = "/healthz"',
        'interval = 2',
        'timeout = 1',
        'failure_threshold = 4',
        'success_threshold = 1',
        '[discovery.outlier_detection]',
        'consecutive_failures = 7',
        'base_ejection_time = 10',
        'max_ejection_time = 60',
        'max_ejection_percent = 30',
      ].join('\n'),
      'toml',
    );
    expect(healthSettingsOf(config)).toMatchObject({
      active: {
        enabled: true,
        kind: 'http',
        path: '/healthz',
        intervalMs: 2_000,
        timeoutMs: 1_000,
        failureThreshold: 4,
        successThreshold: 1,
      },
      outlier: {
        enabled: true,
        consecutiveFailures: 7,
        baseEjectionMs: 10_000,
        maxEjectionMs: 60_000,
        maxEjectionPercent: 30,
      },
      panicThreshold: 0,
    });
  });

  it.each([
    ['failure_threshold = 0', 'discovery.health_check.failure_threshold', 0],
    ['success_threshold = 0', 'discovery.health_check.success_threshold', 0],
    ['failure_threshold = 1.5', 'discovery.health_check.failure_threshold', 1.5],
    ['path = "health"', 'discovery.health_check.path', 'health'],
    ['kind = "udp"', 'discovery.health_check.kind', 'udp'],
  ])('rejects health_check %s, naming the field', (line, field, value) => {
    const error = issuesOf(toml(`[discovery.health_check]\n${line}`));
    expect(error.issues).toEqual([expect.objectContaining({ path: field, value })]);
    expect(error.message).toContain(field);
    expect(error.message).toContain('health.toml');
  });

  it('rejects a timeout not smaller than the interval, naming health_check.timeout', () => {
    const error = issuesOf(toml('[discovery.health_check]\ninterval = 5\ntimeout = 5'));
    expect(error.issues.map((i) => i.path)).toEqual(['discovery.health_check.timeout']);
    expect(error.message).toMatch(/discovery\.health_check\.timeout: timeout must be smaller than interval/);
    expect(() => resolveDiscoveryConfig({ healthCheck: { interval: 1, timeout: 2 } })).toThrow(/healthCheck\.timeout/);
  });

  it.each([
    ['[discovery.outlier_detection]\nconsecutive_failures = 0', 'discovery.outlier_detection.consecutive_failures'],
    ['[discovery.outlier_detection]\nmax_ejection_percent = 120', 'discovery.outlier_detection.max_ejection_percent'],
    ['[discovery.outlier_detection]\nbase_ejection_time = 0', 'discovery.outlier_detection.base_ejection_time'],
    [
      '[discovery.outlier_detection]\nbase_ejection_time = 60\nmax_ejection_time = 30',
      'discovery.outlier_detection.max_ejection_time',
    ],
    ['panic_threshold = -1', 'discovery.panic_threshold'],
    ['panic_threshold = 101', 'discovery.panic_threshold'],
    ['[discovery.health_check]\njitter = 0.9', 'discovery.health_check.jitter'],
  ])('rejects %j, naming the field', (body, field) => {
    const error = issuesOf(toml(body));
    expect(error.issues.map((i) => i.path)).toEqual([field]);
  });
});
