import type { Observable } from 'rxjs';
import type { ResolvedDiscoveryConfig } from '../../core/config/resolve-discovery-config.js';
import { compileQuery, type DiscoveryQuery } from '../../core/discovery-query.js';
import type { EndpointSet } from '../../core/endpoint-set.js';
import { NotSupportedError } from '../../core/errors.js';
import type { ServiceInstance } from '../../core/service-instance.js';
import { configFor, type BackendFactory } from '../backend-context.js';
import {
  consoleLogger,
  type DiscoveryLogger,
  type Registration,
  type RegistrationTiming,
  type Registry,
} from '../registry.interface.js';
import { EndpointWatches } from '../shared/endpoint-watches.js';
import type { Reachability } from '../shared/reachability.js';
import { AdsClient, type MeshTuning } from './ads-client.js';
import { MeshServiceWatch } from './mesh-service-watch.js';
import type { MeshSettings } from './mesh.schema.js';
import { registerGrpcJsXds } from './xds-delegate.js';
import { loadXdsProtos, type XdsProtos } from './xds-protos.js';

export type { MeshTuning } from './ads-client.js';
export { parseXdsServer, type MeshSettings } from './mesh.schema.js';

/**
 * The `mesh` backend (alias `xds`): endpoints from an xDS control plane
 * (Istio, Consul Connect, go-control-plane, Traffic Director) over one ADS
 * stream per registry. A service's cluster name comes from
 * `cluster_template` (default `{service}`); its Cluster (CDS) and
 * ClusterLoadAssignment (EDS) become an EndpointSet: address, weight
 * (locality-aware), region/zone, only HEALTHY/UNKNOWN endpoints, and
 * `filter_metadata` as tags. Read-only: the control plane (or the sidecar)
 * owns registration, so `register` throws NotSupportedError.
 *
 * `reachability` says whether the control plane answers: while it does not,
 * its reason starts with `registry unreachable:` and every watch serves its
 * last set as `stale`.
 *
 * @example
 * const registry = await createMeshRegistry(resolveDiscoveryConfig({ backend: 'mesh', backendConfig: { xdsServer: 'http://127.0.0.1:18000' } }));
 */
export class MeshRegistry implements Registry {
  readonly backend = 'mesh';
  readonly readOnly = true;
  private readonly ads: AdsClient;
  private readonly watches = new EndpointWatches();

  constructor(
    readonly settings: MeshSettings,
    protos: XdsProtos,
    private readonly logger: DiscoveryLogger = consoleLogger,
    tuning: MeshTuning = {},
  ) {
    this.ads = new AdsClient({ server: settings.server, node: settings.node, protos, logger, tuning });
  }

  get reachability(): Reachability {
    return this.ads.reachability;
  }

  async register(_instance?: ServiceInstance, _timing?: RegistrationTiming): Promise<Registration> {
    throw new NotSupportedError(
      "The 'mesh' backend is read-only: in a service mesh the control plane (or the sidecar) registers instances, not switchyard, so this instance is not registered",
    );
  }

  /** The cluster name asked for a service in a namespace (`cluster_template`). */
  clusterName(service: string, namespace: string): string {
    return this.settings.clusterTemplate.replace(/\{service\}/g, service).replace(/\{namespace\}/g, namespace);
  }

  watch(query: DiscoveryQuery): Observable<EndpointSet> {
    const compiled = compileQuery(query);
    return this.watches.stream(query.service, (publisher) => {
      const cluster = this.clusterName(query.service, compiled.namespace);
      const watch = new MeshServiceWatch(query.service, cluster, this.ads, compiled, publisher, this.logger);
      watch.start();
      return () => watch.stop();
    });
  }

  /** Ends every watch (their streams complete), the ADS stream and its channel. */
  async close(): Promise<void> {
    this.watches.close();
    this.ads.close();
  }
}

/**
 * Creates a {@link MeshRegistry} from a resolved `mesh` configuration: loads
 * the envoy protos, and in delegate mode registers `@grpc/grpc-js-xds`.
 *
 * @example
 * const registry = await createMeshRegistry(config, logger, { resourceTimeoutMs: 2_000 });
 */
export async function createMeshRegistry(
  config: ResolvedDiscoveryConfig,
  logger: DiscoveryLogger = consoleLogger,
  tuning: MeshTuning = {},
  env: NodeJS.ProcessEnv = process.env,
): Promise<MeshRegistry> {
  const settings = configFor(config, 'mesh').backendConfig;
  const protos = await loadXdsProtos();
  const delegated =
    settings.mode === 'delegate'
      ? `; delegate mode: @grpc/grpc-js-xds registered, ${await registerGrpcJsXds(settings, logger, env)}`
      : '';
  logger.log(
    `mesh: read-only backend (registration is the control plane's or sidecar's job); endpoints over ADS from ${settings.server.display} as node '${settings.node.id}'${delegated}`,
  );
  return new MeshRegistry(settings, protos, logger, tuning);
}

/** Entry point used by createRegistry. */
export const createRegistry: BackendFactory = ({ config, logger }) => createMeshRegistry(config, logger);
