import { describe, expect, it } from 'vitest';
import { EndpointSet } from '../../../../lib/core/endpoint-set.js';
import { createServiceInstance } from '../../../../lib/core/service-instance.js';
import { endpointOf } from '../../../../lib/core/endpoint.js';
import { ConfigurationError, OverloadedError } from '../../../../lib/core/errors.js';
import { resolveOverload } from '../../../../lib/core/config/overload-options.js';
import { parseDiscoveryConfig } from '../../../../lib/core/config/load-discovery-config.js';
import { LoadTracker } from '../../../../lib/balancing/endpoint-load.js';
import { RoundRobinStrategy } from '../../../../lib/balancing/round-robin.strategy.js';
import { AdaptiveThrottle } from '../../../../lib/client/overload/adaptive-throttle.js';
import { Admission } from '../../../../lib/client/overload/admission.js';
import { SlowStart, SlowStartPicker } from '../../../../lib/client/overload/slow-start.js';
import { LatencyWindow } from '../../../../lib/client/overload/latency-window.js';
import { priorityLoads, priorityOf, PriorityPicker } from '../../../../lib/client/priority-levels.js';
import { deterministicSubset } from '../../../../lib/client/subsetting.js';
import { makeEndpoints, mulberry32 } from '../../balancing/support/balancing-fixtures.js';

function setOf(ids: string[]): EndpointSet {
  return EndpointSet.of(
    'svc',
    ids.map((id, i) => createServiceInstance({ service: 'svc', id, address: `10.0.0.${i + 1}:50051` })),
  );
}

describe('overload configuration', () => {
  it('has documented defaults: slow start, hedging and subsetting off; Envoy breaker limits; throttling on', () => {
    const s = resolveOverload(undefined);
    expect(s.slowStart.windowMs).toBe(0);
    expect(s.hedging.delayMs).toBe(0);
    expect(s.subsetting.size).toBe(0);
    expect(s.circuitBreaker).toEqual({ maxRequests: 1024, maxRequestsPerEndpoint: 0, maxPending: 1024 });
    expect(s.throttling).toEqual({ enabled: true, k: 2, windowMs: 120_000, minRequests: 10 });
    expect(s.priority).toEqual({ overprovisioningFactor: 1.4, tag: 'priority' });
  });

  it('loads the snake_case sections from a file, and lets a client override single keys', () => {
    const config = parseDiscoveryConfig(
      [
        '[discovery]',
        'backend = "memory"',
        '[discovery.slow_start]',
        'window = 30',
        'aggression = 2',
        '[discovery.circuit_breaker]',
        'max_requests_per_endpoint = 50',
        '[discovery.hedging]',
        'delay = "p95"',
        'grpc_methods = ["orders.Orders/Get"]',
      ].join('\n'),
      'toml',
    );
    expect(config.overload.slowStart).toEqual({ windowMs: 30_000, aggression: 2, minWeightPercent: 10 });
    expect(config.overload.circuitBreaker.maxRequestsPerEndpoint).toBe(50);
    expect(config.overload.hedging).toEqual({
      delayMs: 'p95',
      maxAttempts: 2,
      cancel: false,
      grpcMethods: ['orders.Orders/Get'],
    });
    const client = resolveOverload(config.overload, { slowStart: { window: 5 }, hedging: { delay: 0.02 } });
    expect(client.slowStart).toEqual({ windowMs: 5_000, aggression: 2, minWeightPercent: 10 });
    expect(client.hedging.delayMs).toBe(20);
    expect(client.circuitBreaker.maxRequestsPerEndpoint).toBe(50);
  });

  it('names the field, the value and what was expected for a bad client value', () => {
    expect(() => resolveOverload(undefined, { slowStart: { aggression: 0 } }, 'clients.orders')).toThrow(
      ConfigurationError,
    );
    expect(() => resolveOverload(undefined, { slowStart: { aggression: 0 } }, 'clients.orders')).toThrow(
      /clients\.orders\.slowStart\.aggression.*\(got 0\)/,
    );
  });
});

describe('slow start', () => {
  it('ramps a newcomer from min_weight to its full share over the window (aggression shapes the curve)', () => {
    let now = 0;
    const linear = new SlowStart({ windowMs: 10_000, aggression: 1, minWeightPercent: 10 }, () => now);
    const first = setOf(['a', 'b']);
    linear.observe(EndpointSet.initial('svc'), first);
    const joined = setOf(['a', 'b', 'c']);
    linear.observe(first, joined);
    const c = joined.endpoints.find((e) => e.instance.id === 'c')!;
    expect(linear.ramping).toBe(1);
    expect(linear.factor(c.key)).toBe(0.1);
    now = 5_000;
    expect(linear.factor(c.key)).toBeCloseTo(0.5);
    now = 10_000;
    expect(linear.factor(c.key)).toBe(1);
    expect(linear.ramping).toBe(0);
    now = 0;
    const eagerAt = new SlowStart({ windowMs: 10_000, aggression: 2, minWeightPercent: 10 }, () => now);
    eagerAt.observe(EndpointSet.initial('svc'), first);
    eagerAt.observe(first, joined);
    now = 2_500;
    expect(eagerAt.factor(c.key)).toBeCloseTo(0.5); // (0.25)^(1/2)
  });

  it("leaves the client's first endpoints alone: the client started, not they", () => {
    const slow = new SlowStart({ windowMs: 10_000, aggression: 1, minWeightPercent: 10 }, () => 0);
    slow.observe(EndpointSet.initial('svc'), setOf(['a', 'b']));
    expect(slow.ramping).toBe(0);
  });

  it('gives a ramping endpoint about its factor of the share under round robin, and never gates a keyed pick', () => {
    let now = 0;
    const slow = new SlowStart({ windowMs: 10_000, aggression: 1, minWeightPercent: 10 }, () => now);
    const first = setOf(['a', 'b']);
    slow.observe(EndpointSet.initial('svc'), first);
    const joined = setOf(['a', 'b', 'c']);
    slow.observe(first, joined);
    now = 2_000; // factor 0.2
    const inner = new RoundRobinStrategy().build(joined.endpoints.slice(), {
      loads: new LoadTracker(),
      random: mulberry32(1),
    });
    const c = joined.endpoints.find((e) => e.instance.id === 'c')!;
    // Keyed picks go to c here, as a hash would send a key to it.
    const picker = new SlowStartPicker(
      { pick: (context) => (context?.key !== undefined ? c : inner.pick(context)) },
      slow,
      mulberry32(2),
    );
    const counts = new Map<string, number>();
    for (let i = 0; i < 30_000; i++) {
      const id = picker.pick()!.instance.id;
      counts.set(id, (counts.get(id) ?? 0) + 1);
    }
    const share = counts.get('c')! / 30_000;
    // Full share would be 1/3; at 20 % of its weight c gets 0.2 / 2.2 of the traffic.
    expect(share).toBeGreaterThan(0.07);
    expect(share).toBeLessThan(0.11);
    for (let i = 0; i < 50; i++) expect(picker.pick({ key: 'k' })).toBe(c);
  });
});

describe('adaptive throttling (SRE book)', () => {
  it('sheds nothing while the service accepts, and max(0, (requests - K accepts) / (requests + 1)) when it refuses', () => {
    let now = 1;
    const throttle = new AdaptiveThrottle({ enabled: true, k: 2, windowMs: 120_000, minRequests: 10 }, () => now);
    for (let i = 0; i < 100; i++) throttle.record(true);
    expect(throttle.rejectProbability()).toBe(0);
    for (let i = 0; i < 900; i++) throttle.record(false);
    // 1000 requests, 100 accepted: (1000 - 200) / 1001.
    expect(throttle.rejectProbability()).toBeCloseTo(800 / 1001, 5);
    now += 120_001; // the window slides past every request
    expect(throttle.rejectProbability()).toBe(0);
  });

  it('does not act below min_requests, nor when disabled', () => {
    const throttle = new AdaptiveThrottle({ enabled: true, k: 2, windowMs: 120_000, minRequests: 10 }, () => 1);
    for (let i = 0; i < 9; i++) throttle.record(false);
    expect(throttle.rejectProbability()).toBe(0);
    throttle.record(false);
    expect(throttle.rejectProbability()).toBeGreaterThan(0.9);
    const off = new AdaptiveThrottle({ enabled: false, k: 2, windowMs: 120_000, minRequests: 10 }, () => 1);
    for (let i = 0; i < 100; i++) off.record(false);
    expect(off.rejectProbability()).toBe(0);
  });
});

describe('admission (circuit breaker)', () => {
  const endpoints = makeEndpoints(2);

  it('refuses past max_requests and max_requests_per_endpoint with an OverloadedError naming the limit', () => {
    const loads = new LoadTracker();
    const settings = resolveOverload(undefined, { circuitBreaker: { maxRequests: 3, maxRequestsPerEndpoint: 2 } });
    const admission = new Admission('orders', settings, loads, mulberry32(3));
    const a = loads.load(endpoints[0]);
    const b = loads.load(endpoints[1]);
    a.inFlight = 2;
    loads.load(endpoints[0]); // same record
    const perEndpoint = admission.refusal(endpoints[0], a);
    expect(perEndpoint).toBeInstanceOf(OverloadedError);
    expect(perEndpoint?.reason).toBe('max-requests-per-endpoint');
    expect(perEndpoint?.message).toMatch(/max_requests_per_endpoint = 2/);
    expect(admission.refusal(endpoints[1], b)).toBeUndefined();
  });

  it('counts callers waiting for a first endpoint against max_pending', () => {
    const settings = resolveOverload(undefined, { circuitBreaker: { maxPending: 2 } });
    const admission = new Admission('orders', settings, new LoadTracker(), mulberry32(3));
    admission.enterPending();
    admission.enterPending();
    expect(() => admission.enterPending()).toThrow(/max_pending = 2/);
    admission.leavePending();
    expect(() => admission.enterPending()).not.toThrow();
  });
});

describe('priority failover (Envoy priority load)', () => {
  it('keeps all traffic in a level while healthy share × 1.4 ≥ 100 %, then spills in proportion', () => {
    expect(
      priorityLoads(
        [
          { healthy: 4, total: 4 },
          { healthy: 4, total: 4 },
        ],
        1.4,
      ),
    ).toEqual([1, 0]);
    expect(
      priorityLoads(
        [
          { healthy: 3, total: 4 },
          { healthy: 4, total: 4 },
        ],
        1.4,
      ),
    ).toEqual([1, 0]);
    const half = priorityLoads(
      [
        { healthy: 2, total: 4 },
        { healthy: 4, total: 4 },
      ],
      1.4,
    );
    expect(half[0]).toBeCloseTo(0.7);
    expect(half[1]).toBeCloseTo(0.3);
    expect(
      priorityLoads(
        [
          { healthy: 0, total: 4 },
          { healthy: 4, total: 4 },
        ],
        1.4,
      ),
    ).toEqual([0, 1]);
    // Both degraded: normalised so all traffic still goes somewhere.
    const both = priorityLoads(
      [
        { healthy: 1, total: 4 },
        { healthy: 1, total: 4 },
      ],
      1.4,
    );
    expect(both[0] + both[1]).toBeCloseTo(1);
    expect(both[0]).toBeCloseTo(0.5);
  });

  it('orders endpoints by the caller’s zone, then region, then elsewhere, unless a priority tag says otherwise', () => {
    const at = (zone: string, region: string, tags: Record<string, string> = {}) =>
      endpointOf(createServiceInstance({ service: 'svc', address: '10.0.0.1:1', metadata: { zone, region }, tags }));
    const me = { zone: 'eu-1a', region: 'eu-1' };
    expect(priorityOf(at('eu-1a', 'eu-1'), me, 'priority')).toBe(0);
    expect(priorityOf(at('eu-1b', 'eu-1'), me, 'priority')).toBe(1);
    expect(priorityOf(at('us-1a', 'us-1'), me, 'priority')).toBe(2);
    expect(priorityOf(at('us-1a', 'us-1', { priority: '0' }), me, 'priority')).toBe(0);
    expect(priorityOf(at('eu-1a', 'eu-1'), { zone: undefined, region: undefined }, 'priority')).toBe(0);
  });

  it('splits picks between levels by their shares, and keeps a key in one level', () => {
    const [a, b] = makeEndpoints(2);
    const only = (endpoint: typeof a) => ({ pick: () => endpoint });
    const picker = new PriorityPicker([only(a), only(b)], Float64Array.of(0.7, 1), mulberry32(9));
    let first = 0;
    for (let i = 0; i < 20_000; i++) if (picker.pick() === a) first++;
    expect(first / 20_000).toBeGreaterThan(0.68);
    expect(first / 20_000).toBeLessThan(0.72);
    const home = picker.pick({ key: 'alice' });
    for (let i = 0; i < 20; i++) expect(picker.pick({ key: 'alice' })).toBe(home);
  });
});

describe('deterministic subsetting', () => {
  const servers = (n: number, from = 0) =>
    EndpointSet.of(
      'svc',
      Array.from({ length: n }, (_, i) =>
        createServiceInstance({
          service: 'svc',
          id: `s${i + from}`,
          address: `10.1.${(i + from) >> 8}.${(i + from) & 255}:1`,
        }),
      ),
    );

  it('gives every server the same number of clients (300 clients × 300 servers, subsets of 20)', () => {
    const set = servers(300);
    const perServer = new Map<string, number>();
    for (let client = 0; client < 300; client++) {
      const subset = deterministicSubset(set, 20, client);
      expect(subset.size).toBe(20);
      for (const e of subset.endpoints) perServer.set(e.key, (perServer.get(e.key) ?? 0) + 1);
    }
    const counts = [...perServer.values()];
    expect(perServer.size).toBe(300);
    expect(Math.max(...counts) / Math.min(...counts)).toBeLessThanOrEqual(1.1);
  });

  it('changes a client’s subset by about one server when one joins or leaves', () => {
    const before = servers(300);
    const joined = servers(301);
    let changed = 0;
    for (let client = 0; client < 300; client++) {
      const a = new Set(deterministicSubset(before, 20, client).endpoints.map((e) => e.instance.id));
      const b = deterministicSubset(joined, 20, client).endpoints.map((e) => e.instance.id);
      changed += b.filter((id) => !a.has(id)).length;
    }
    // Each client gains at most a couple of servers (the newcomer, or one shifted across a boundary).
    expect(changed / 300).toBeLessThanOrEqual(2);
  });

  it('keeps every endpoint when the service has no more than the subset size', () => {
    const set = servers(10);
    expect(deterministicSubset(set, 20, 5)).toBe(set);
  });
});

describe('latency window (hedging after the p95)', () => {
  it('reports the p95 of recent successes once it has enough of them', () => {
    const window = new LatencyWindow();
    for (let i = 0; i < 31; i++) window.record(i);
    expect(window.percentile95()).toBeUndefined();
    for (let i = 0; i < 97; i++) window.record(i < 90 ? 10 : 100);
    expect(window.percentile95()).toBe(100);
  });
});
