import { parseCluster, type ClusterMessage, type MeshCluster } from './xds-cluster.js';
import {
  parseLoadAssignment,
  type ClusterLoadAssignmentMessage,
  type MeshLoadAssignment,
} from './xds-load-assignment.js';
import { readLoadAssignment } from './xds-eds-bytes.js';
import { CLUSTER_TYPE_URL, ENDPOINT_TYPE_URL, type XdsProtos } from './xds-protos.js';

/**
 * One xDS resource type as the ADS client handles it: how to name a decoded
 * resource, how to validate it, and whether a response carries the full
 * state (for LDS and CDS a resource missing from a response was deleted;
 * EDS and RDS responses may carry only some of the subscribed resources).
 */
export interface XdsResourceType<T> {
  readonly typeUrl: string;
  /** Short name for logs: CDS, EDS. */
  readonly label: string;
  readonly fullState: boolean;
  /** Number of the string field holding the resource's name (read from the bytes to spot superseded resources). */
  readonly nameField: number;
  nameOf(message: unknown): string;
  /**
   * Throws XdsResourceError for a resource that must be NACKed. `previous`
   * is the version in use, whose unchanged parts a parser may reuse.
   */
  parse(message: unknown, previous?: T): T;
  /**
   * Reads a resource from its bytes without decoding all of it (its name,
   * and how to parse it against the version in use); undefined when it
   * cannot, and the resource is decoded whole. Optional.
   */
  fromBytes?(bytes: Buffer, protos: XdsProtos): { name: string; parse(previous?: T): T } | undefined;
}

/** CDS: `envoy.config.cluster.v3.Cluster`. */
export const CLUSTER_RESOURCE: XdsResourceType<MeshCluster> = {
  typeUrl: CLUSTER_TYPE_URL,
  label: 'CDS',
  fullState: true,
  nameField: 1,
  nameOf: (message) => (message as ClusterMessage).name ?? '',
  parse: (message) => parseCluster(message as ClusterMessage),
};

/** EDS: `envoy.config.endpoint.v3.ClusterLoadAssignment`. */
export const ENDPOINT_RESOURCE: XdsResourceType<MeshLoadAssignment> = {
  typeUrl: ENDPOINT_TYPE_URL,
  label: 'EDS',
  fullState: false,
  nameField: 1,
  nameOf: (message) => (message as ClusterLoadAssignmentMessage).cluster_name ?? '',
  parse: (message, previous) => parseLoadAssignment(message as ClusterLoadAssignmentMessage, '', previous),
  // 1 % churn of a 1,000-endpoint assignment re-sends 990 unchanged endpoints: only the others are decoded.
  fromBytes: readLoadAssignment,
};
