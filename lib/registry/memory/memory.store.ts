import { Subject } from 'rxjs';
import type { ServiceInstance } from '../../core/service-instance.js';

/**
 * A process-wide instance table shared by every `memory` registry that
 * names the same store: two Nest apps in one test process see each other.
 */
export class MemoryStore {
  private static readonly stores = new Map<string, MemoryStore>();
  private readonly instances = new Map<string, ServiceInstance>();
  private reachable = true;
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

  get isReachable(): boolean {
    return this.reachable;
  }

  /** Simulates an outage: watchers serve their last set as `stale`. */
  setReachable(reachable: boolean): void {
    if (this.reachable === reachable) return;
    this.reachable = reachable;
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
