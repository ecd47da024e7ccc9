import type { ServiceInstance } from './service-instance.js';

/** What differs between two lists of instances, by object identity. */
export interface InstanceListChanges {
  /** Instance objects of `next` that are not at their place in `previous` (new, changed or moved). */
  readonly added: ServiceInstance[];
  /** Instance objects of `previous` not found at their place in `next`. */
  readonly removed: ServiceInstance[];
}

/**
 * The changes from `previous` to `next`, found by walking both lists side
 * by side and comparing instance objects by identity: O(n), with no key
 * built. Meant for backends that hand over the same instance objects for
 * what did not change, in the same order (the mesh backend's
 * ClusterLoadAssignment, where 1 % churn re-sends 99 % unchanged
 * endpoints). At the first mismatch an index of `previous` by object is
 * made, and the walk continues from where the item sits in it (past
 * removals, wherever they are); an object found behind the walk (it moved)
 * counts as removed and added, which the caller's `apply` nets out.
 * Undefined once more than `limit` changes were seen: the caller diffs by
 * key instead.
 *
 * @example
 * const changes = instanceListChanges(lastList, list, list.length / 4);
 */
export function instanceListChanges(
  previous: readonly ServiceInstance[],
  next: readonly ServiceInstance[],
  limit: number,
): InstanceListChanges | undefined {
  const added: ServiceInstance[] = [];
  const removed: ServiceInstance[] = [];
  let index: Map<ServiceInstance, number> | undefined;
  let j = 0;
  for (let i = 0; i < next.length; i++) {
    const item = next[i];
    if (j < previous.length && item === previous[j]) {
      j++;
      continue;
    }
    if (index === undefined) {
      index = new Map();
      for (let k = 0; k < previous.length; k++) index.set(previous[k], k);
    }
    const at = index.get(item);
    if (at !== undefined && at >= j) {
      while (j < at) removed.push(previous[j++]);
      j++;
    } else added.push(item);
    if (added.length + removed.length > limit) return undefined;
  }
  while (j < previous.length) removed.push(previous[j++]);
  return added.length + removed.length > limit ? undefined : { added, removed };
}
