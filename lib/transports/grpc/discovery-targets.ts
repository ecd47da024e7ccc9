import { BehaviorSubject } from 'rxjs';
import type { ServiceClient } from '../../client/service-client.js';

/** What the `discovery:` resolver needs from a configured Discovery. */
export interface DiscoveryTarget {
  /** The client configured for a service name (its declared options, else the defaults); its retry policy goes to grpc-js. */
  clientFor(service: string): ServiceClient;
  /** Metadata header carrying the consistent-hash key. */
  readonly hashHeader: string;
  /** How long a channel waits for the first endpoint set before failing calls UNAVAILABLE, ms. */
  readonly firstSetTimeoutMs: number;
}

/**
 * Process-wide table of Discovery instances reachable from grpc-js targets:
 * `discovery:///orders` uses the default one (the Nest module's), and
 * `discovery://<name>/orders` a named one.
 */
class DiscoveryTargetTable {
  readonly changes$ = new BehaviorSubject<void>(undefined);
  private readonly targets = new Map<string, DiscoveryTarget[]>();

  /** Adds a target under `name` ('' = default); returns the function that removes it. */
  add(name: string, target: DiscoveryTarget): () => void {
    const list = this.targets.get(name) ?? [];
    list.push(target);
    this.targets.set(name, list);
    this.changes$.next();
    return () => {
      const current = this.targets.get(name) ?? [];
      const index = current.indexOf(target);
      if (index >= 0) current.splice(index, 1);
      if (!current.length) this.targets.delete(name);
      this.changes$.next();
    };
  }

  /** The most recently added target of that name. */
  get(name: string): DiscoveryTarget | undefined {
    const list = this.targets.get(name);
    return list?.[list.length - 1];
  }
}

export const discoveryTargets = new DiscoveryTargetTable();
