import { ConfigurationError } from '../core/errors.js';
import { ConsistentHashStrategy } from './consistent-hash.strategy.js';
import { LeastConnectionsStrategy } from './least-connections.strategy.js';
import { P2cEwmaStrategy } from './p2c-ewma.strategy.js';
import type { BalancingStrategy } from './picker.js';
import { RandomStrategy } from './random.strategy.js';
import { RoundRobinStrategy } from './round-robin.strategy.js';
import { WeightedRandomStrategy } from './weighted-random.strategy.js';
import { WeightedRoundRobinStrategy } from './weighted-round-robin.strategy.js';

/** The strategies selectable by `load_balance` out of the box, with default options. */
export function builtInStrategies(): BalancingStrategy[] {
  return [
    new RoundRobinStrategy(),
    new RandomStrategy(),
    new ConsistentHashStrategy(),
    new LeastConnectionsStrategy(),
    new WeightedRoundRobinStrategy(),
    new WeightedRandomStrategy(),
    new P2cEwmaStrategy(),
  ];
}

/** Strategy names: letters, digits, `_`, `-`, `.`, starting with a letter. */
const STRATEGY_NAME = /^[A-Za-z][A-Za-z0-9_.-]{0,63}$/;

/**
 * Strategies by name: the built-ins plus user strategies. Each Discovery
 * holds its own, so two Discovery instances in one process never see each
 * other's strategies.
 *
 * @example
 * const strategies = new StrategyRegistry(); strategies.register(myStrategy); strategies.get('my_strategy');
 */
export class StrategyRegistry {
  private readonly strategies = new Map<string, BalancingStrategy>();
  private readonly builtIn = new Set<string>();

  constructor(builtIns: readonly BalancingStrategy[] = builtInStrategies()) {
    for (const strategy of builtIns) {
      this.strategies.set(strategy.name, strategy);
      this.builtIn.add(strategy.name);
    }
  }

  /**
   * Adds a user strategy, or replaces an earlier user strategy of the same
   * name. Built-in names cannot be taken over: configurations that say
   * `round_robin` keep meaning round robin.
   */
  register(strategy: BalancingStrategy): void {
    if (!strategy || typeof strategy !== 'object' || typeof strategy.build !== 'function') {
      throw ConfigurationError.single(
        'strategies',
        strategy,
        'an object with a name and a build(endpoints, context) function',
      );
    }
    const name: unknown = strategy.name;
    if (typeof name !== 'string' || !STRATEGY_NAME.test(name)) {
      throw ConfigurationError.single(
        'strategies[].name',
        name,
        'a name of letters, digits, "_", "-" or "." starting with a letter',
      );
    }
    if (this.builtIn.has(name) && this.strategies.get(name) !== strategy) {
      throw ConfigurationError.single(
        'strategies[].name',
        name,
        `a name not used by a built-in strategy (${[...this.builtIn].join(', ')})`,
      );
    }
    this.strategies.set(name, strategy);
  }

  /** Removes a user strategy; returns whether it was registered. Built-ins stay. */
  unregister(name: string): boolean {
    if (this.builtIn.has(name)) return false;
    return this.strategies.delete(name);
  }

  /** The strategy called `name`; throws a ConfigurationError listing the valid names otherwise. */
  get(name: string): BalancingStrategy {
    const strategy = this.strategies.get(name);
    if (strategy === undefined) {
      throw ConfigurationError.single('loadBalance', name, `one of ${this.names().join(', ')}`);
    }
    return strategy;
  }

  has(name: string): boolean {
    return this.strategies.has(name);
  }

  /** Every registered name, built-ins first. */
  names(): string[] {
    return [...this.strategies.keys()];
  }
}

/** The built-in strategies, read-only: user strategies belong to one Discovery (its `strategies` option). */
const builtIns = new StrategyRegistry();

/**
 * The built-in strategy called `name`; throws a ConfigurationError that lists the valid names.
 *
 * @example
 * const picker = getStrategy('round_robin').build(set.endpoints, { loads, random: Math.random });
 */
export function getStrategy(name: string): BalancingStrategy {
  return builtIns.get(name);
}

/**
 * Names of the built-in strategies.
 *
 * @example
 * resolveDiscoveryConfig(options, { extraStrategies: listStrategies() });
 */
export function listStrategies(): string[] {
  return builtIns.names();
}
