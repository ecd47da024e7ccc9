import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  createServiceInstance,
  EndpointSet,
  endpointKeyOf,
  endpointOf,
  type ServiceInstance,
} from '../../../lib/core/index.js';

// A snapshot built from the registry's diff (apply) must be the snapshot a
// full list would give (next): same endpoints in the same order, same
// diff, and lookups that find what is there.

const instance = (id: number, weight = 1, port = 50051): ServiceInstance =>
  createServiceInstance({ service: 'svc', id: `i-${id}`, address: `10.0.${id >> 8}.${id & 255}:${port}`, weight });

const view = (set: EndpointSet) => set.endpoints.map((e) => `${e.key}:${e.weight}`);
const keys = (endpoints: readonly { key: string }[]) => endpoints.map((e) => e.key).sort();

describe('EndpointSet built from diffs', () => {
  it('apply gives the snapshot next gives, with the same diff, after any sequence of changes', () => {
    const change = fc.record({
      ids: fc.uniqueArray(fc.integer({ min: 0, max: 60 }), { maxLength: 12 }),
      leave: fc.uniqueArray(fc.integer({ min: 0, max: 60 }), { maxLength: 12 }),
      weight: fc.integer({ min: 1, max: 3 }),
      moved: fc.boolean(),
    });
    fc.assert(
      fc.property(fc.array(change, { maxLength: 25 }), (changes) => {
        const live = new Map<number, ServiceInstance>();
        let full = EndpointSet.initial('svc');
        let fromDiffs = EndpointSet.initial('svc');
        for (const { ids, leave, weight, moved } of changes) {
          const upserted: ServiceInstance[] = [];
          const removed: string[] = [];
          for (const id of leave) {
            const gone = live.get(id);
            if (gone === undefined) continue;
            live.delete(id);
            removed.push(endpointKeyOf(gone));
          }
          for (const id of ids) {
            const before = live.get(id);
            // A moved instance changes address, so its key changes: the old endpoint leaves.
            const next = instance(id, weight, moved ? 50052 : 50051);
            if (before !== undefined && endpointKeyOf(before) !== endpointKeyOf(next))
              removed.push(endpointKeyOf(before));
            live.set(id, next);
            upserted.push(next);
          }
          const previousFull = full;
          full = full.next([...live.values()]);
          fromDiffs = fromDiffs.apply({ upserted: upserted.map((i) => endpointOf(i)), removed });
          expect(view(fromDiffs)).toEqual(view(full));
          expect(fromDiffs.state).toBe(full.state);
          if (full !== previousFull) {
            expect(keys(fromDiffs.diff.added)).toEqual(keys(full.diff.added));
            expect(keys(fromDiffs.diff.removed)).toEqual(keys(full.diff.removed));
            expect(keys(fromDiffs.diff.updated)).toEqual(keys(full.diff.updated));
          }
          for (const endpoint of full.endpoints) expect(fromDiffs.get(endpoint.key)?.weight).toBe(endpoint.weight);
          expect(fromDiffs.has('nobody@10.9.9.9:1')).toBe(false);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('diffFrom takes the chain diff between successors and computes it otherwise', () => {
    const s1 = EndpointSet.of('svc', [instance(1), instance(2), instance(3)]);
    const s2 = s1.apply({ upserted: [endpointOf(instance(4))], removed: [endpointKeyOf(instance(1))] });
    const s3 = s2.apply({ upserted: [endpointOf(instance(2, 5))] });
    expect(s2.diffFrom(s1)).toBe(s2.diff);
    // Two steps apart: computed by walking both sorted arrays.
    const across = s3.diffFrom(s1);
    expect(keys(across.added)).toEqual([endpointKeyOf(instance(4))]);
    expect(keys(across.removed)).toEqual([endpointKeyOf(instance(1))]);
    expect(across.updated.map((e) => e.weight)).toEqual([5]);
    // A filtered view is not its source's successor.
    const view = s3.filter((e) => e.weight === 1);
    expect(keys(view.diffFrom(s3).removed)).toEqual([endpointKeyOf(instance(2))]);
    expect(s3.diffFrom(s3).added).toHaveLength(0);
  });

  it('a key that leaves and comes back in one batch stays (updated only if it changed)', () => {
    const s1 = EndpointSet.of('svc', [instance(1), instance(2)]);
    const same = s1.apply({ removed: [endpointKeyOf(instance(1))], upserted: [endpointOf(instance(1))] });
    expect(same).toBe(s1);
    const changed = s1.apply({ removed: [endpointKeyOf(instance(1))], upserted: [endpointOf(instance(1, 7))] });
    expect(changed.diff).toMatchObject({ added: [], removed: [] });
    expect(changed.diff.updated.map((e) => e.weight)).toEqual([7]);
  });

  it('an empty result is `empty` unless told it is an `ok` set with nothing in it', () => {
    const s1 = EndpointSet.of('svc', [instance(1)]);
    expect(s1.apply({ removed: [endpointKeyOf(instance(1))] }).state).toBe('empty');
    expect(s1.apply({ removed: [endpointKeyOf(instance(1))] }, { emptyState: 'ok' })).toMatchObject({
      state: 'ok',
      size: 0,
    });
  });

  it('keeps 10,000 endpoints sorted through hundreds of small changes (each one a splice, not a sort)', () => {
    let set = EndpointSet.of(
      'svc',
      Array.from({ length: 10_000 }, (_, i) => instance(i)),
    );
    for (let step = 0; step < 300; step++) {
      set = set.apply({
        upserted: [endpointOf(instance(10_000 + step))],
        removed: [set.endpoints[(step * 7919) % set.size].key],
      });
    }
    expect(set.size).toBe(10_000);
    for (let i = 1; i < set.size; i++) expect(set.endpoints[i - 1].key < set.endpoints[i].key).toBe(true);
  });
});
