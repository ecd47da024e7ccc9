// Moleculer's balancing strategies, driven without their broker: the peer
// rows of the pick table. Moleculer is an optional dev dependency, loaded
// lazily; without it every peer row says "not available".
import { createRequire } from 'node:module';

export const PEER_NAME = 'moleculer';

/** Our strategy each Moleculer strategy is compared with. */
export const MOLECULER_STRATEGIES = [
  { strategy: 'RoundRobin', versus: 'round_robin' },
  { strategy: 'Random', versus: 'random' },
  { strategy: 'Shard', versus: 'consistent_hash', keyed: true },
];

/** `{ Strategies, version }`, or `{ problem }` when moleculer cannot be loaded. */
export function loadMoleculer() {
  const require = createRequire(import.meta.url);
  try {
    const moleculer = require('moleculer');
    const Strategies = moleculer.Strategies ?? moleculer.default?.Strategies;
    if (!Strategies) return { problem: 'moleculer has no Strategies export' };
    let version = 'unknown';
    try {
      version = require('moleculer/package.json').version;
    } catch {
      // an exports map may hide package.json; the version is only informative
    }
    return { Strategies, version };
  } catch (error) {
    return { problem: error.code === 'MODULE_NOT_FOUND' ? 'not installed' : error.message };
  }
}

/**
 * The smallest broker and registry a Moleculer strategy constructor reads:
 * its local event bus (the shard strategy listens for node changes), a
 * logger, and its options.
 */
function brokerStub() {
  const quiet = { trace() {}, debug() {}, info() {}, warn() {}, error() {}, fatal() {} };
  const broker = {
    nodeID: 'bench',
    options: {},
    Promise,
    localBus: { on() {}, off() {}, once() {} },
    getLogger: () => quiet,
  };
  return { broker, registry: { broker, opts: {}, logger: quiet } };
}

/**
 * A picker over Moleculer's `strategy` ('RoundRobin', 'Random', 'Shard') for
 * `endpoints`: `{ select(list, ctx), list, contextFor(key), rebuild? }`. The
 * list holds Moleculer-shaped endpoints (`{ id, local, state }`); the shard
 * key travels in `ctx.meta.key`, its documented `#` form.
 */
export function moleculerPicker(Strategies, strategy, endpoints) {
  const Ctor = Strategies[strategy];
  if (typeof Ctor !== 'function') throw new Error(`moleculer has no ${strategy} strategy`);
  const { broker, registry } = brokerStub();
  const options = strategy === 'Shard' ? { shardKey: '#key' } : {};
  const instance = new Ctor(registry, broker, options);
  const list = endpoints.map((e) => ({ id: e.instance.id, local: false, state: true, available: true }));
  const ctx = { meta: { key: undefined }, params: {} };
  return {
    instance,
    list,
    ctx,
    select: (l, c) => instance.select(l, c),
    rebuild: typeof instance.rebuild === 'function' ? (l) => instance.rebuild(l) : undefined,
  };
}
