import type { Endpoint } from '../core/endpoint.js';
import type { EndpointSet } from '../core/endpoint-set.js';
import { MinuteCounter } from './minute-counter.js';

interface Activity {
  address: string;
  count: number;
  lastMinute: MinuteCounter;
  failures: MinuteCounter;
}

/**
 * Picks and failures per endpoint, counted on the call path without touching
 * metric objects (O(1), no allocation once an endpoint was seen): what the
 * admin view and the picks metric read. Kept as long as the registry lists
 * the endpoint, so one that is out of service for a while keeps its count.
 */
export class EndpointActivity {
  private readonly byKey = new Map<string, Activity>();
  private lastSet: EndpointSet | undefined;

  picked(endpoint: Endpoint): void {
    const activity = this.of(endpoint);
    activity.count++;
    activity.lastMinute.add();
  }

  failed(endpoint: Endpoint): void {
    this.of(endpoint).failures.add();
  }

  /** Picks so far per endpoint address. */
  counts(): Map<string, number> {
    const out = new Map<string, number>();
    for (const { address, count } of this.byKey.values()) out.set(address, (out.get(address) ?? 0) + count);
    return out;
  }

  /** Picks and failures in the last minute. */
  recent(key: string): { picks: number; failures: number } {
    const activity = this.byKey.get(key);
    return { picks: activity?.lastMinute.total() ?? 0, failures: activity?.failures.total() ?? 0 };
  }

  /** Forgets endpoints the registry no longer lists (from the set's diff against the last one seen). */
  retain(set: EndpointSet): void {
    const last = this.lastSet;
    this.lastSet = set;
    if (this.byKey.size === 0) return;
    // A full pass when there is nothing to diff against, or when records outnumber the set (a pick
    // counted on an endpoint after it left is never in a later diff).
    if (last === undefined || this.byKey.size > set.size + 16) {
      for (const key of this.byKey.keys()) if (!set.has(key)) this.byKey.delete(key);
      return;
    }
    for (const endpoint of set.diffFrom(last).removed) this.byKey.delete(endpoint.key);
  }

  private of(endpoint: Endpoint): Activity {
    let activity = this.byKey.get(endpoint.key);
    if (activity === undefined) {
      activity = {
        address: endpoint.address,
        count: 0,
        lastMinute: new MinuteCounter(),
        failures: new MinuteCounter(),
      };
      this.byKey.set(endpoint.key, activity);
    }
    return activity;
  }
}
