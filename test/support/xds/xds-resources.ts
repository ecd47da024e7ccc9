/**
 * Builders of xDS v3 resources as plain objects (snake_case, as in the envoy
 * docs), ready for the test control plane to encode. `@type` marks a nested
 * google.protobuf.Any; the encoder expands it.
 */

export const LISTENER_TYPE = 'type.googleapis.com/envoy.config.listener.v3.Listener';
export const ROUTE_TYPE = 'type.googleapis.com/envoy.config.route.v3.RouteConfiguration';
export const CLUSTER_TYPE = 'type.googleapis.com/envoy.config.cluster.v3.Cluster';
export const ENDPOINT_TYPE = 'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment';
export const HCM_TYPE =
  'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
export const ROUTER_TYPE = 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router';

/** The four resource types the test control plane serves, in the order gRPC subscribes to them. */
export const XDS_TYPES = [LISTENER_TYPE, ROUTE_TYPE, CLUSTER_TYPE, ENDPOINT_TYPE] as const;
export type XdsTypeUrl = (typeof XDS_TYPES)[number];

/** LDS and CDS responses carry every subscribed resource (absence = deletion). */
export const FULL_STATE_TYPES: ReadonlySet<string> = new Set([LISTENER_TYPE, CLUSTER_TYPE]);

type Plain = Record<string, unknown>;

function routes(virtualHostName: string, cluster: string): Plain {
  return {
    virtual_hosts: [{ name: virtualHostName, domains: ['*'], routes: [{ match: { prefix: '' }, route: { cluster } }] }],
  };
}

/**
 * A client-side (gRPC proxyless) Listener: an `api_listener` holding an
 * HttpConnectionManager whose routes send everything to `cluster`, inline
 * or through RDS (`rds: routeName`).
 *
 * @example
 * plane.set(LISTENER_TYPE, 'greeter', apiListener('greeter', { cluster: 'greeter-cluster' }));
 */
export function apiListener(name: string, target: { cluster: string } | { rds: string }): Plain {
  const hcm: Plain = {
    '@type': HCM_TYPE,
    http_filters: [{ name: 'router', typed_config: { '@type': ROUTER_TYPE } }],
  };
  if ('rds' in target)
    hcm.rds = { config_source: { ads: {}, resource_api_version: 'V3' }, route_config_name: target.rds };
  else hcm.route_config = { name: `${name}-route`, ...routes(`${name}-vh`, target.cluster) };
  return { name, api_listener: { api_listener: hcm } };
}

/** A RouteConfiguration sending every request to `cluster`. */
export function routeConfiguration(name: string, cluster: string): Plain {
  return { name, ...routes(`${name}-vh`, cluster) };
}

/** An EDS cluster (endpoints over ADS), round robin, like a go-control-plane or Istio cluster. */
export function edsCluster(name: string, options: { serviceName?: string; lbPolicy?: string } = {}): Plain {
  return {
    name,
    type: 'EDS',
    eds_cluster_config: {
      eds_config: { ads: {}, resource_api_version: 'V3' },
      ...(options.serviceName ? { service_name: options.serviceName } : {}),
    },
    lb_policy: options.lbPolicy ?? 'ROUND_ROBIN',
  };
}

/** One endpoint of a locality. */
export interface EndpointSpec {
  /** `host:port` (IPv4 or host name). */
  address: string;
  weight?: number;
  health?: 'UNKNOWN' | 'HEALTHY' | 'UNHEALTHY' | 'DRAINING' | 'TIMEOUT' | 'DEGRADED';
  /** String fields of `filter_metadata['envoy.lb']` (or of the namespaces given). */
  metadata?: Record<string, Record<string, string | number | boolean>>;
  hostname?: string;
}

/** A group of endpoints in one locality (and priority). */
export interface LocalitySpec {
  region?: string;
  zone?: string;
  subZone?: string;
  /** `load_balancing_weight` of the locality; gRPC's xDS client ignores localities without one. */
  weight?: number;
  priority?: number;
  endpoints: EndpointSpec[];
}

/**
 * A ClusterLoadAssignment. Localities default to weight 1 (gRPC drops
 * unweighted localities); pass `weight: 0` to leave it unset.
 *
 * @example
 * plane.set(ENDPOINT_TYPE, 'greeter', loadAssignment('greeter', [{ region: 'eu', endpoints: [{ address: a.address }] }]));
 */
export function loadAssignment(clusterName: string, localities: LocalitySpec[]): Plain {
  return {
    cluster_name: clusterName,
    endpoints: localities.map((l) => ({
      locality: { region: l.region ?? '', zone: l.zone ?? '', sub_zone: l.subZone ?? '' },
      ...(l.weight === 0 ? {} : { load_balancing_weight: { value: l.weight ?? 1 } }),
      priority: l.priority ?? 0,
      lb_endpoints: l.endpoints.map(lbEndpoint),
    })),
  };
}

function lbEndpoint(e: EndpointSpec): Plain {
  const colon = e.address.lastIndexOf(':');
  const host = e.address.slice(0, colon).replace(/^\[(.*)\]$/, '$1');
  const port = Number(e.address.slice(colon + 1));
  const out: Plain = {
    endpoint: {
      address: { socket_address: { address: host, port_value: port } },
      ...(e.hostname ? { hostname: e.hostname } : {}),
    },
    health_status: e.health ?? 'HEALTHY',
  };
  if (e.weight !== undefined) out.load_balancing_weight = { value: e.weight };
  if (e.metadata) {
    const filter_metadata: Plain = {};
    for (const [namespace, fields] of Object.entries(e.metadata)) filter_metadata[namespace] = struct(fields);
    out.metadata = { filter_metadata };
  }
  return out;
}

/** google.protobuf.Struct; protobufjs's built-in copy spells Value fields in camelCase. */
function struct(fields: Record<string, string | number | boolean>): Plain {
  const out: Plain = {};
  for (const [key, value] of Object.entries(fields)) {
    out[key] =
      typeof value === 'string'
        ? { stringValue: value }
        : typeof value === 'number'
          ? { numberValue: value }
          : { boolValue: value };
  }
  return { fields: out };
}
