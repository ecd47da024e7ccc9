import type { Observable } from 'rxjs';
import { compileQuery, type DiscoveryQuery } from '../../core/discovery-query.js';
import type { EndpointSet } from '../../core/endpoint-set.js';
import { NotSupportedError } from '../../core/errors.js';
import type { ServiceInstance } from '../../core/service-instance.js';
import { configFor, type BackendFactory } from '../backend-context.js';
import type { Registration, Registry } from '../registry.interface.js';
import { EndpointWatches } from '../shared/endpoint-watches.js';
import { ReachabilityTracker } from '../shared/reachability.js';
import { parseStaticAddresses, staticInstances } from './static-instances.js';

export { parseStaticAddresses, staticInstanceId, staticInstances } from './static-instances.js';

/**
 * The `static` backend: a fixed list of `host:port` addresses, served as
 * instances of whichever service is asked for. Read-only: `register`
 * rejects with {@link NotSupportedError}. `watch` emits once and then stays
 * silent; nothing is polled, so there are no timers. Its source is the
 * configuration itself, which cannot fail: it is always reachable.
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
  readonly reachability = new ReachabilityTracker();
  /** Normalised, de-duplicated addresses. */
  readonly addresses: readonly string[];
  private readonly watches = new EndpointWatches();

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
    return this.watches.stream(query.service, (publisher) => {
      publisher.publish(instances);
    });
  }

  async close(): Promise<void> {
    this.watches.close();
    this.reachability.close();
  }
}

export const createRegistry: BackendFactory = ({ config, logger }) => {
  const { addresses } = configFor(config, 'static').backendConfig;
  const registry = new StaticRegistry(addresses);
  if (registry.addresses.length === 0) {
    logger.warn("backend 'static' has no backend_config.addresses: every service will have zero endpoints");
  }
  return registry;
};
