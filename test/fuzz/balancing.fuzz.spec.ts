import fc from 'fast-check';
import { describe, expect } from 'vitest';
import {
  builtInStrategies,
  ConsistentHashStrategy,
  InvalidWeightError,
  LoadTracker,
  onCallEnd,
  onCallStart,
  type BalancingStrategy,
  type Picker,
} from '../../lib/balancing/index.js';
import {
  createServiceInstance,
  DiscoveryError,
  endpointOf,
  EndpointSet,
  type Endpoint,
  type ServiceInstance,
} from '../../lib/core/index.js';
import { reliabilityTest, ResultsFile, type ResultSpec } from '../faults/support/reliability-results.js';
import { fuzzParameters } from './support/fuzz-settings.js';
import { mulberry32 } from '../unit/balancing/support/balancing-fixtures.js';

const results = new ResultsFile('fuzz-balancing');
const spec = (scenario: string, title: string, asserted: string): ResultSpec => ({
  suite: 'fuzz',
  scenario,
  title,
  backend: 'any',
  asserted,
});

// Small tables keep consistent-hash builds cheap; the invariants do not depend on the size.
const STRATEGIES: BalancingStrategy[] = [
  ...builtInStrategies().filter((s) => s.name !== 'consistent_hash'),
  new ConsistentHashStrategy({ tableSize: 1_009 }),
  new ConsistentHashStrategy({ name: 'bounded_hash', boundedLoadFactor: 1.25, tableSize: 1_009 }),
];
const WEIGHTED = new Set(['weighted_round_robin', 'weighted_random', 'consistent_hash', 'bounded_hash']);

/** Endpoints with unique ids and addresses, any positive weights. */
const endpointList = (min: number, max: number) =>
  fc
    .uniqueArray(fc.tuple(fc.stringMatching(/^[a-z0-9-]{1,8}$/), fc.integer({ min: 1, max: 65535 })), {
      minLength: min,
      maxLength: max,
      selector: ([id]) => id,
    })
    .chain((entries) =>
      fc
        .array(fc.oneof(fc.integer({ min: 1, max: 100 }), fc.double({ min: 0.001, max: 1_000, noNaN: true })), {
          minLength: entries.length,
          maxLength: entries.length,
        })
        .map((weights) =>
          entries.map(([id, port], i) =>
            endpointOf(
              createServiceInstance({
                service: 'svc',
                id,
                address: `10.0.${i >> 8}.${i & 255}:${port}`,
                weight: weights[i],
              }),
            ),
          ),
        ),
    );

/** One step of simulated traffic: a pick with or without a key, and maybe the end of an earlier call. */
const step = fc.record({
  key: fc.option(fc.string({ maxLength: 6 }), { nil: undefined }),
  finish: fc.boolean(),
  latencyMs: fc.integer({ min: 0, max: 500 }),
});

function build(
  strategy: BalancingStrategy,
  endpoints: readonly Endpoint[],
  loads: LoadTracker,
  seed: number,
  previous?: Picker,
): Picker {
  return strategy.build(endpoints, { loads, random: mulberry32(seed), previous });
}

describe('fuzz: balancing invariants', () => {
  reliabilityTest(
    results,
    spec(
      'balancing-picks-from-set',
      'balancing: picks only from the set',
      'every strategy, for any endpoint set, weights and traffic (keys, calls in flight, latencies, membership changes), returns only endpoints of the current set, and nothing for an empty set',
    ),
    (details) => {
      let picks = 0;
      fc.assert(
        fc.property(
          fc.constantFrom(...STRATEGIES),
          fc.array(endpointList(0, 12), { minLength: 1, maxLength: 3 }),
          fc.array(step, { maxLength: 40 }),
          fc.nat(),
          (strategy, snapshots, steps, seed) => {
            const loads = new LoadTracker();
            let previous: Picker | undefined;
            let clock = 0;
            for (const endpoints of snapshots) {
              const picker = build(strategy, endpoints, loads, seed, previous);
              previous = picker;
              loads.retain(endpoints);
              const members = new Set(endpoints);
              const open: Endpoint[] = [];
              for (const { key, finish, latencyMs } of steps) {
                const endpoint = picker.pick({ key });
                picks++;
                if (endpoints.length === 0) {
                  expect(endpoint).toBeUndefined();
                  continue;
                }
                expect(endpoint !== undefined && members.has(endpoint)).toBe(true);
                onCallStart(loads.load(endpoint!));
                open.push(endpoint!);
                if (finish && open.length) {
                  clock += latencyMs;
                  onCallEnd(loads.load(open.shift()!), latencyMs, clock);
                }
              }
              for (const e of open) onCallEnd(loads.load(e), 1, ++clock);
              expect(loads.totalInFlight()).toBe(0);
            }
          },
        ),
        fuzzParameters(0xba11, 300),
      );
      details.picks = picks;
    },
  );

  reliabilityTest(
    results,
    spec(
      'balancing-consistent-hash',
      'balancing: consistent hash is consistent',
      'the same key always maps to the same endpoint, in any picker built from the same set (any order, any random seed), so every client agrees',
    ),
    () => {
      fc.assert(
        fc.property(
          endpointList(1, 20),
          fc.array(fc.string({ minLength: 1, maxLength: 10 }), { minLength: 1, maxLength: 30 }),
          fc.nat(),
          fc.nat(),
          (endpoints, keys, seedA, seedB) => {
            const strategy = STRATEGIES.find((s) => s.name === 'consistent_hash')!;
            const a = build(strategy, endpoints, new LoadTracker(), seedA);
            const b = build(strategy, [...endpoints].reverse(), new LoadTracker(), seedB);
            for (const key of keys) {
              const first = a.pick({ key });
              expect(a.pick({ key })).toBe(first);
              expect(b.pick({ key })?.key).toBe(first?.key);
            }
          },
        ),
        fuzzParameters(0xba12, 150),
      );
    },
  );

  reliabilityTest(
    results,
    spec(
      'balancing-positive-weights',
      'balancing: weights must be > 0 to be picked',
      'instances with a weight below zero, NaN or Infinity are refused (0 is accepted: a drain marker, never served by the client), and weighted strategies refuse endpoints with any of these weights, 0 included, by name',
    ),
    () => {
      const bad = fc.oneof(
        fc.constantFrom(0, -0, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY),
        fc.double({ max: 0, noNaN: true }),
      );
      fc.assert(
        fc.property(bad, endpointList(1, 5), fc.nat(), (weight, endpoints, at) => {
          const make = () => createServiceInstance({ service: 'svc', address: '10.0.0.1:1', weight });
          if (weight === 0) expect(make().weight).toBe(0);
          else expect(make).toThrow(DiscoveryError);
          // An endpoint that bypassed validation (hand-built, or a faulty decoder).
          const victim = at % endpoints.length;
          const tampered = endpoints.map((e, i) => (i === victim ? Object.freeze({ ...e, weight }) : e));
          for (const strategy of STRATEGIES.filter((s) => WEIGHTED.has(s.name))) {
            expect(() => build(strategy, tampered, new LoadTracker(), 1)).toThrow(InvalidWeightError);
          }
        }),
        fuzzParameters(0xba13, 100),
      );
    },
  );

  reliabilityTest(
    results,
    spec(
      'balancing-round-robin-fair',
      'balancing: round robin shares exactly',
      'over whole cycles, round_robin gives each endpoint the same number of picks and weighted_round_robin gives integer weights exactly their share',
    ),
    () => {
      fc.assert(
        fc.property(
          fc.array(fc.integer({ min: 1, max: 12 }), { minLength: 1, maxLength: 8 }),
          fc.integer({ min: 1, max: 3 }),
          fc.nat(),
          (weights, cycles, seed) => {
            const endpoints = weights.map((weight, i) =>
              endpointOf(createServiceInstance({ service: 'svc', id: `e${i}`, address: `10.0.0.${i + 1}:80`, weight })),
            );
            const count = (strategy: string, picks: number) => {
              const picker = build(
                STRATEGIES.find((s) => s.name === strategy)!,
                endpoints,
                new LoadTracker(),
                seed,
              );
              const counts = new Map<string, number>();
              for (let i = 0; i < picks; i++) {
                const e = picker.pick()!;
                counts.set(e.key, (counts.get(e.key) ?? 0) + 1);
              }
              return counts;
            };
            const rr = count('round_robin', endpoints.length * cycles);
            for (const e of endpoints) expect(rr.get(e.key)).toBe(cycles);
            const total = weights.reduce((a, b) => a + b, 0);
            const wrr = count('weighted_round_robin', total * cycles);
            endpoints.forEach((e, i) => expect(wrr.get(e.key) ?? 0).toBe(weights[i] * cycles));
          },
        ),
        fuzzParameters(0xba14, 200),
      );
    },
  );

  reliabilityTest(
    results,
    spec(
      'balancing-endpoint-set',
      'endpoint sets: snapshots stay consistent',
      'for any sequence of registry answers, each snapshot is sorted with unique keys, its diff matches the previous one, unchanged answers emit nothing, and stale keeps the endpoints',
    ),
    () => {
      const instance = fc
        .record({
          id: fc.constantFrom('a', 'b', 'c', 'd', 'e'),
          port: fc.constantFrom(1, 2),
          weight: fc.constantFrom(1, 2),
          zone: fc.constantFrom(undefined, 'z1'),
        })
        .map(({ id, port, weight, zone }) =>
          createServiceInstance({
            service: 'svc',
            id,
            address: `10.0.0.1:${port}`,
            weight,
            metadata: zone ? { zone } : {},
          }),
        );
      fc.assert(
        fc.property(
          fc.array(
            fc.oneof(
              { weight: 5, arbitrary: fc.array(instance, { maxLength: 6 }) },
              { weight: 1, arbitrary: fc.constant('stale' as const) },
            ),
            { minLength: 1, maxLength: 12 },
          ),
          (answers) => {
            let set = EndpointSet.initial('svc');
            for (const answer of answers) {
              const before = set;
              if (answer === 'stale') {
                set = set.stale('registry unreachable: fuzz');
                expect(set.endpoints).toBe(before.endpoints);
                expect(set.state).toBe('stale');
                continue;
              }
              set = set.next(answer);
              const keys = set.endpoints.map((e) => e.key);
              expect(new Set(keys).size).toBe(keys.length);
              expect([...keys].sort()).toEqual(keys);
              expect(set.state).toBe(set.size === 0 ? 'empty' : 'ok');
              const wanted = new Set(answer.map((i: ServiceInstance) => `${i.id}@${i.address}`));
              expect(new Set(keys)).toEqual(wanted);
              if (set === before) continue;
              expect(set.revision).toBe(before.revision + 1);
              for (const e of set.diff.added) expect(before.has(e.key)).toBe(false);
              for (const e of set.diff.removed) expect(set.has(e.key)).toBe(false);
              for (const e of set.diff.updated) expect(before.has(e.key) && set.has(e.key)).toBe(true);
              // The same answer again changes nothing.
              expect(set.next(answer)).toBe(set);
            }
          },
        ),
        fuzzParameters(0xba15, 500),
      );
    },
  );
});
