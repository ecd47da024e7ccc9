// One file of ~370 lines on purpose: validating a ClusterLoadAssignment,
// choosing its served endpoints and weights, and reusing the endpoints of
// the previous version are one pass over the same message; splitting them
// would spread one rule (what an endpoint is parsed from) over files.
import { formatAddress, parseAddress } from '../../core/address.js';
import { DiscoveryError } from '../../core/errors.js';

/**
 * A resource the control plane sent that cannot be used (it is NACKed with
 * this message as `error_detail`, and the previous version stays in use).
 */
export class XdsResourceError extends DiscoveryError {}

/** Health states served, as in gRPC's xDS client. */
const SERVED_HEALTH = new Set(['HEALTHY', 'UNKNOWN']);

/** One endpoint of a ClusterLoadAssignment that is served (healthy, in the active priority). */
export interface MeshEndpoint {
  readonly host: string;
  readonly port: number;
  /** `host:port`, IPv6 in brackets. */
  readonly address: string;
  /** Effective weight: endpoint weight, scaled by its locality's weight when localities carry weights. */
  readonly weight: number;
  readonly region: string | undefined;
  readonly zone: string | undefined;
  readonly subZone: string | undefined;
  /** `Endpoint.hostname`, when the control plane sets it. */
  readonly hostname: string | undefined;
  /** String, number and boolean fields of `metadata.filter_metadata` (every filter namespace). */
  readonly tags: Readonly<Record<string, string>>;
}

/** A ClusterLoadAssignment turned into the endpoints a client should use. */
export interface MeshLoadAssignment {
  readonly clusterName: string;
  readonly endpoints: readonly MeshEndpoint[];
  /** Endpoints left out: not HEALTHY/UNKNOWN, in a failover priority, or in a locality without weight. */
  readonly skipped: { readonly unhealthy: number; readonly failover: number; readonly unweightedLocality: number };
}

/** The fields of `envoy.config.endpoint.v3.ClusterLoadAssignment` read here (decoded with keepCase, string enums). */
export interface ClusterLoadAssignmentMessage {
  cluster_name?: string;
  endpoints?: LocalityLbEndpointsMessage[];
}

export interface LocalityLbEndpointsMessage {
  locality?: { region?: string; zone?: string; sub_zone?: string } | null;
  lb_endpoints?: LbEndpointMessage[];
  load_balancing_weight?: { value?: number } | null;
  priority?: number;
}

export interface LbEndpointMessage {
  endpoint?: {
    address?: { socket_address?: SocketAddressMessage | null; address?: string } | null;
    hostname?: string;
  } | null;
  host_identifier?: string;
  health_status?: string;
  metadata?: { filter_metadata?: Record<string, StructMessage> } | null;
  load_balancing_weight?: { value?: number } | null;
}

interface SocketAddressMessage {
  protocol?: string;
  address?: string;
  port_value?: number;
  port_specifier?: string;
}

interface StructMessage {
  fields?: Record<string, ValueMessage>;
}

/** `google.protobuf.Value`: protobufjs's built-in copy uses camelCase even with keepCase. */
interface ValueMessage {
  kind?: string;
  stringValue?: string;
  string_value?: string;
  numberValue?: number;
  number_value?: number;
  boolValue?: boolean;
  bool_value?: boolean;
}

/** What one LbEndpoint was parsed into: the endpoint (weighted once served), and whether it is served. */
export interface ParsedPlace {
  readonly endpoint: Omit<MeshEndpoint, 'weight'>;
  readonly endpointWeight: number;
  readonly served: boolean;
  readonly locality: LocalityLbEndpointsMessage['locality'];
  /** The effective weight `endpoint` carries (-1: not yet weighted). */
  readonly weight: number;
}

/**
 * Parse results by place (group, then index in `lb_endpoints`): `prior`
 * holds, for an LbEndpoint whose bytes did not change, what it was parsed
 * into last time (xds-eds-bytes.ts finds those), so it is taken as it was,
 * without parsing or keys; `out` receives what every place is parsed into now.
 */
export interface ParsedPlaces {
  readonly prior: ReadonlyArray<ReadonlyArray<ParsedPlace | undefined>>;
  readonly out: ParsedPlace[][];
}

/**
 * Served endpoints by what they were parsed from (`contentKey`), shared by
 * the versions of one cluster: the next version reuses those that did not
 * change (a churn of 1 % re-sends 99 % unchanged endpoints). Equal keys
 * parse to equal endpoints whatever the version, so a version that fails
 * to parse leaves it valid; it is pruned when endpoints that left pile up.
 */
const parsedEndpoints = new WeakMap<MeshLoadAssignment, Map<string, MeshEndpoint>>();

/** Largest integer effective weight before falling back to fractions. */
const MAX_INTEGER_WEIGHT = 1_000_000;

/**
 * Validates a ClusterLoadAssignment and returns the endpoints to serve.
 * Throws {@link XdsResourceError} (the resource is NACKed) for an endpoint
 * that has no usable `socket_address`, a port outside 1-65535 or a weight of 0.
 *
 * - Only `HEALTHY` and `UNKNOWN` endpoints are served.
 * - Priorities: the lowest priority with a served endpoint wins; the
 *   others are failover and left out.
 * - Weights: without locality weights, an endpoint's weight is its
 *   `load_balancing_weight` (default 1). When localities carry weights, an
 *   endpoint gets `locality_weight × endpoint_weight / Σ endpoint weights of
 *   its locality` (scaled to integers), so each locality receives its share
 *   of the traffic however many endpoints it has; localities without a
 *   weight then receive none, as in Envoy's and gRPC's locality-weighted balancing.
 *
 * @example
 * const { endpoints } = parseLoadAssignment(decodedClusterLoadAssignment);
 */
export function parseLoadAssignment(
  message: ClusterLoadAssignmentMessage,
  path = '',
  previous?: MeshLoadAssignment,
  places?: ParsedPlaces,
): MeshLoadAssignment {
  // Reuse by what an endpoint was parsed from serves whole decodes; the bytes reader (`places`) reuses by bytes,
  // and a key per endpoint of 100,000 would cost ~14 MiB.
  const known = places ? undefined : ((previous && parsedEndpoints.get(previous)) ?? new Map<string, MeshEndpoint>());
  const groups = message.endpoints ?? [];
  // Served endpoints in order, as parallel arrays (one update of a large assignment allocates no object per endpoint).
  const served: ParsedPlace[] = [];
  const servedGroup: number[] = [];
  const servedIndex: number[] = [];
  /** Keys of the served endpoints parsed now (by position in `served`); the reused ones need none. */
  let servedKeys: Map<number, string> | undefined;
  let unhealthy = 0;
  for (let g = 0; g < groups.length; g++) {
    const group = groups[g];
    const prior = places?.prior[g];
    const out: ParsedPlace[] = [];
    places?.out.push(out);
    const lbs = group.lb_endpoints ?? [];
    for (let e = 0; e < lbs.length; e++) {
      let place = prior?.[e];
      let key: string | undefined;
      if (place === undefined || place.locality !== group.locality) {
        const lb = lbs[e];
        key = known && contentKey(lb, group);
        const endpoint =
          (key === undefined ? undefined : known!.get(key)) ??
          parseLbEndpoint(lb, group, `${path}endpoints[${g}].lb_endpoints[${e}]`);
        const isServed = SERVED_HEALTH.has(lb.health_status || 'UNKNOWN');
        place = {
          endpoint,
          endpointWeight: isServed ? endpointWeight(lb, path, g, e) : 0,
          served: isServed,
          locality: group.locality,
          weight: -1,
        };
      }
      if (places) out.push(place);
      if (!place.served) {
        unhealthy++;
        continue;
      }
      if (key !== undefined) (servedKeys ??= new Map()).set(served.length, key);
      served.push(place);
      servedGroup.push(g);
      servedIndex.push(e);
    }
  }

  const localityWeights = groups.map((group) => group.load_balancing_weight?.value ?? 0);
  const weighted = localityWeights.some((w) => w > 0);
  // Usable: not in a locality left without weight while others have one. Active: usable, in the lowest priority.
  const usable = (i: number) => !weighted || localityWeights[servedGroup[i]] > 0;
  const priorityOf = (i: number) => groups[servedGroup[i]].priority ?? 0;
  let unweightedLocality = 0;
  let activePriority = Infinity;
  for (let i = 0; i < served.length; i++) {
    if (!usable(i)) unweightedLocality++;
    else activePriority = Math.min(activePriority, priorityOf(i));
  }
  const isActive = (i: number) => usable(i) && priorityOf(i) === activePriority;
  let activeCount = 0;
  for (let i = 0; i < served.length; i++) if (isActive(i)) activeCount++;
  const failover = served.length - unweightedLocality - activeCount;
  const weightOf = weighted
    ? localityScaledWeights(served, servedGroup, isActive, localityWeights)
    : (i: number) => served[i].endpointWeight;
  const endpoints = new Array<MeshEndpoint>(activeCount);
  for (let i = 0, n = 0; i < served.length; i++) {
    if (!isActive(i)) continue;
    const weight = weightOf(i);
    const place = served[i];
    const key = servedKeys?.get(i);
    let endpoint: MeshEndpoint;
    // A reused endpoint carries its weight: the same object when that did not change either.
    if (place.weight === weight) endpoint = place.endpoint as MeshEndpoint;
    else {
      endpoint =
        (place.endpoint as Partial<MeshEndpoint>).weight === weight
          ? (place.endpoint as MeshEndpoint)
          : Object.freeze({ ...place.endpoint, weight });
      if (key !== undefined) known!.set(key, endpoint);
      if (places) places.out[servedGroup[i]][servedIndex[i]] = { ...place, endpoint, weight };
    }
    endpoints[n++] = endpoint;
  }
  let reusable = known;
  if (known && known.size > 2 * activeCount + 64) {
    reusable = new Map();
    for (let i = 0, n = 0; i < served.length; i++) {
      if (!isActive(i)) continue;
      const key = servedKeys?.get(i);
      if (key !== undefined) reusable.set(key, endpoints[n]);
      n++;
    }
  }
  const assignment: MeshLoadAssignment = {
    clusterName: message.cluster_name ?? '',
    endpoints,
    skipped: { unhealthy, failover, unweightedLocality },
  };
  if (reusable) parsedEndpoints.set(assignment, reusable);
  return assignment;
}

/**
 * Everything `parseLbEndpoint` reads of an endpoint and its locality, as
 * one string: equal keys parse to equal endpoints. Undefined for an
 * endpoint that does not parse (it is parsed, and reported, every time)
 * or whose texts hold the separator (rare enough to just parse).
 */
function contentKey(lb: LbEndpointMessage, group: LocalityLbEndpointsMessage): string | undefined {
  const socket = lb.endpoint?.address?.socket_address;
  if (!socket) return undefined;
  const locality = group.locality;
  const metadata = lb.metadata?.filter_metadata;
  const hasMetadata = metadata !== undefined && metadata !== null && Object.keys(metadata).length > 0;
  const texts = [
    socket.address ?? '',
    socket.protocol ?? '',
    socket.port_specifier ?? '',
    lb.endpoint?.hostname ?? '',
    locality?.region ?? '',
    locality?.zone ?? '',
    locality?.sub_zone ?? '',
  ];
  if (texts.some((text) => text.includes(SEPARATOR))) return undefined;
  return `${texts.join(SEPARATOR)}${SEPARATOR}${socket.port_value ?? ''}${SEPARATOR}${hasMetadata ? JSON.stringify(metadata) : ''}`;
}

const SEPARATOR = '\u0000';

function parseLbEndpoint(
  lb: LbEndpointMessage,
  group: LocalityLbEndpointsMessage,
  where: string,
): Omit<MeshEndpoint, 'weight'> {
  if (!lb.endpoint) {
    const detail =
      lb.host_identifier === 'endpoint_name' ? 'named endpoints (endpoint_name) are not supported' : 'no endpoint';
    throw new XdsResourceError(`${where}: ${detail}`);
  }
  const socket = lb.endpoint.address?.socket_address;
  if (!socket)
    throw new XdsResourceError(
      `${where}.endpoint.address: a socket_address is required (pipe and internal addresses are not supported)`,
    );
  if (socket.protocol && socket.protocol !== 'TCP')
    throw new XdsResourceError(
      `${where}.endpoint.address.socket_address.protocol: TCP expected (got ${socket.protocol})`,
    );
  if (socket.port_specifier === 'named_port')
    throw new XdsResourceError(`${where}.endpoint.address.socket_address: named ports are not supported`);
  const port = socket.port_value ?? 0;
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new XdsResourceError(
      `${where}.endpoint.address.socket_address.port_value: a port 1-65535 expected (got ${port})`,
    );
  }
  const rawHost = socket.address ?? '';
  let host: string;
  try {
    const parsed = parseAddress(formatAddress(rawHost, port)).host;
    // The decoded text when it is already canonical: one string per endpoint instead of two.
    host = parsed === rawHost ? rawHost : parsed;
  } catch {
    throw new XdsResourceError(
      `${where}.endpoint.address.socket_address.address: an IP address or host name expected (got ${JSON.stringify(rawHost)})`,
    );
  }
  const locality = group.locality ?? {};
  return {
    host,
    port,
    address: formatAddress(host, port),
    region: locality.region || undefined,
    zone: locality.zone || undefined,
    subZone: locality.sub_zone || undefined,
    hostname: lb.endpoint.hostname || undefined,
    tags: Object.freeze(metadataTags(lb.metadata?.filter_metadata)),
  };
}

/** The endpoint's weight; `path`, `group` and `index` place it in an error (built only then). */
function endpointWeight(lb: LbEndpointMessage, path: string, group: number, index: number): number {
  const weight = lb.load_balancing_weight;
  if (!weight) return 1;
  const value = weight.value ?? 0;
  if (!Number.isInteger(value) || value < 1) {
    const where = `${path}endpoints[${group}].lb_endpoints[${index}]`;
    throw new XdsResourceError(`${where}.load_balancing_weight: a weight >= 1 expected (got ${value})`);
  }
  return value;
}

/**
 * `locality_weight × endpoint_weight / Σ endpoint weights in the locality`,
 * multiplied by the least common multiple of the sums (and divided by the
 * common divisor) so the weights stay integers when that stays small:
 * integer weights let weighted round robin precompute its schedule.
 * Returns the weight of each active served endpoint, by position.
 */
function localityScaledWeights(
  served: readonly ParsedPlace[],
  servedGroup: readonly number[],
  isActive: (i: number) => boolean,
  localityWeights: readonly number[],
): (i: number) => number {
  const sums = new Array<number>(localityWeights.length).fill(0);
  for (let i = 0; i < served.length; i++) if (isActive(i)) sums[servedGroup[i]] += served[i].endpointWeight;
  let lcm = 1;
  for (const sum of sums) {
    if (sum === 0) continue;
    lcm = (lcm / gcd(lcm, sum)) * sum;
    if (lcm > MAX_INTEGER_WEIGHT) break;
  }
  const scaled = (i: number) => {
    const g = servedGroup[i];
    return localityWeights[g] * served[i].endpointWeight * (lcm / sums[g]);
  };
  if (lcm <= MAX_INTEGER_WEIGHT) {
    let divisor = 0;
    let integers = true;
    for (let i = 0; i < served.length && integers; i++) {
      if (!isActive(i)) continue;
      const w = scaled(i);
      if (!Number.isSafeInteger(w) || w > MAX_INTEGER_WEIGHT) integers = false;
      else divisor = gcd(divisor, w);
    }
    if (integers) {
      const by = divisor || 1;
      return (i) => scaled(i) / by;
    }
  }
  return (i) => {
    const g = servedGroup[i];
    return (localityWeights[g] * served[i].endpointWeight) / sums[g];
  };
}

function gcd(a: number, b: number): number {
  while (b !== 0) [a, b] = [b, a % b];
  return a;
}

/**
 * Flattens `filter_metadata` into tags: string, number and boolean fields of
 * every namespace, by field name. On a clash the `envoy.lb` namespace (the
 * standard one for subset load balancing) wins, then the alphabetically
 * later namespace.
 */
function metadataTags(filterMetadata: Record<string, StructMessage> | undefined): Record<string, string> {
  const tags: Record<string, string> = {};
  if (!filterMetadata) return tags;
  const namespaces = Object.keys(filterMetadata).sort((a, b) =>
    a === 'envoy.lb' ? 1 : b === 'envoy.lb' ? -1 : a < b ? -1 : a > b ? 1 : 0,
  );
  for (const namespace of namespaces) {
    for (const [key, value] of Object.entries(filterMetadata[namespace]?.fields ?? {})) {
      const text = scalarText(value);
      if (text !== undefined) tags[key] = text;
    }
  }
  return tags;
}

function scalarText(value: ValueMessage | undefined): string | undefined {
  if (!value) return undefined;
  const kind = value.kind;
  if (kind === 'stringValue' || kind === 'string_value') return value.stringValue ?? value.string_value;
  if (kind === 'numberValue' || kind === 'number_value') return String(value.numberValue ?? value.number_value);
  if (kind === 'boolValue' || kind === 'bool_value') return String(value.boolValue ?? value.bool_value);
  return undefined;
}
