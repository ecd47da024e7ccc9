import type { Endpoint } from '../core/endpoint.js';
import { hashString } from '../balancing/string-hash.js';
import { advance, seedFrom, unitAt } from '../balancing/picker-random.js';
import type { PickContext, Picker } from '../balancing/picker.js';

/** Where the calling app runs: its zone and region (either may be unknown). */
export interface Locality {
  zone: string | undefined;
  region: string | undefined;
}

/**
 * The priority level of an endpoint for a caller (0 is served first): an
 * explicit integer in the instance tag `tag` wins; otherwise 0 in the
 * caller's zone, 1 in its region, 2 elsewhere. With no locality and no tag,
 * everything is level 0.
 */
export function priorityOf(endpoint: Endpoint, locality: Locality, tag: string): number {
  const explicit = endpoint.instance.tags[tag];
  if (explicit !== undefined && /^\d{1,3}$/.test(explicit)) return Number(explicit);
  if (locality.zone === undefined && locality.region === undefined) return 0;
  const metadata = endpoint.instance.metadata;
  const sameRegion = locality.region === undefined || metadata.region === locality.region;
  if (locality.zone !== undefined && metadata.zone === locality.zone && sameRegion) return 0;
  if (locality.region !== undefined && sameRegion) return locality.zone === undefined ? 0 : 1;
  return locality.zone === undefined ? 1 : 2;
}

/**
 * Envoy's priority load: each level's health is `min(1, factor × healthy /
 * total)`; the highest level takes as much traffic as its health, the next
 * the rest up to its own health, and so on. When the levels' health sums to
 * less than 1, the loads are normalised so that all traffic still goes
 * somewhere. Returns one share per level (summing to 1, or all 0).
 *
 * @example
 * priorityLoads([{ healthy: 2, total: 4 }, { healthy: 4, total: 4 }], 1.4); // [0.7, 0.3]
 */
export function priorityLoads(levels: ReadonlyArray<{ healthy: number; total: number }>, factor: number): number[] {
  const health = levels.map(({ healthy, total }) => (total > 0 ? Math.min(1, (factor * healthy) / total) : 0));
  const loads: number[] = [];
  let remaining = 1;
  for (const h of health) {
    const load = Math.min(remaining, h);
    loads.push(load);
    remaining -= load;
  }
  const sum = loads.reduce((a, b) => a + b, 0);
  return sum > 0 && sum < 1 ? loads.map((l) => l / sum) : loads;
}

/**
 * Picks a priority level by its share of the traffic, then an endpoint in it
 * with the level's own picker. Keyed picks choose the level from the key's
 * hash, so a key stays in one level while the shares hold.
 */
export class PriorityPicker implements Picker {
  private state: number;

  constructor(
    private readonly pickers: readonly Picker[],
    /** Cumulative shares, the last one 1. */
    private readonly cumulative: Float64Array,
    random: () => number,
  ) {
    this.state = seedFrom(random);
  }

  pick(context?: PickContext): Endpoint | undefined {
    let u: number;
    if (context?.key !== undefined) u = hashString(context.key, 0x9e3779b9) / 4294967296;
    else {
      this.state = advance(this.state);
      u = unitAt(this.state);
    }
    const cumulative = this.cumulative;
    let level = 0;
    while (level < cumulative.length - 1 && u >= cumulative[level]) level++;
    return this.pickers[level].pick(context) ?? this.firstAnswer(context);
  }

  private firstAnswer(context?: PickContext): Endpoint | undefined {
    for (const picker of this.pickers) {
      const endpoint = picker.pick(context);
      if (endpoint !== undefined) return endpoint;
    }
    return undefined;
  }
}
