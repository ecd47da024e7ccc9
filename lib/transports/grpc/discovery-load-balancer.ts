import { connectivityState as ConnectivityState, type ChannelOptions } from '@grpc/grpc-js';
import type { Endpoint } from '../../core/endpoint.js';
import type { ServiceClient } from '../../client/service-client.js';
import { MAX_RECONNECT_BACKOFF_MS } from './channel-pool.js';
import type { EndpointSetAttribute } from './discovery-resolver.js';
import {
  createChildChannelControlHelper,
  LB_ATTRIBUTE_KEY,
  LeafLoadBalancer,
  QueuePicker,
  UnavailablePicker,
  type GrpcChannelControlHelper,
  type GrpcEndpoint,
  type GrpcLeafLoadBalancer,
  type GrpcLoadBalancer,
  type GrpcPicker,
  type GrpcStatusOr,
  type GrpcTypedLoadBalancingConfig,
} from './grpc-adapter.js';
import { CallSlots, DiscoveryPicker } from './discovery-picker.js';

export const LB_POLICY_NAME = 'switchyard';

/** LB config carried in the resolver's service config. */
export class DiscoveryLoadBalancingConfig implements GrpcTypedLoadBalancingConfig {
  constructor(
    readonly service: string,
    readonly hashHeader: string,
  ) {}

  getLoadBalancerName(): string {
    return LB_POLICY_NAME;
  }

  toJsonObject(): object {
    return { [LB_POLICY_NAME]: { service: this.service, hashHeader: this.hashHeader } };
  }

  static createFromJson(obj: Record<string, unknown>): DiscoveryLoadBalancingConfig {
    const service = typeof obj.service === 'string' ? obj.service : '';
    const hashHeader = typeof obj.hashHeader === 'string' ? obj.hashHeader.toLowerCase() : 'x-hash-key';
    return new DiscoveryLoadBalancingConfig(service, hashHeader);
  }
}

interface Child {
  endpoint: Endpoint;
  leaf: GrpcLeafLoadBalancer;
}

/**
 * The `switchyard` LB policy: one pick-first leaf (one subchannel) per
 * endpoint, kept across endpoint-set updates (only joins and leaves touch
 * subchannels). It does not balance by itself: every call is picked by the
 * service's own ServiceClient picker — the same picker, load records and
 * random source that `call()` and `getChannel()` use — and the leaf of the
 * picked endpoint carries the call. One balancing path per service.
 */
export class DiscoveryLoadBalancer implements GrpcLoadBalancer {
  private readonly children = new Map<string, Child>();
  private readonly helper: GrpcChannelControlHelper;
  private config: DiscoveryLoadBalancingConfig | undefined;
  private client: ServiceClient | undefined;
  private slots: CallSlots | undefined;
  private paused = false;
  private lastError = '';
  private note = '';
  private currentState: ConnectivityState = ConnectivityState.IDLE;

  constructor(private readonly parent: GrpcChannelControlHelper) {
    this.helper = createChildChannelControlHelper(parent, {
      updateState: (_state, _picker, error) => {
        if (error) this.lastError = error;
        this.update();
      },
      createSubchannel: (address, args) => {
        // The registry may keep listing an endpoint that is restarting (DNS,
        // xDS, a TTL not yet expired): cap reconnect backoff (gRPC's default
        // grows to 120 s) so it is used again within a second of coming back.
        const maxBackoff = Math.min(
          Number(args['grpc.max_reconnect_backoff_ms'] ?? MAX_RECONNECT_BACKOFF_MS),
          MAX_RECONNECT_BACKOFF_MS,
        );
        const subchannel = parent.createSubchannel(address, {
          ...args,
          'grpc.max_reconnect_backoff_ms': maxBackoff,
          'grpc.initial_reconnect_backoff_ms': Math.min(
            Number(args['grpc.initial_reconnect_backoff_ms'] ?? maxBackoff),
            maxBackoff,
          ),
        });
        // Leaves are only made for endpoints the registry just announced. The
        // channel-wide subchannel pool may hold one for this address still in
        // reconnect backoff (an earlier process on the same port): the
        // registry saying "it is up" is reason enough to try now.
        resetSubchannelBackoff(subchannel);
        return subchannel;
      },
    });
  }

  updateAddressList(
    endpointList: GrpcStatusOr<GrpcEndpoint[]>,
    lbConfig: GrpcTypedLoadBalancingConfig,
    options: ChannelOptions,
    note: string,
  ): boolean {
    if (!(lbConfig instanceof DiscoveryLoadBalancingConfig)) return false;
    this.config = lbConfig;
    this.note = note;
    if (!endpointList.ok) {
      if (this.children.size === 0) {
        this.publish(
          ConnectivityState.TRANSIENT_FAILURE,
          new UnavailablePicker(endpointList.error),
          endpointList.error.details,
        );
      }
      return true;
    }
    const attribute = options[LB_ATTRIBUTE_KEY] as EndpointSetAttribute | undefined;
    if (!attribute) {
      const details = `the '${LB_POLICY_NAME}' LB policy balances only discovery: targets (service '${lbConfig.service}')`;
      this.publish(ConnectivityState.TRANSIENT_FAILURE, new UnavailablePicker({ details }), details);
      return true;
    }
    if (this.client !== attribute.client) this.slots = new CallSlots(attribute.client);
    this.client = attribute.client;
    const leafOptions: ChannelOptions = { ...options };
    delete leafOptions[LB_ATTRIBUTE_KEY];
    const wanted = new Set<string>();
    this.paused = true;
    for (const endpoint of attribute.set.endpoints) {
      wanted.add(endpoint.address);
      const existing = this.children.get(endpoint.address);
      if (existing) {
        existing.endpoint = endpoint;
        continue;
      }
      const leaf = new LeafLoadBalancer(
        { addresses: [{ host: endpoint.host, port: endpoint.port }] },
        this.helper,
        leafOptions,
        note,
      );
      this.children.set(endpoint.address, { endpoint, leaf });
      leaf.startConnecting();
    }
    for (const [address, child] of this.children) {
      if (!wanted.has(address)) {
        child.leaf.destroy();
        this.children.delete(address);
      }
    }
    this.paused = false;
    this.update();
    return true;
  }

  exitIdle(): void {
    for (const child of this.children.values()) child.leaf.exitIdle();
  }

  resetBackoff(): void {}

  destroy(): void {
    for (const child of this.children.values()) child.leaf.destroy();
    this.children.clear();
  }

  getTypeName(): string {
    return LB_POLICY_NAME;
  }

  private update(): void {
    if (this.paused || !this.config || !this.client) return;
    const ready = new Map<string, GrpcPicker>();
    const readyList: Array<{ endpoint: Endpoint; leaf: GrpcPicker }> = [];
    const connecting = new Set<string>();
    for (const child of this.children.values()) {
      const state = child.leaf.getConnectivityState();
      if (state === ConnectivityState.READY) {
        const leaf = child.leaf.getPicker();
        ready.set(child.endpoint.key, leaf);
        readyList.push({ endpoint: child.endpoint, leaf });
      } else if (state === ConnectivityState.CONNECTING) {
        connecting.add(child.endpoint.key);
      } else if (state === ConnectivityState.IDLE) {
        // Keep every endpoint connected, as round_robin does.
        child.leaf.exitIdle();
        connecting.add(child.endpoint.key);
      }
    }
    if (ready.size > 0) {
      const picker = new DiscoveryPicker(this.client, ready, readyList, connecting, this.config.hashHeader, this.slots);
      this.publish(ConnectivityState.READY, picker, null);
    } else if (connecting.size > 0) {
      this.publish(ConnectivityState.CONNECTING, new QueuePicker(this), null);
    } else {
      const details =
        this.children.size === 0
          ? this.note || `No endpoints for service '${this.config.service}'`
          : `No endpoint of '${this.config.service}' is reachable; last error: ${this.lastError}`;
      this.publish(ConnectivityState.TRANSIENT_FAILURE, new UnavailablePicker({ details }), details);
    }
  }

  private publish(state: ConnectivityState, picker: GrpcPicker, error: string | null): void {
    if (state !== ConnectivityState.READY && this.currentState === ConnectivityState.READY) {
      this.parent.requestReresolution();
    }
    this.currentState = state;
    this.parent.updateState(state, picker, error);
  }
}

function resetSubchannelBackoff(subchannel: { getRealSubchannel?: () => unknown }): void {
  const real = subchannel.getRealSubchannel?.() as { resetBackoff?: () => void } | undefined;
  real?.resetBackoff?.();
}
