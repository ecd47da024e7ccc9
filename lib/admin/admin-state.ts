import type { Discovery } from '../discovery/discovery.js';
import type { ServiceRegistry } from '../discovery/service-registry.js';

/** One endpoint in the admin view. */
export interface AdminEndpointState {
  address: string;
  id: string;
  zone: string | undefined;
  region: string | undefined;
  version: string;
  weight: number;
  /** healthy | unhealthy (failing active checks, or healthy: false in the registry) | ejected (outlier detection) | drained (weight 0). */
  health: 'healthy' | 'unhealthy' | 'ejected' | 'drained';
  /** In the set the picker uses now (false while ejected or unhealthy, unless in panic; always false when drained). */
  served: boolean;
  detail: string | undefined;
  inFlight: number;
  picksLastMinute: number;
  failuresLastMinute: number;
  ewmaMs: number | undefined;
}

/** One dependency (service client) in the admin view. */
export interface AdminServiceState {
  service: string;
  query: {
    namespace: string | undefined;
    version: string | undefined;
    tags: Array<{ key: string; value?: string; pattern?: string }>;
    zone: string | undefined;
  };
  /** ok | stale (registry unreachable, last known served) | empty (zero instances). */
  state: string;
  revision: number;
  reason: string | undefined;
  strategy: string;
  known: number;
  served: number;
  panic: boolean;
  endpoints: AdminEndpointState[];
}

/** Everything `<path>/state.json` returns. Holds no secret: no configuration values, only names and states. */
export interface AdminState {
  generatedAt: number;
  backend: string;
  registry: { reachable: boolean | undefined; reason: string | undefined };
  self: { service: string; id: string; address: string; state: string; backend: string | undefined } | undefined;
  services: AdminServiceState[];
}

/** Collects what this process believes about every service it calls. */
export function collectAdminState(discovery: Discovery, self?: ServiceRegistry): AdminState {
  const instance = self?.instance();
  return {
    generatedAt: Date.now(),
    backend: discovery.backendName,
    registry: { reachable: discovery.registryReachable(), reason: discovery.registryReachability()?.reason },
    self:
      instance && self
        ? {
            service: instance.service,
            id: instance.id,
            address: instance.address,
            state: self.state,
            backend: self.backend,
          }
        : undefined,
    services: discovery.listClients().map((client) => {
      const set = client.snapshot();
      const query = client.query;
      const health = client.healthStatus;
      const endpoints = client.describeEndpoints().map((r) => ({
        address: r.endpoint.address,
        id: r.endpoint.instance.id,
        zone: r.endpoint.zone,
        region: r.endpoint.instance.metadata.region,
        version: r.endpoint.instance.version,
        weight: r.endpoint.weight,
        health: r.health,
        served: r.served,
        detail: r.detail,
        inFlight: r.inFlight,
        picksLastMinute: r.picksLastMinute,
        failuresLastMinute: r.failuresLastMinute,
        ewmaMs: r.ewmaMs === undefined ? undefined : Math.round(r.ewmaMs * 100) / 100,
      }));
      return {
        service: client.service,
        query: {
          namespace: query.namespace,
          version: query.version,
          tags: (query.tags ?? []).map((t) => ({ key: t.key, value: t.value, pattern: t.pattern })),
          zone: query.zone,
        },
        state: set.state,
        revision: set.revision,
        reason: set.reason,
        strategy: client.strategy,
        known: endpoints.length,
        served: set.size,
        panic: health.panic,
        endpoints,
      };
    }),
  };
}
