import { Observable, Subject } from 'rxjs';
import { compileQuery, type DiscoveryQuery } from '../../core/discovery-query.js';
import { EndpointSet } from '../../core/endpoint-set.js';
import { ClosedError, RegistrationError } from '../../core/errors.js';
import type { ServiceInstance } from '../../core/service-instance.js';
import type { BackendFactory } from '../backend-context.js';
import type { Registration, RegistrationEvent, RegistrationTiming, Registry } from '../registry.interface.js';
import { MemoryStore } from './memory.store.js';

/**
 * The `memory` backend: one process, no I/O. For tests and for examples;
 * registrations live until deregistered or the registry is closed.
 *
 * @example
 * const registry = new MemoryRegistry(); // or DiscoveryFactory.createBackend({ backend: 'memory' })
 */
export class MemoryRegistry implements Registry {
  readonly backend = 'memory';
  readonly readOnly = false;
  private readonly registrations = new Set<MemoryRegistration>();
  private closed = false;

  constructor(readonly store: MemoryStore = MemoryStore.named()) {}

  async register(instance: ServiceInstance, _timing?: RegistrationTiming): Promise<Registration> {
    if (this.closed) throw new ClosedError('memory registry is closed');
    const existing = this.store.get(instance.id);
    if (existing) {
      throw new RegistrationError(
        `Instance id '${instance.id}' is already registered (service '${existing.service}' at ${existing.address})`,
      );
    }
    const registration = new MemoryRegistration(instance, this.store, () => this.registrations.delete(registration));
    this.registrations.add(registration);
    this.store.put(instance);
    return registration;
  }

  watch(query: DiscoveryQuery): Observable<EndpointSet> {
    const compiled = compileQuery(query);
    return new Observable<EndpointSet>((subscriber) => {
      let current = EndpointSet.initial(query.service);
      const emit = () => {
        const next = this.store.isReachable
          ? current.next(this.store.list().filter(compiled.matches))
          : current.stale('memory store marked unreachable');
        if (next !== current || next.revision === 0) {
          current = next;
          subscriber.next(current);
        }
      };
      emit();
      const subscription = this.store.changes$.subscribe(emit);
      return () => subscription.unsubscribe();
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.registrations].map((r) => r.deregister()));
  }
}

class MemoryRegistration implements Registration {
  private readonly events = new Subject<RegistrationEvent>();
  readonly events$ = this.events.asObservable();
  private active = true;

  constructor(
    public instance: ServiceInstance,
    private readonly store: MemoryStore,
    private readonly onDone: () => void,
  ) {}

  async heartbeat(): Promise<void> {
    if (!this.active) return;
    if (!this.store.get(this.instance.id)) {
      // Someone removed us behind our back: put it back and say so.
      this.events.next({
        type: 'lost',
        instance: this.instance,
        reason: 'instance missing from the store',
        at: Date.now(),
      });
      this.store.put(this.instance);
      this.events.next({ type: 'restored', instance: this.instance, at: Date.now() });
    }
  }

  async update(instance: ServiceInstance): Promise<void> {
    if (instance.id !== this.instance.id)
      throw new RegistrationError(`update must keep instance id '${this.instance.id}' (got '${instance.id}')`);
    this.instance = instance;
    if (this.active) this.store.put(instance);
  }

  async deregister(): Promise<void> {
    if (!this.active) return;
    this.active = false;
    this.store.delete(this.instance.id);
    this.events.complete();
    this.onDone();
  }
}

export const createRegistry: BackendFactory = ({ config }) =>
  new MemoryRegistry(MemoryStore.named(config.backendConfig.store));
