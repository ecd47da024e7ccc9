import { describe, expect, it } from 'vitest';
import { createServiceInstance, EndpointSet } from '../../../lib/index.js';
import {
  assessDiscoveryHealth,
  type DiscoveryHealthSource,
  type HealthReportDependency,
} from '../../../lib/health/discovery-health-report.js';

function dependency(service: string, set: EndpointSet, minEndpoints?: number): HealthReportDependency {
  return {
    service,
    options: { minEndpoints },
    snapshot: () => set,
    healthStatus: { total: set.size, healthy: set.size, unhealthy: 0, ejected: 0, served: set.size, panic: false },
  };
}

function setOf(service: string, n: number): EndpointSet {
  return EndpointSet.of(
    service,
    Array.from({ length: n }, (_, i) =>
      createServiceInstance({ service, id: `${service}${i}`, address: `127.0.0.1:${7000 + i}` }),
    ),
  );
}

function source(deps: HealthReportDependency[], extra: Partial<DiscoveryHealthSource> = {}): DiscoveryHealthSource {
  return {
    backend: 'etcd',
    registryReachable: () => true,
    registration: () => ({ state: 'registered', instance: 'me-1', service: 'me' }),
    dependencies: () => deps,
    ...extra,
  };
}

describe('assessDiscoveryHealth', () => {
  it('is up when the registry answers, the app is registered and every dependency has its endpoints', () => {
    const report = assessDiscoveryHealth(
      source([dependency('orders', setOf('orders', 2)), dependency('users', setOf('users', 1))]),
    );
    expect(report.status).toBe('up');
    expect(report.dependencies.orders).toMatchObject({ status: 'up', endpoints: 2, minEndpoints: 1, state: 'ok' });
  });

  it('is degraded below a minimum (option, per service, or the client option) and while served stale', () => {
    const deps = [dependency('orders', setOf('orders', 2), 3), dependency('users', setOf('users', 2))];
    expect(assessDiscoveryHealth(source(deps)).dependencies.orders).toMatchObject({
      status: 'degraded',
      minEndpoints: 3,
    });
    expect(assessDiscoveryHealth(source(deps), { minEndpoints: { users: 5 } }).dependencies.users.status).toBe(
      'degraded',
    );
    expect(assessDiscoveryHealth(source(deps), { minEndpoints: 2 }).status).toBe('up');
    const stale = assessDiscoveryHealth(
      source([dependency('orders', setOf('orders', 2).stale('etcd down'))], { registryReachable: () => undefined }),
    );
    expect(stale.status).toBe('degraded');
    expect(stale.registry).toEqual({ status: 'degraded', backend: 'etcd', reachable: false, reason: 'etcd down' });
    expect(stale.dependencies.orders).toMatchObject({ status: 'degraded', state: 'stale', endpoints: 2 });
  });

  it('is down when a dependency has nothing to call, saying whether it has zero instances or the registry is unreachable', () => {
    const empty = assessDiscoveryHealth(source([dependency('orders', setOf('orders', 0))]));
    expect(empty.status).toBe('down');
    expect(empty.dependencies.orders.reason).toBe('the registry reports zero instances');
    const unreachable = assessDiscoveryHealth(
      source([dependency('orders', EndpointSet.initial('orders').stale('connection refused'))]),
    );
    expect(unreachable.dependencies.orders).toMatchObject({
      status: 'down',
      reason: 'registry unreachable: connection refused',
    });
    const unhealthy = assessDiscoveryHealth(
      source([
        dependency(
          'orders',
          setOf('orders', 2).filter(() => false),
        ),
      ]),
    );
    expect(unhealthy.dependencies.orders.reason).toBe('every known endpoint is unhealthy');
    const missing = assessDiscoveryHealth(source([]), { services: ['ghost'] });
    expect(missing.dependencies.ghost).toMatchObject({ status: 'down', reason: 'no client for this service' });
  });

  it('grades the own registration: lost is degraded, failed is down, client-only apps are up', () => {
    const deps = [dependency('orders', setOf('orders', 1))];
    expect(assessDiscoveryHealth(source(deps, { registration: () => ({ state: 'lost' }) })).status).toBe('degraded');
    expect(assessDiscoveryHealth(source(deps, { registration: () => ({ state: 'failed' }) })).status).toBe('down');
    expect(assessDiscoveryHealth(source(deps, { registration: () => undefined })).registration).toEqual({
      status: 'up',
      state: 'disabled',
    });
    expect(assessDiscoveryHealth(source(deps, { registryReachable: () => false })).registry.status).toBe('degraded');
  });
});
