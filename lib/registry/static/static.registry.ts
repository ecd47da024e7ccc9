import { Observable, type Subscriber } from 'rxjs';
import { compileQuery, type DiscoveryQuery } from '../../core/discovery-query.js';
import { EndpointSet } from '../../core/endpoint-set.js';
import { NotSupportedError } from '../../core/errors.js';
import type { ServiceInstance } from '../../core/service-instance.js';
import type { BackendFactory } from '../backend-context.js';
import type { Registration, Registry } from '../registry.interface.js';
import { parseStaticAddresses, staticInstances } from './static-instances.js';

export { parseStaticAddresses, staticInstanceId, staticInstances } from './static-instances.js';

/**
 * The `static` backend: a fixed list of `host:port` addresses, served as
 * instances of whichever service is asked for. Read-only: `register`
 * rejects with {@link NotSupportedError}. `watch` emits once and then stays
 * silent; nothing is polled, so there are no timers.
 *
 * The addresses carry no version and no tags, so version and tag filters
 * are not applied to them (they would always filter everything out); the
 * namespace is the query's.
 *
 * @example
 * const registry = new StaticRegistry(['127.0.0.1:50051', '127.0.0.1:50052']);
 */
export class StaticRegistry implements Registry {
  readonly backend = 'static';
  readonly readOnly = true;
  /** Normalised, de-duplicated addresses. */
  readonly addresses: readonly string[];
  private readonly subscribers = new Set<Subscriber<EndpointSet>>();

  /** Throws ConfigurationError naming `<field>[i]` and the value for an invalid address. */
  constructor(addresses: readonly string[], field = 'backend_config.addresses') {
    this.addresses = Object.freeze(parseStaticAddresses(addresses, field));
  }

  async register(instance: ServiceInstance): Promise<Registration> {
    throw new NotSupportedError(
      `The 'static' backend is read-only: cannot register instance '${instance?.id}' of service '${instance?.service}' (use local, etcd or consul to register)`,
    );
  }

  watch(query: DiscoveryQuery): Observable<EndpointSet> {
    // Validates the query the same way every backend does (throws on a bad one).
    const compiled = compileQuery(query);
    const instances = staticInstances(query.service, this.addresses, compiled.namespace);
    return new Observable<EndpointSet>((subscriber) => {
      subscriber.next(EndpointSet.initial(query.service).next(instances));
      this.subscribers.add(subscriber);
      return () => this.subscribers.delete(subscriber);
    });
  }

  async close(): Promise<void> {
    for (const subscriber of [...this.subscribers]) subscriber.complete();
    this.subscribers.clear();
  }
}

export const createRegistry: BackendFactory = ({ config, logger }) => {
  const addresses = (config.backendConfig.addresses ?? []) as string[];
  const registry = new StaticRegistry(addresses);
  if (registry.addresses.length === 0) {
    logger.warn("backend 'static' has no backend_config.addresses: every service will have zero endpoints");
  }
  return registry;
};
