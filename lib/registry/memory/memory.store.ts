import { Subject } from 'rxjs';
import type { ServiceInstance } from '../../core/service-instance.js';
import { ReachabilityTracker } from '../shared/reachability.js';

/** Why watchers of an unreachable memory store serve their last set as `stale`. */
export const MEMORY_STORE_UNREACHABLE = 'memory store marked unreachable';

/**
 * A process-wide instance table shared by every `memory` registry that
 * names the same store: two Nest apps in one test process see each other.
 * `setReachable(false)` simulates an outage of the "server".
 */
export class MemoryStore {
  private static readonly stores = new Map<string, MemoryStore>();
  private readonly instances = new Map<string, ServiceInstance>();
  /** Whether the store "answers"; every registry on it reports this as its own reachability. */
  readonly reachability = new ReachabilityTracker();
  /** Fires after every change (and reachability flip). */
  readonly changes$ = new Subject<void>();

  static named(name = 'default'): MemoryStore {
    let store = MemoryStore.stores.get(name);
    if (!store) MemoryStore.stores.set(name, (store = new MemoryStore()));
    return store;
  }

  /** Drops a named store (tests call it between cases). */
  static reset(name = 'default'): void {
    MemoryStore.stores.delete(name);
  }

  /** Simulates an outage: watchers serve their last set as `stale`, and reachability says why. */
  setReachable(reachable: boolean, reason = MEMORY_STORE_UNREACHABLE): void {
    if (this.reachability.current.reachable === reachable) return;
    if (reachable) this.reachability.reachable();
    else this.reachability.unreachable(reason);
    this.changes$.next();
  }

  get(id: string): ServiceInstance | undefined {
    return this.instances.get(id);
  }

  list(): ServiceInstance[] {
    return [...this.instances.values()];
  }

  put(instance: ServiceInstance): void {
    this.instances.set(instance.id, instance);
    this.changes$.next();
  }

  delete(id: string): boolean {
    const had = this.instances.delete(id);
    if (had) this.changes$.next();
    return had;
  }
}
