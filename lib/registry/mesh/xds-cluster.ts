import {
  parseLoadAssignment,
  XdsResourceError,
  type ClusterLoadAssignmentMessage,
  type MeshLoadAssignment,
} from './xds-load-assignment.js';

/**
 * Where a cluster's endpoints come from: `eds` (a ClusterLoadAssignment to
 * subscribe to), `inline` (STATIC / STRICT_DNS / LOGICAL_DNS clusters carry
 * their `load_assignment`), or `unsupported` (ORIGINAL_DST, aggregate and
 * other custom cluster types: valid xDS, but nothing switchyard can list).
 */
export type MeshCluster =
  | { readonly name: string; readonly kind: 'eds'; readonly edsServiceName: string }
  | { readonly name: string; readonly kind: 'inline'; readonly assignment: MeshLoadAssignment }
  | { readonly name: string; readonly kind: 'unsupported'; readonly detail: string };

/** The fields of `envoy.config.cluster.v3.Cluster` read here. */
export interface ClusterMessage {
  name?: string;
  cluster_discovery_type?: string;
  type?: string;
  cluster_type?: { name?: string } | null;
  eds_cluster_config?: { eds_config?: { config_source_specifier?: string } | null; service_name?: string } | null;
  load_assignment?: ClusterLoadAssignmentMessage | null;
}

/**
 * Validates a Cluster. Throws {@link XdsResourceError} (NACK) for an EDS
 * cluster whose `eds_config` names a source other than ADS or `self` (this
 * client only speaks ADS), or an invalid inline `load_assignment`.
 *
 * @example
 * const cluster = parseCluster(decodedCluster); if (cluster.kind === 'eds') subscribe(cluster.edsServiceName);
 */
export function parseCluster(message: ClusterMessage): MeshCluster {
  const name = message.name ?? '';
  if (message.cluster_discovery_type === 'cluster_type') {
    return { name, kind: 'unsupported', detail: `custom cluster type ${message.cluster_type?.name ?? '(unnamed)'}` };
  }
  const type = message.type ?? 'STATIC';
  switch (type) {
    case 'EDS': {
      const source = message.eds_cluster_config?.eds_config?.config_source_specifier;
      if (source && source !== 'ads' && source !== 'self') {
        throw new XdsResourceError(
          `eds_cluster_config.eds_config: only ADS (ads or self) config sources are supported (got ${source})`,
        );
      }
      return { name, kind: 'eds', edsServiceName: message.eds_cluster_config?.service_name || name };
    }
    case 'STATIC':
    case 'STRICT_DNS':
    case 'LOGICAL_DNS': {
      if (!message.load_assignment) throw new XdsResourceError(`a ${type} cluster needs a load_assignment`);
      return { name, kind: 'inline', assignment: parseLoadAssignment(message.load_assignment, 'load_assignment.') };
    }
    default:
      return { name, kind: 'unsupported', detail: `cluster type ${type}` };
  }
}

export { XdsResourceError };
