import { isIP } from 'node:net';
import { formatAddress } from '../../core/address.js';
import { createServiceInstance, type ServiceInstance } from '../../core/service-instance.js';

/** The parts of a discovery.k8s.io/v1 EndpointSlice the backend reads (everything optional: data from a registry). */
export interface EndpointSliceObject {
  metadata?: { name?: string; namespace?: string; resourceVersion?: string };
  addressType?: string;
  ports?: Array<{ name?: string | null; port?: number | null; protocol?: string | null }> | null;
  endpoints?: Array<{
    addresses?: string[] | null;
    conditions?: { ready?: boolean | null; serving?: boolean | null; terminating?: boolean | null } | null;
    hostname?: string | null;
    nodeName?: string | null;
    zone?: string | null;
    targetRef?: { kind?: string; name?: string } | null;
  }> | null;
}

/** Port names tried, in order, when `port_name` is not set and a slice has several ports. */
export const PREFERRED_PORT_NAMES = ['grpc', 'http'] as const;

/** Metadata keys the backend sets on every instance (in `metadata.custom`). */
export const KUBERNETES_METADATA = {
  node: 'kubernetes.node',
  pod: 'kubernetes.pod',
  hostname: 'kubernetes.hostname',
  terminating: 'kubernetes.terminating',
} as const;

/** What the slices of one service gave. */
export interface SliceInstances {
  /** Ready endpoints (healthy) and serving-but-terminating ones (known, not served: `healthy` false). */
  instances: ServiceInstance[];
  /** Slices whose port could not be chosen (the whole slice is skipped), one message each. */
  portProblems: string[];
  /** Other skipped data (FQDN slices, endpoints without an address), one message each. */
  skipped: string[];
}

/**
 * Turns every slice of one service into instances, merged: a service has
 * one slice per 100 endpoints, and all of them make its set. Conditions:
 * `ready` → served; `serving && terminating` → known, not served (calls in
 * flight finish, no new ones: `healthy` false); not ready → left out. The
 * port is chosen by name (see {@link choosePort}); `zone` and `nodeName`
 * become the instance's zone and metadata, `targetRef` (the pod) its id.
 *
 * @example
 * const { instances } = instancesOfSlices(slices, { service: 'orders', namespace: 'default', portName: 'grpc' });
 */
export function instancesOfSlices(
  slices: Iterable<EndpointSliceObject>,
  context: { service: string; namespace: string; portName: string | undefined },
): SliceInstances {
  const byAddress = new Map<string, ServiceInstance>();
  const portProblems: string[] = [];
  const skipped: string[] = [];
  const ordered = [...slices].sort((a, b) => (sliceName(a) < sliceName(b) ? -1 : 1));
  for (const slice of ordered) {
    const name = sliceName(slice);
    const type = slice.addressType ?? 'IPv4';
    if (type !== 'IPv4' && type !== 'IPv6') {
      skipped.push(
        `EndpointSlice '${name}' of service '${context.service}' has addressType ${type}; only IPv4 and IPv6 slices are used`,
      );
      continue;
    }
    const port = choosePort(slice, context);
    if (typeof port === 'string') {
      portProblems.push(port);
      continue;
    }
    for (const endpoint of Array.isArray(slice.endpoints) ? slice.endpoints : []) {
      const ip = Array.isArray(endpoint?.addresses) ? endpoint.addresses[0] : undefined;
      if (typeof ip !== 'string' || isIP(ip) === 0) {
        skipped.push(
          `EndpointSlice '${name}' of service '${context.service}' lists an endpoint without an IP address (${JSON.stringify(endpoint?.addresses ?? null)}); skipped`,
        );
        continue;
      }
      const conditions = endpoint.conditions ?? {};
      const ready = conditions.ready !== false;
      const serving = typeof conditions.serving === 'boolean' ? conditions.serving : ready;
      const terminating = conditions.terminating === true;
      // Ready and not terminating: served. Terminating but still serving: known, not served. Anything else: left out.
      const served = ready && !terminating;
      if (!served && !(terminating && serving)) continue;
      const address = formatAddress(ip, port);
      const existing = byAddress.get(address);
      // One pod may sit in two slices while the controller moves it: the served entry wins.
      if (existing && (existing.healthy || !served)) continue;
      const ref = endpoint.targetRef;
      const pod = typeof ref?.name === 'string' && (ref.kind === 'Pod' || !ref.kind) ? ref.name : undefined;
      const custom: Record<string, string> = {};
      if (typeof endpoint.nodeName === 'string') custom[KUBERNETES_METADATA.node] = endpoint.nodeName;
      if (pod) custom[KUBERNETES_METADATA.pod] = pod;
      if (typeof endpoint.hostname === 'string') custom[KUBERNETES_METADATA.hostname] = endpoint.hostname;
      if (terminating) custom[KUBERNETES_METADATA.terminating] = 'true';
      try {
        byAddress.set(
          address,
          createServiceInstance({
            service: context.service,
            id: pod && /^[^\s/]{1,256}$/.test(pod) ? pod : `k8s-${address}`,
            address,
            namespace: context.namespace,
            healthy: served,
            metadata: {
              ...(typeof endpoint.zone === 'string' && endpoint.zone ? { zone: endpoint.zone } : {}),
              custom,
            },
          }),
        );
      } catch (error) {
        skipped.push(
          `EndpointSlice '${name}' of service '${context.service}': endpoint ${address} skipped (${(error as Error).message})`,
        );
      }
    }
  }
  return { instances: [...byAddress.values()], portProblems, skipped };
}

/**
 * The port of a slice: the one named `portName`; without it, the only port,
 * else one named `grpc`, else `http`. Returns the port number, or a message
 * that names the slice's ports and the setting to change.
 *
 * @example
 * choosePort(slice, { service: 'orders', portName: undefined }); // 50051, or "EndpointSlice 'orders-x' ... has no port named ..."
 */
export function choosePort(
  slice: EndpointSliceObject,
  context: { service: string; portName: string | undefined },
): number | string {
  const ports = (Array.isArray(slice.ports) ? slice.ports : []).filter(
    (p): p is { name?: string | null; port: number; protocol?: string | null } =>
      Number.isInteger(p?.port) && (p.port as number) > 0 && (p.port as number) <= 65_535,
  );
  const label = (p: { name?: string | null; port: number }) =>
    typeof p.name === 'string' && p.name ? `'${p.name}' (${p.port})` : `unnamed (${p.port})`;
  const names = ports.map(label).join(', ') || 'none';
  const where = `EndpointSlice '${sliceName(slice)}' of service '${context.service}'`;
  if (context.portName !== undefined) {
    const named = ports.find((p) => p.name === context.portName);
    if (named) return named.port;
    return `${where} has no port named '${context.portName}' (its ports: ${names}); set backend_config.port_name to one of them`;
  }
  const tcp = ports.filter((p) => (p.protocol ?? 'TCP') === 'TCP');
  if (tcp.length === 1) return tcp[0].port;
  for (const preferred of PREFERRED_PORT_NAMES) {
    const named = tcp.find((p) => p.name === preferred);
    if (named) return named.port;
  }
  if (tcp.length === 0)
    return `${where} has no TCP port (its ports: ${names}); the Service needs a port for switchyard to call`;
  return `${where} has ${tcp.length} ports and none is named ${PREFERRED_PORT_NAMES.map((n) => `'${n}'`).join(' or ')} (its ports: ${names}); set backend_config.port_name to one of them`;
}

function sliceName(slice: EndpointSliceObject): string {
  return slice.metadata?.name ?? '?';
}
