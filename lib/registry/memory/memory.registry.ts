import type { Observable, Subscription } from 'rxjs';
import { compileQuery, type DiscoveryQuery } from '../../core/discovery-query.js';
import type { EndpointSet } from '../../core/endpoint-set.js';
import { ClosedError, RegistrationError } from '../../core/errors.js';
import type { ServiceInstance } from '../../core/service-instance.js';
import { configFor, type BackendFactory } from '../backend-context.js';
import type { Registration, RegistrationTiming, Registry } from '../registry.interface.js';
import { EndpointWatches } from '../shared/endpoint-watches.js';
import { ReachabilityTracker } from '../shared/reachability.js';
import { RegistrationBase } from '../shared/registration-base.js';
import { MEMORY_STORE_UNREACHABLE, MemoryStore } from './memory.store.js';

/** Registrations in memory have no TTL; a timing is only needed by the base class. */
const NO_TIMING: RegistrationTiming = { ttlMs: 90_000, heartbeatMs: 30_000 };

/**
 * The `memory` backend: one process, no I/O. For tests and for examples;
 * registrations live until deregistered or the registry is closed. Its
 * reachability is its store's (`MemoryStore.setReachable`).
 *
 * @example
 * const registry = new MemoryRegistry(); // or DiscoveryFactory.createBackend({ backend: 'memory' })
 */
export class MemoryRegistry implements Registry {
  readonly backend = 'memory';
  readonly readOnly = false;
  readonly reachability: ReachabilityTracker;
  private readonly registrations = new Set<MemoryRegistration>();
  private readonly watches = new EndpointWatches();
  private readonly mirror: Subscription;

  constructor(readonly store: MemoryStore = MemoryStore.named()) {
    this.reachability = new ReachabilityTracker(async () => {
      const state = store.reachability.current;
      if (!state.reachable) throw new Error(state.reason ?? MEMORY_STORE_UNREACHABLE);
    });
    this.mirror = store.reachability.state$.subscribe((state) => {
      if (state.reachable) this.reachability.reachable();
      else this.reachability.unreachable(state.reason ?? MEMORY_STORE_UNREACHABLE);
    });
  }

  async register(instance: ServiceInstance, timing?: RegistrationTiming): Promise<Registration> {
    if (this.watches.isClosed) throw new ClosedError('memory registry is closed');
    const existing = this.store.get(instance.id);
    if (existing) {
      throw new RegistrationError(
        `Instance id '${instance.id}' is already registered (service '${existing.service}' at ${existing.address})`,
      );
    }
    const registration = new MemoryRegistration(instance, timing ?? NO_TIMING, this.store, () =>
      this.registrations.delete(registration),
    );
    this.registrations.add(registration);
    this.store.put(instance);
    return registration;
  }

  watch(query: DiscoveryQuery): Observable<EndpointSet> {
    const compiled = compileQuery(query);
    return this.watches.stream(query.service, (publisher) => {
      const render = () => {
        const { reachable, reason } = this.store.reachability.current;
        if (reachable) publisher.publish(this.store.list().filter(compiled.matches));
        else publisher.publishStale(reason ?? MEMORY_STORE_UNREACHABLE);
      };
      render();
      const subscription = this.store.changes$.subscribe(render);
      return () => subscription.unsubscribe();
    });
  }

  /** Ends every watch and removes every instance this registry registered (memory has no TTL to expire them). */
  async close(): Promise<void> {
    this.watches.close();
    await Promise.all([...this.registrations].map((r) => r.deregister()));
    this.mirror.unsubscribe();
    this.reachability.close();
  }
}

/** One instance in a memory store; a heartbeat puts it back if someone removed it. */
class MemoryRegistration extends RegistrationBase {
  constructor(
    instance: ServiceInstance,
    timing: RegistrationTiming,
    private readonly store: MemoryStore,
    onEnd: () => void,
  ) {
    super(instance, timing, { onEnd });
  }

  protected async refresh(): Promise<void> {
    if (this.store.get(this.current.id)) return;
    // Someone removed us behind our back: put it back and say so.
    this.markLost('instance missing from the store');
    this.store.put(this.current);
    this.markRestored();
  }

  protected async write(instance: ServiceInstance): Promise<void> {
    this.current = instance;
    if (this.active) this.store.put(instance);
  }

  protected async remove(): Promise<void> {
    this.store.delete(this.current.id);
  }
}

export const createRegistry: BackendFactory = ({ config }) =>
  new MemoryRegistry(MemoryStore.named(configFor(config, 'memory').backendConfig.store));
