import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { EndpointSet } from '../../../../lib/core/endpoint-set.js';
import { instanceListChanges } from '../../../../lib/core/instance-list-changes.js';
import { createServiceInstance, type ServiceInstance } from '../../../../lib/core/service-instance.js';
import { EndpointSetPublisher } from '../../../../lib/registry/shared/endpoint-set-publisher.js';

/** A pool of instances: ids 0-19, some with two distinct objects of equal content, some with a second weight. */
const pool: ServiceInstance[][] = Array.from({ length: 20 }, (_, i) => {
  const make = (weight: number) =>
    createServiceInstance({ service: 's', id: `i${i}`, address: `10.0.0.${i}:80`, weight });
  return [make(1), make(1), make(2)];
});

/** What a set serves, by value: key, weight and instance id per endpoint, in order. */
const served = (set: EndpointSet) => set.endpoints.map((e) => `${e.key}/${e.weight}`);
const diffOf = (set: EndpointSet) => ({
  added: set.diff.added.map((e) => e.key).sort(),
  removed: set.diff.removed.map((e) => e.key).sort(),
  updated: set.diff.updated.map((e) => e.key).sort(),
});

describe('EndpointSetPublisher.publishReusing: lists compared by position and identity', () => {
  it('publishes, for any sequence of lists, the sets and diffs a diff by key gives', () => {
    // Each step edits the last list: keep, drop, insert, move, swap in an equal copy or a changed
    // instance, or repeat an instance's key (the first of a repeated key wins).
    const edit = fc.record({
      op: fc.constantFrom('keep', 'drop', 'insert', 'move', 'copy', 'change', 'repeat', 'fresh'),
      at: fc.nat(40),
      to: fc.nat(40),
      pick: fc.nat(19),
    });
    fc.assert(
      fc.property(fc.array(fc.array(edit, { maxLength: 6 }), { minLength: 1, maxLength: 12 }), (steps) => {
        const fast = new EndpointSetPublisher('s');
        let byKey = fast.latest;
        let list: ServiceInstance[] = pool.slice(0, 10).map((variants) => variants[0]);
        for (const edits of [[], ...steps]) {
          list = list.slice();
          for (const { op, at, to, pick } of edits) {
            const i = list.length ? at % list.length : 0;
            if (op === 'drop' && list.length) list.splice(i, 1);
            else if (op === 'insert') list.splice(i, 0, pool[pick][0]);
            else if (op === 'move' && list.length) list.splice(to % list.length, 0, ...list.splice(i, 1));
            else if (op === 'copy' && list.length) list[i] = pool[Number(list[i].id.slice(1))][1];
            else if (op === 'change' && list.length) list[i] = pool[Number(list[i].id.slice(1))][2];
            else if (op === 'repeat' && list.length) list.splice(to % (list.length + 1), 0, list[i]);
            else if (op === 'fresh') list.splice(i, 0, pool[pick][2]);
          }
          const before = fast.latest;
          fast.publishReusing(list);
          const expected = byKey.next(list);
          expect(served(fast.latest)).toEqual(served(expected));
          if (expected !== byKey) expect(diffOf(fast.latest)).toEqual(diffOf(expected));
          else expect(fast.latest).toBe(before);
          byKey = expected;
        }
      }),
      { numRuns: 300 },
    );
  });

  it('finds ten replacements, or 40 left from the front, in a list of 1,000, and gives up past its limit', () => {
    const list = Array.from({ length: 1_000 }, (_, i) =>
      createServiceInstance({ service: 's', id: `e${i}`, address: `10.1.${i >> 8}.${i & 255}:80` }),
    );
    const next = list.slice();
    for (let k = 0; k < 10; k++)
      next[k * 97] = createServiceInstance({ service: 's', id: `n${k}`, address: `10.2.0.${k}:80` });
    next.splice(500, 3);
    const changes = instanceListChanges(list, next, 250)!;
    expect(changes.added.map((i) => i.id)).toEqual(Array.from({ length: 10 }, (_, k) => `n${k}`));
    expect(changes.removed).toHaveLength(13);
    expect(instanceListChanges(list, next, 20)).toBeUndefined();
    // The oldest 40 leave from the front and 40 join at the end: 80 changes, not 1,000.
    const fifo = [...list.slice(40), ...next.slice(0, 40).map((i) => ({ ...i, id: `f-${i.id}` }))];
    const shifted = instanceListChanges(list, fifo, 250)!;
    expect(shifted.removed).toEqual(list.slice(0, 40));
    expect(shifted.added).toEqual(fifo.slice(960));
  });
});
