import { describe, expect, it } from 'vitest';
import {
  DEFAULT_EWMA_DECAY_MS,
  createEndpointLoad,
  decayedLatency,
  onCallEnd,
  onCallStart,
} from '../../../lib/balancing/endpoint-load.js';
import { P2cEwmaStrategy, peakEwmaCost } from '../../../lib/balancing/p2c-ewma.strategy.js';
import { ConfigurationError } from '../../../lib/core/index.js';
import { buildContext, countPicks, makeEndpoints } from './support/balancing-fixtures.js';
import { simulateCalls } from './support/call-simulation.js';

const strategy = new P2cEwmaStrategy();

describe('peak EWMA latency', () => {
  it('jumps to a slower sample at once and believes a faster one only gradually', () => {
    const load = createEndpointLoad();
    onCallStart(load);
    onCallEnd(load, 10, 1_000);
    expect(load).toMatchObject({ inFlight: 0, ewmaMs: 10, stampMs: 1_000 });
    onCallEnd(load, 100, 1_001);
    expect(load.ewmaMs).toBe(100);
    // One time constant later, a 0 ms answer moves the estimate 1 - 1/e of the way down.
    onCallEnd(load, 0, 1_001 + DEFAULT_EWMA_DECAY_MS);
    expect(load.ewmaMs).toBeCloseTo(100 / Math.E, 1);
    onCallEnd(load, 1, 1_002 + DEFAULT_EWMA_DECAY_MS);
    expect(load.ewmaMs).toBeGreaterThan(30);
  });

  it('decays toward zero while no answer arrives, without changing the record', () => {
    const load = createEndpointLoad();
    onCallEnd(load, 50, 0.5);
    expect(decayedLatency(load, 0.5)).toBe(50);
    expect(decayedLatency(load, 0.5 + 2 * DEFAULT_EWMA_DECAY_MS)).toBeCloseTo(50 / Math.E ** 2, 5);
    expect(load.ewmaMs).toBe(50);
    expect(decayedLatency(createEndpointLoad(), 1_000)).toBe(0);
  });

  it('never lets in-flight go below zero and ignores a negative latency', () => {
    const load = createEndpointLoad();
    onCallEnd(load, -1, 10);
    expect(load).toEqual({ inFlight: 0, ewmaMs: 0, stampMs: 0 });
  });

  it('costs latency × (in flight + 1); an unmeasured endpoint is free when idle and last when busy', () => {
    const load = createEndpointLoad();
    expect(peakEwmaCost(load, 0)).toBe(0);
    onCallStart(load);
    expect(peakEwmaCost(load, 0)).toBeGreaterThan(1e9);
    onCallEnd(load, 20, 100);
    onCallStart(load);
    onCallStart(load);
    expect(peakEwmaCost(load, 100)).toBe(60);
  });
});

describe('p2c_ewma', () => {
  it('sends most calls to the faster endpoints in a simulated run', () => {
    const endpoints = makeEndpoints(4);
    const slow = endpoints[2].key;
    const context = buildContext(21);
    const result = simulateCalls({
      picker: strategy.build(endpoints, context),
      loads: context.loads,
      calls: 20_000,
      intervalMs: 1,
      latencyMs: (e) => (e.key === slow ? 50 : 5),
    });
    expect(result.calls.get(slow)! / 20_000).toBeLessThan(0.08);
    for (const e of endpoints) if (e.key !== slow) expect(result.calls.get(e.key)! / 20_000).toBeGreaterThan(0.25);
  });

  it('moves away from an endpoint on its first slow answer and probes it again once that answer is old', () => {
    const endpoints = makeEndpoints(2);
    const [a, b] = endpoints;
    const context = buildContext(8);
    const picker = strategy.build(endpoints, context);
    for (const [endpoint, ms] of [
      [a, 5],
      [b, 5],
    ] as const) {
      onCallStart(context.loads.load(endpoint));
      onCallEnd(context.loads.load(endpoint), ms, 1_000);
    }
    onCallStart(context.loads.load(a));
    onCallEnd(context.loads.load(a), 200, 1_001);
    expect(countPicks(() => picker.pick(), 100).get(b.key)).toBe(100);
    // b keeps answering in 5 ms; a's single slow answer fades (e^-6 ≈ 0.25%), so a is tried again.
    const later = 1_001 + 6 * DEFAULT_EWMA_DECAY_MS;
    onCallStart(context.loads.load(b));
    onCallEnd(context.loads.load(b), 5, later - 1);
    expect(picker.pick()).toBe(a);
  });

  it('compares two endpoints as of the later of their last answers, without reading a clock', () => {
    const endpoints = makeEndpoints(2);
    const [a, b] = endpoints;
    const context = buildContext(2);
    onCallEnd(context.loads.load(a), 100, 1_000);
    onCallEnd(context.loads.load(b), 10, 1_000);
    onCallStart(context.loads.load(b));
    onCallStart(context.loads.load(b));
    const picker = strategy.build(endpoints, context);
    expect(picker.pick()).toBe(b); // 100 × 1 against 10 × 3
    // b answers again one time constant later: a's old 100 ms now counts 100 × e^-1 ≈ 37, still above 10 × 3.
    onCallEnd(context.loads.load(b), 10, 1_000 + DEFAULT_EWMA_DECAY_MS);
    onCallStart(context.loads.load(b));
    expect(picker.pick()).toBe(b);
    // Two time constants: 100 × e^-2 ≈ 13.5 < 10 × 3, so a is tried again.
    onCallEnd(context.loads.load(b), 10, 1_000 + 2 * DEFAULT_EWMA_DECAY_MS);
    onCallStart(context.loads.load(b));
    expect(picker.pick()).toBe(a);
  });

  it('probes an unmeasured endpoint once at a time', () => {
    const endpoints = makeEndpoints(2);
    const [fresh, known] = endpoints;
    const context = buildContext(3);
    onCallEnd(context.loads.load(known), 5, 1_000);
    const picker = strategy.build(endpoints, context);
    expect(picker.pick()).toBe(fresh);
    onCallStart(context.loads.load(fresh));
    expect(countPicks(() => picker.pick(), 50).get(known.key)).toBe(50);
  });

  it('rejects a decay time that is not a positive number of ms', () => {
    expect(() => new P2cEwmaStrategy({ decayMs: 0 })).toThrow(ConfigurationError);
    expect(() => new P2cEwmaStrategy({ decayMs: 0 })).toThrow(/decayMs/);
  });

  it('returns the only endpoint of a one-endpoint set and undefined for an empty one', () => {
    const one = makeEndpoints(1);
    expect(strategy.build(one, buildContext(1)).pick()).toBe(one[0]);
    expect(strategy.build([], buildContext(1)).pick()).toBeUndefined();
  });
});
