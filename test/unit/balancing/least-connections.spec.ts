import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { onCallStart } from '../../../lib/balancing/endpoint-load.js';
import { LeastConnectionsStrategy, lessLoadedOfTwo } from '../../../lib/balancing/least-connections.strategy.js';
import { RoundRobinStrategy } from '../../../lib/balancing/round-robin.strategy.js';
import { buildContext, countPicks, makeEndpoints, mulberry32 } from './support/balancing-fixtures.js';
import { simulateCalls } from './support/call-simulation.js';

const strategy = new LeastConnectionsStrategy();

describe('least_connections (power of two choices)', () => {
  it('with two endpoints always picks the one with fewer calls in flight', () => {
    const endpoints = makeEndpoints(2);
    const context = buildContext(1);
    for (let i = 0; i < 3; i++) onCallStart(context.loads.load(endpoints[0]));
    const picker = strategy.build(endpoints, context);
    expect(countPicks(() => picker.pick(), 1_000).get(endpoints[1].key)).toBe(1_000);
  });

  it('never picks the single most loaded endpoint, and the least loaded wins whenever drawn', () => {
    const endpoints = makeEndpoints(10);
    const context = buildContext(2);
    endpoints.forEach((e, i) => {
      for (let k = 0; k < i; k++) onCallStart(context.loads.load(e));
    });
    const picker = strategy.build(endpoints, context);
    const counts = countPicks(() => picker.pick(), 50_000);
    expect(counts.has(endpoints[9].key)).toBe(false);
    // The least loaded is in the pair with probability 2/n.
    expect(Math.abs(counts.get(endpoints[0].key)! / 50_000 - 0.2)).toBeLessThan(0.01);
  });

  it('always compares two distinct endpoints, whatever the generator state', () => {
    fc.assert(
      fc.property(fc.integer(), (state) => {
        const loads = [
          { inFlight: 1, ewmaMs: 0, stampMs: 0 },
          { inFlight: 0, ewmaMs: 0, stampMs: 0 },
        ];
        expect(lessLoadedOfTwo(loads, state)).toBe(1);
      }),
      { seed: 1, numRuns: 500 },
    );
  });

  it('keeps calls off a slow endpoint in a simulated run, where round robin piles them up', () => {
    const endpoints = makeEndpoints(5);
    const slow = endpoints[0].key;
    const latencyMs = (e: { key: string }) => (e.key === slow ? 40 : 4);
    const balanced = buildContext(3);
    const result = simulateCalls({
      picker: strategy.build(endpoints, balanced),
      loads: balanced.loads,
      calls: 20_000,
      intervalMs: 1,
      latencyMs,
    });
    const rotating = buildContext(3);
    const baseline = simulateCalls({
      picker: new RoundRobinStrategy().build(endpoints, rotating),
      loads: rotating.loads,
      calls: 20_000,
      intervalMs: 1,
      latencyMs,
    });
    expect(result.calls.get(slow)! / 20_000).toBeLessThan(0.1);
    expect(baseline.calls.get(slow)! / 20_000).toBeCloseTo(0.2, 2);
    expect(result.peakInFlight.get(slow)!).toBeLessThan(baseline.peakInFlight.get(slow)!);
  });

  it('reads the loads it was built with, so in-flight counts survive a rebuild', () => {
    const endpoints = makeEndpoints(2);
    const context = buildContext(4);
    strategy.build(endpoints, context);
    onCallStart(context.loads.load(endpoints[1]));
    const rebuilt = strategy.build(endpoints, { ...context, random: mulberry32(9) });
    expect(rebuilt.pick()).toBe(endpoints[0]);
  });

  it('returns the only endpoint of a one-endpoint set and undefined for an empty one', () => {
    const one = makeEndpoints(1);
    expect(strategy.build(one, buildContext(1)).pick()).toBe(one[0]);
    expect(strategy.build([], buildContext(1)).pick()).toBeUndefined();
  });
});
