import { promises as dns } from 'node:dns';
import type { Observable } from 'rxjs';
import { compileQuery, filtersOnVersionOrTags, type DiscoveryQuery } from '../../core/discovery-query.js';
import type { EndpointSet } from '../../core/endpoint-set.js';
import { NotSupportedError } from '../../core/errors.js';
import { configFor, type BackendFactory } from '../backend-context.js';
import { consoleLogger, type DiscoveryLogger, type Registration, type Registry } from '../registry.interface.js';
import { EndpointWatches } from '../shared/endpoint-watches.js';
import { ReachabilityTracker } from '../shared/reachability.js';
import { staticInstances } from '../static/static-instances.js';
import { probeNameservers, queryName } from './dns-resolution.js';
import { DnsServiceWatch } from './dns-service-watch.js';
import type { DnsSettings } from './dns.schema.js';

export { DEFAULT_SRV_TEMPLATE, type DnsSettings } from './dns.schema.js';

/**
 * The `dns` backend: discovers services from SRV records (priority groups,
 * weights, ports) or from A/AAAA records plus a configured port, the way
 * Kubernetes headless services publish them. Re-resolves at the records'
 * TTL (clamped to a floor and a ceiling) and early through {@link refresh}.
 * Read-only: DNS records are published by the platform, so `register`
 * throws NotSupportedError. `reachability` says whether the nameservers
 * answered the last query ("no such name" is an answer).
 *
 * @example
 * const registry = new DnsRegistry(resolveDiscoveryConfig({ backend: 'dns', backendConfig: { domain: 'svc.cluster.local' } }).backendConfig as DnsSettings);
 */
export class DnsRegistry implements Registry {
  readonly backend = 'dns';
  readonly readOnly = true;
  readonly reachability: ReachabilityTracker;
  private readonly serviceWatches = new Set<DnsServiceWatch>();
  private readonly watches = new EndpointWatches();
  /** The resolver of an on-demand probe, cancelled by close(). */
  private readonly probeResolver: dns.Resolver;

  constructor(
    readonly settings: DnsSettings,
    private readonly logger: DiscoveryLogger = consoleLogger,
  ) {
    this.probeResolver = new dns.Resolver({ timeout: settings.timeoutMs, tries: settings.tries });
    if (settings.nameservers.length > 0) this.probeResolver.setServers(settings.nameservers);
    this.reachability = new ReachabilityTracker(() => probeNameservers(this.probeResolver, settings));
  }

  async register(): Promise<Registration> {
    throw new NotSupportedError(
      "The 'dns' backend is read-only: DNS records are published by the platform (e.g. a Kubernetes headless service), not by switchyard, so this instance is not registered",
    );
  }

  watch(query: DiscoveryQuery): Observable<EndpointSet> {
    const compiled = compileQuery(query);
    return this.watches.stream(query.service, (publisher) => {
      if (filtersOnVersionOrTags(query)) {
        this.logger.warn(
          `dns: DNS records carry no version or tags; the version/tag filters of the query for '${query.service}' leave no endpoints`,
        );
      }
      const seeds = staticInstances(query.service, this.settings.addresses, compiled.namespace);
      const watch = new DnsServiceWatch(
        query.service,
        this.settings,
        compiled,
        seeds,
        publisher,
        this.reachability,
        this.logger,
      );
      this.serviceWatches.add(watch);
      watch.start();
      return () => {
        watch.stop();
        this.serviceWatches.delete(watch);
      };
    });
  }

  /**
   * Asks DNS again soon for `service`, for every open watch of it: call it
   * when a connection to one of its endpoints fails. Rate-limited to one
   * resolution per TTL floor per watch (extra calls are coalesced). Returns
   * true when at least one watch will re-resolve earlier than planned.
   *
   * @example
   * channel.on('connection-failure', () => registry.refresh('orders'));
   */
  refresh(service: string): boolean {
    let moved = false;
    for (const watch of this.serviceWatches) if (watch.service === service && watch.requestRefresh()) moved = true;
    return moved;
  }

  /** The DNS name asked for `service` (SRV name or A/AAAA name); undefined in static mode. */
  nameFor(service: string): string | undefined {
    return this.settings.mode === 'static' ? undefined : queryName(this.settings, service);
  }

  /** Stops every watch (timers cleared, pending queries cancelled) and completes their streams. */
  async close(): Promise<void> {
    this.watches.close();
    this.probeResolver.cancel();
    this.reachability.close();
  }
}

/** Entry point used by createRegistry: builds a {@link DnsRegistry} from the validated settings. */
export const createRegistry: BackendFactory = ({ config, logger }) => {
  const settings = configFor(config, 'dns').backendConfig;
  if (settings.mode === 'static') {
    logger.log(
      `dns: no domain configured; serving backend_config.addresses (${settings.addresses.length}) without asking DNS`,
    );
  } else if (settings.mode === 'srv' && settings.port !== undefined) {
    logger.warn(
      'dns: backend_config.port is ignored in SRV mode (SRV records carry the port); set srv = false for A/AAAA lookups',
    );
  }
  return new DnsRegistry(settings, logger);
};
