import type { CompiledQuery } from '../../core/discovery-query.js';
import { createServiceInstance, type ServiceInstance } from '../../core/service-instance.js';
import type { DiscoveryLogger } from '../registry.interface.js';
import type { EndpointSetPublisher } from '../shared/endpoint-set-publisher.js';
import type { AdsClient } from './ads-client.js';
import type { MeshCluster } from './xds-cluster.js';
import type { MeshEndpoint, MeshLoadAssignment } from './xds-load-assignment.js';
import { CLUSTER_RESOURCE, ENDPOINT_RESOURCE } from './xds-resource-type.js';

/** How far ahead of the last match an unchanged endpoint is looked for by place (churn removes some in between). */
const PLACES_AHEAD = 32;

/**
 * One `watch()` of the mesh backend: follows the service's Cluster (CDS)
 * and, for EDS clusters, its ClusterLoadAssignment, and publishes the
 * served endpoints when they change. After an outage it waits
 * until both resources were confirmed on the new stream before leaving
 * `stale`, so a reconnect never serves pre-outage data as current.
 */
export class MeshServiceWatch {
  private stopped = false;
  private cluster: MeshCluster | undefined;
  /** True once the control plane said something about the cluster (it may be absent). */
  private clusterKnown = false;
  private clusterFresh = false;
  /** `null`: the ClusterLoadAssignment does not exist. */
  private assignment: MeshLoadAssignment | null | undefined;
  private assignmentFresh = false;
  private edsName: string | undefined;
  private unwatchCluster: (() => void) | undefined;
  private unwatchEds: (() => void) | undefined;
  private lastNote = '';
  /**
   * The instance made of each endpoint (null: it was skipped, or does not
   * match the watch's query): the parser hands unchanged endpoints over as
   * the same objects, so a new version of a large assignment only builds
   * (and matches) instances for what changed.
   */
  private readonly instances = new WeakMap<MeshEndpoint, ServiceInstance | null>();
  /** The endpoints last turned into instances, and those instances (by place): most are the same next time. */
  private lastEndpoints: readonly MeshEndpoint[] = [];
  private lastInstances: Array<ServiceInstance | null> = [];

  constructor(
    readonly service: string,
    readonly clusterName: string,
    private readonly ads: AdsClient,
    private readonly query: CompiledQuery,
    private readonly publisher: EndpointSetPublisher,
    private readonly logger: DiscoveryLogger,
  ) {}

  start(): void {
    this.unwatchCluster = this.ads.watch(CLUSTER_RESOURCE, this.clusterName, {
      onResource: (cluster) => this.onCluster(cluster),
      onDoesNotExist: () => this.onClusterAbsent(),
      onUnreachable: (reason) => this.onUnreachable(reason),
    });
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.dropEds();
    this.unwatchCluster?.();
    this.unwatchCluster = undefined;
  }

  private onCluster(cluster: MeshCluster): void {
    this.cluster = cluster;
    this.clusterKnown = true;
    this.clusterFresh = true;
    if (cluster.kind === 'eds') {
      if (this.edsName !== cluster.edsServiceName) {
        this.dropEds();
        this.edsName = cluster.edsServiceName;
        // May answer synchronously (resource already known on this stream), which recomputes.
        this.unwatchEds = this.ads.watch(ENDPOINT_RESOURCE, cluster.edsServiceName, {
          onResource: (assignment) => this.onAssignment(assignment),
          onDoesNotExist: () => this.onAssignment(null),
          onUnreachable: (reason) => this.onUnreachable(reason),
        });
      }
    } else {
      this.dropEds();
      if (cluster.kind === 'unsupported')
        this.note(
          `cluster '${cluster.name}' of '${this.service}' is a ${cluster.detail}, which switchyard cannot list; serving no endpoints`,
        );
    }
    this.recompute();
  }

  private onClusterAbsent(): void {
    this.cluster = undefined;
    this.clusterKnown = true;
    this.clusterFresh = true;
    this.dropEds();
    this.publish([]);
  }

  private onAssignment(assignment: MeshLoadAssignment | null): void {
    this.assignment = assignment;
    this.assignmentFresh = true;
    this.recompute();
  }

  private onUnreachable(reason: string): void {
    this.clusterFresh = false;
    this.assignmentFresh = false;
    if (!this.stopped) this.publisher.publishStale(reason);
  }

  private dropEds(): void {
    this.unwatchEds?.();
    this.unwatchEds = undefined;
    this.edsName = undefined;
    this.assignment = undefined;
    this.assignmentFresh = false;
  }

  private recompute(): void {
    if (this.stopped || !this.clusterKnown || !this.clusterFresh) return;
    const cluster = this.cluster;
    let endpoints: readonly MeshEndpoint[] = [];
    if (cluster?.kind === 'inline') endpoints = this.served(cluster.assignment);
    else if (cluster?.kind === 'eds') {
      if (!this.assignmentFresh) return; // the ClusterLoadAssignment has not arrived yet
      endpoints = this.assignment ? this.served(this.assignment) : [];
    }
    this.publish(this.toInstances(endpoints));
  }

  private served(assignment: MeshLoadAssignment): readonly MeshEndpoint[] {
    const { unweightedLocality } = assignment.skipped;
    if (unweightedLocality > 0) {
      this.note(
        `${unweightedLocality} endpoint(s) of '${this.service}' sit in localities without load_balancing_weight while others have one; they get no traffic`,
      );
    }
    return assignment.endpoints;
  }

  /** The instances of `endpoints` that match the query. */
  private toInstances(endpoints: readonly MeshEndpoint[]): ServiceInstance[] {
    const out: ServiceInstance[] = [];
    const made = new Array<ServiceInstance | null>(endpoints.length);
    const last = this.lastEndpoints;
    // Unchanged endpoints come in the same order: found by place (past a few that left), else by object.
    let cursor = 0;
    for (let i = 0; i < endpoints.length; i++) {
      const endpoint = endpoints[i];
      let instance: ServiceInstance | null | undefined;
      const end = Math.min(last.length, cursor + PLACES_AHEAD);
      for (let j = cursor; j < end; j++) {
        if (last[j] === endpoint) {
          instance = this.lastInstances[j];
          cursor = j + 1;
          break;
        }
      }
      instance ??= this.instances.get(endpoint);
      if (instance === undefined) {
        instance = this.toInstance(endpoint);
        this.instances.set(endpoint, instance);
      }
      made[i] = instance;
      if (instance) out.push(instance);
    }
    this.lastEndpoints = endpoints;
    this.lastInstances = made;
    return out;
  }

  private toInstance(endpoint: MeshEndpoint): ServiceInstance | null {
    const custom: Record<string, string> = { 'xds.cluster': this.clusterName };
    if (endpoint.subZone) custom.sub_zone = endpoint.subZone;
    if (endpoint.hostname) custom.hostname = endpoint.hostname;
    let instance: ServiceInstance;
    try {
      instance = createServiceInstance({
        service: this.service,
        id: `xds-${endpoint.address}`,
        address: endpoint.address,
        namespace: this.query.namespace,
        version: endpoint.tags.version ?? '',
        tags: endpoint.tags,
        metadata: { region: endpoint.region, zone: endpoint.zone, custom },
        weight: endpoint.weight,
      });
    } catch (error) {
      this.logger.warn(`mesh: skipped endpoint ${endpoint.address} of '${this.service}': ${(error as Error).message}`);
      return null;
    }
    return this.query.matches(instance) ? instance : null;
  }

  private note(message: string): void {
    if (message === this.lastNote) return;
    this.lastNote = message;
    this.logger.warn(`mesh: ${message}`);
  }

  private publish(instances: readonly ServiceInstance[]): void {
    if (!this.stopped) this.publisher.publishReusing(instances);
  }
}
