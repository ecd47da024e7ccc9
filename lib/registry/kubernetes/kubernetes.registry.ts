import type { Observable } from 'rxjs';
import { compileQuery, filtersOnVersionOrTags, type DiscoveryQuery } from '../../core/discovery-query.js';
import type { EndpointSet } from '../../core/endpoint-set.js';
import { NotSupportedError } from '../../core/errors.js';
import { DEFAULT_NAMESPACE } from '../../core/service-instance.js';
import { configFor, type BackendFactory } from '../backend-context.js';
import { consoleLogger, type DiscoveryLogger, type Registration, type Registry } from '../registry.interface.js';
import { EndpointWatches } from '../shared/endpoint-watches.js';
import { ReachabilityTracker } from '../shared/reachability.js';
import { EndpointSliceWatch } from './endpoint-slice-watch.js';
import { KubernetesApi } from './kubernetes-api.js';
import { resolveKubernetesConnection, type KubernetesConnection } from './kubernetes-connection.js';
import type { KubernetesSettings } from './kubernetes.schema.js';

export type { KubernetesSettings } from './kubernetes.schema.js';

/**
 * The `kubernetes` backend: follows a service's discovery.k8s.io/v1
 * EndpointSlices from the API server (list, then watch from the list's
 * resourceVersion, with bookmarks; relist on 410 Gone; reconnect with
 * backoff), every slice of the service merged into one set. Ready
 * endpoints are served; serving-but-terminating ones are known but take no
 * new calls. Read-only: Kubernetes registers pods, so `register` throws
 * NotSupportedError (the Nest module skips self-registration with one log
 * line). `reachability` says whether the API server answers.
 *
 * @example
 * const registry = await DiscoveryFactory.createBackend({ backend: 'kubernetes', backendConfig: { namespace: 'shop' } });
 */
export class KubernetesRegistry implements Registry {
  readonly backend = 'kubernetes';
  readonly readOnly = true;
  readonly reachability: ReachabilityTracker;
  private readonly api: KubernetesApi;
  private readonly watches = new EndpointWatches();
  private readonly probeAbort = new AbortController();

  constructor(
    readonly settings: KubernetesSettings,
    readonly connection: KubernetesConnection,
    private readonly logger: DiscoveryLogger = consoleLogger,
  ) {
    this.api = new KubernetesApi(connection, settings.requestTimeoutMs);
    this.reachability = new ReachabilityTracker(async () => {
      await this.api.get('/version', this.probeAbort.signal);
    });
  }

  async register(): Promise<Registration> {
    throw new NotSupportedError(
      "The 'kubernetes' backend is read-only: Kubernetes lists pods in EndpointSlices itself (from the Service's selector and the pods' readiness), so switchyard does not register this instance",
    );
  }

  /**
   * The Kubernetes namespace watched for a query: the query's own, unless it
   * is switchyard's built-in `default` (no namespace chosen), in which case
   * `backend_config.namespace`, else the pod's own namespace (in a
   * cluster) or the kubeconfig context's, else `default`.
   */
  namespaceOf(query: Pick<DiscoveryQuery, 'namespace'>): string {
    const asked = query.namespace;
    return asked !== undefined && asked !== DEFAULT_NAMESPACE ? asked : this.connection.namespace;
  }

  watch(query: DiscoveryQuery): Observable<EndpointSet> {
    const compiled = compileQuery(query);
    return this.watches.stream(query.service, (publisher) => {
      if (filtersOnVersionOrTags(query)) {
        this.logger.warn(
          `kubernetes: EndpointSlices carry no version or tags; the version/tag filters of the query for '${query.service}' leave no endpoints`,
        );
      }
      const watch = new EndpointSliceWatch(
        this.api,
        this.settings,
        query.service,
        this.namespaceOf(query),
        compiled,
        publisher,
        this.reachability,
        this.logger,
      );
      watch.start();
      return () => watch.stop();
    });
  }

  /** Ends every watch and request, and completes their streams. */
  async close(): Promise<void> {
    this.watches.close();
    this.probeAbort.abort();
    this.api.close();
    this.reachability.close();
  }
}

/** Entry point used by createRegistry: resolves the connection (files are read now) and builds the registry. */
export const createRegistry: BackendFactory = async ({ config, logger }) => {
  const settings = configFor(config, 'kubernetes').backendConfig;
  const connection = await resolveKubernetesConnection(settings);
  logger.log(`kubernetes: ${connection.description}; namespace '${connection.namespace}' unless a query names one`);
  return new KubernetesRegistry(settings, connection, logger);
};
