import { describe, expect, it } from 'vitest';
import type { BalancingStrategy } from '../../../lib/balancing/picker.js';
import {
  StrategyRegistry,
  builtInStrategies,
  getStrategy,
  listStrategies,
} from '../../../lib/balancing/strategy-registry.js';
import { ConsistentHashStrategy } from '../../../lib/balancing/consistent-hash.strategy.js';
import { ConfigurationError, STRATEGY_NAMES } from '../../../lib/core/index.js';
import { buildContext, makeEndpoints } from './support/balancing-fixtures.js';

const firstEndpoint: BalancingStrategy = {
  name: 'first_endpoint',
  build: (endpoints) => ({ pick: () => endpoints[0] }),
};

describe('strategy registry', () => {
  it('offers exactly the built-in names that load_balance accepts', () => {
    expect(
      builtInStrategies()
        .map((s) => s.name)
        .sort(),
    ).toEqual([...STRATEGY_NAMES].sort());
    expect(new StrategyRegistry().names().sort()).toEqual(
      [
        'round_robin',
        'random',
        'consistent_hash',
        'least_connections',
        'weighted_round_robin',
        'weighted_random',
        'p2c_ewma',
      ].sort(),
    );
    for (const name of STRATEGY_NAMES) expect(getStrategy(name).name).toBe(name);
  });

  it('throws for an unknown name, listing the valid names', () => {
    expect(() => getStrategy('fastest')).toThrow(ConfigurationError);
    try {
      getStrategy('fastest');
    } catch (error) {
      const message = (error as Error).message;
      expect(message).toContain('"fastest"');
      for (const name of STRATEGY_NAMES) expect(message).toContain(name);
    }
  });

  it('registers a user strategy, selectable by name and listed with the built-ins, in that registry only', () => {
    const registry = new StrategyRegistry();
    registry.register(firstEndpoint);
    registry.register(firstEndpoint); // the same strategy again: harmless
    expect(registry.get('first_endpoint')).toBe(firstEndpoint);
    expect(registry.names()).toContain('first_endpoint');
    expect(() => registry.get('nope')).toThrow(/first_endpoint/);
    const endpoints = makeEndpoints(3);
    expect(registry.get('first_endpoint').build(endpoints, buildContext(1)).pick()).toBe(endpoints[0]);
    expect(new StrategyRegistry().has('first_endpoint')).toBe(false);
    expect(listStrategies()).not.toContain('first_endpoint');
    expect(registry.unregister('first_endpoint')).toBe(true);
    expect(() => registry.get('first_endpoint')).toThrow(ConfigurationError);
  });

  it('registers a configured built-in under its own name, leaving the built-in as it is', () => {
    const registry = new StrategyRegistry();
    const bounded = new ConsistentHashStrategy({ name: 'bounded_hash', boundedLoadFactor: 1.25 });
    registry.register(bounded);
    expect(registry.get('bounded_hash')).toBe(bounded);
    expect(registry.get('consistent_hash')).not.toBe(bounded);
    expect(() => registry.register(new ConsistentHashStrategy({ boundedLoadFactor: 1.25 }))).toThrow(/consistent_hash/);
  });

  it('refuses to let a user strategy take over a built-in name, or a malformed strategy', () => {
    const registry = new StrategyRegistry();
    expect(() => registry.register({ ...firstEndpoint, name: 'round_robin' })).toThrow(/round_robin/);
    expect(registry.unregister('round_robin')).toBe(false);
    expect(() => registry.register({ ...firstEndpoint, name: '' })).toThrow(ConfigurationError);
    expect(() => registry.register({ ...firstEndpoint, name: 'x y' })).toThrow(/"x y"/);
    expect(() => registry.register({ name: 'no_build' } as unknown as BalancingStrategy)).toThrow(/build/);
  });

  it('every built-in returns undefined for an empty endpoint list and an endpoint for a non-empty one', () => {
    const endpoints = makeEndpoints(3);
    for (const strategy of builtInStrategies()) {
      expect(strategy.build([], buildContext(1)).pick({ key: 'k' })).toBeUndefined();
      expect(endpoints).toContain(strategy.build(endpoints, buildContext(1)).pick({ key: 'k' }));
    }
  });
});
