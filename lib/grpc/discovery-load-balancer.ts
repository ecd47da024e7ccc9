import {
  connectivityState as ConnectivityState,
  type ChannelOptions,
  type Metadata,
  type status as Status,
} from '@grpc/grpc-js';
import { endpointOf, type Endpoint } from '../core/endpoint.js';
import { createServiceInstance } from '../core/service-instance.js';
import type { BalancingStrategy, PickContext, Picker } from '../balancing/picker.js';
import { onCallEnd, onCallStart, LoadTracker } from '../balancing/endpoint-load.js';
import { getStrategy } from '../balancing/strategy-registry.js';
import {
  createChildChannelControlHelper,
  LB_ATTRIBUTE_KEY,
  LeafLoadBalancer,
  PickResultType,
  QueuePicker,
  UnavailablePicker,
  type GrpcChannelControlHelper,
  type GrpcEndpoint,
  type GrpcLeafLoadBalancer,
  type GrpcLoadBalancer,
  type GrpcPicker,
  type GrpcPickArgs,
  type GrpcPickResult,
  type GrpcStatusOr,
  type GrpcTypedLoadBalancingConfig,
} from './grpc-adapter.js';
import type { EndpointSetAttribute } from './discovery-resolver.js';
import type { ServiceClient } from './service-client.js';
import { callOutcome } from '../health/outlier-detector.js';

export const LB_POLICY_NAME = 'switchyard';

/** Longest wait between reconnect attempts to a listed endpoint. */
export const MAX_RECONNECT_BACKOFF_MS = 1_000;

/** LB config carried in the resolver's service config. */
export class DiscoveryLoadBalancingConfig implements GrpcTypedLoadBalancingConfig {
  constructor(
    readonly service: string,
    readonly hashHeader: string,
    /** Only used when the resolver is not ours (no ServiceClient attached). */
    readonly strategy: string,
  ) {}

  getLoadBalancerName(): string {
    return LB_POLICY_NAME;
  }

  toJsonObject(): object {
    return { [LB_POLICY_NAME]: { service: this.service, hashHeader: this.hashHeader, strategy: this.strategy } };
  }

  static createFromJson(obj: Record<string, unknown>): DiscoveryLoadBalancingConfig {
    const service = typeof obj.service === 'string' ? obj.service : '';
    const hashHeader = typeof obj.hashHeader === 'string' ? obj.hashHeader.toLowerCase() : 'x-hash-key';
    const strategy = typeof obj.strategy === 'string' ? obj.strategy : 'round_robin';
    return new DiscoveryLoadBalancingConfig(service, hashHeader, strategy);
  }
}

interface Child {
  endpoint: Endpoint;
  leaf: GrpcLeafLoadBalancer;
}

/**
 * The `switchyard` LB policy: one pick-first leaf (one subchannel) per
 * endpoint, kept across endpoint-set updates (only joins and leaves touch
 * subchannels), and a picker that runs the service's strategy over the
 * READY endpoints for every call, feeding in-flight and latency back to it.
 */
export class DiscoveryLoadBalancer implements GrpcLoadBalancer {
  private readonly children = new Map<string, Child>();
  private readonly helper: GrpcChannelControlHelper;
  private config: DiscoveryLoadBalancingConfig | undefined;
  private attribute: EndpointSetAttribute | undefined;
  private fallbackLoads = new LoadTracker();
  private previousPicker: Picker | undefined;
  private paused = false;
  private lastError = '';
  private note = '';
  private currentState: ConnectivityState = ConnectivityState.IDLE;

  constructor(private readonly parent: GrpcChannelControlHelper) {
    this.helper = createChildChannelControlHelper(parent, {
      updateState: (state, _picker, error) => {
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
    this.attribute = options[LB_ATTRIBUTE_KEY] as EndpointSetAttribute | undefined;
    const endpoints = this.attribute?.set.endpoints ?? endpointList.value.map(toEndpoint);
    const leafOptions: ChannelOptions = { ...options };
    delete leafOptions[LB_ATTRIBUTE_KEY];
    const wanted = new Set<string>();
    this.paused = true;
    for (const endpoint of endpoints) {
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
    if (this.paused || !this.config) return;
    // Pickers span READY and CONNECTING endpoints so that a hash key keeps its
    // endpoint while connections come up (the pick then queues briefly);
    // endpoints in TRANSIENT_FAILURE are left out until they recover.
    const usable: Child[] = [];
    let ready = 0;
    for (const child of this.children.values()) {
      const state = child.leaf.getConnectivityState();
      if (state === ConnectivityState.READY) {
        ready++;
        usable.push(child);
      } else if (state === ConnectivityState.CONNECTING) usable.push(child);
      else if (state === ConnectivityState.IDLE) {
        // Keep every endpoint connected, as round_robin does.
        child.leaf.exitIdle();
        usable.push(child);
      }
    }
    const connecting = usable.length - ready;
    if (ready > 0) {
      const client = this.attribute?.client;
      const strategy: BalancingStrategy = client ? client.balancingStrategy : getStrategy(this.config.strategy);
      const loads = client ? client.loadTracker : this.fallbackLoads;
      const picker = strategy.build(
        usable.map((c) => c.endpoint),
        { loads, random: Math.random, previous: this.previousPicker },
      );
      this.previousPicker = picker;
      const leafPickers = new Map<string, GrpcPicker>();
      for (const c of usable) {
        if (c.leaf.getConnectivityState() === ConnectivityState.READY)
          leafPickers.set(c.endpoint.key, c.leaf.getPicker());
      }
      this.publish(
        ConnectivityState.READY,
        new DiscoveryPicker(picker, leafPickers, this.config.hashHeader, loads, client),
        null,
      );
    } else if (connecting > 0) {
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
    if (state !== ConnectivityState.READY && this.currentState === ConnectivityState.READY)
      this.parent.requestReresolution();
    this.currentState = state;
    this.parent.updateState(state, picker, error);
  }
}

/**
 * Per-call pick: the strategy chooses among READY endpoints (hash key from
 * the configured metadata header), the endpoint's leaf supplies the
 * subchannel, and the call's start and end feed the load records.
 */
class DiscoveryPicker implements GrpcPicker {
  private readonly context: PickContext = { key: undefined };

  constructor(
    private readonly picker: Picker,
    private readonly leaves: Map<string, GrpcPicker>,
    private readonly hashHeader: string,
    private readonly loads: LoadTracker,
    /** The service's client, when the resolver is ours: picks and call outcomes feed its metrics and outlier detection. */
    private readonly client?: ServiceClient,
  ) {}

  pick(args: GrpcPickArgs): GrpcPickResult {
    const values = args.metadata.get(this.hashHeader);
    const key = values.length > 0 ? String(values[0]) : undefined;
    this.context.key = key;
    let endpoint = this.picker.pick(this.context);
    let leaf = endpoint && this.leaves.get(endpoint.key);
    // A keyless pick that landed on a still-connecting endpoint tries again;
    // a keyed one waits for its endpoint (QUEUE) so the key does not move.
    for (let i = 0; i < 3 && endpoint && !leaf && key === undefined; i++) {
      endpoint = this.picker.pick(this.context);
      leaf = endpoint && this.leaves.get(endpoint.key);
    }
    if (!endpoint || !leaf) return QUEUE_RESULT;
    const result = leaf.pick(args);
    if (result.pickResultType !== PickResultType.COMPLETE) return result;
    const load = this.loads.load(endpoint);
    const client = this.client;
    client?.recordPick(endpoint);
    let started = 0;
    return {
      ...result,
      onCallStarted: () => {
        started = performance.now();
        onCallStart(load);
      },
      onCallEnded: (code: Status, _details: string, _metadata: Metadata) => {
        const now = performance.now();
        onCallEnd(load, started ? now - started : -1, now);
        // Passive outlier detection: transport failures count against the endpoint, application codes do not.
        client?.reportCallOutcome(endpoint, callOutcome(code));
      },
    };
  }
}

const QUEUE_RESULT: GrpcPickResult = {
  pickResultType: PickResultType.QUEUE,
  subchannel: null,
  status: null,
  onCallStarted: null,
  onCallEnded: null,
};

function resetSubchannelBackoff(subchannel: { getRealSubchannel?: () => unknown }): void {
  const real = subchannel.getRealSubchannel?.() as { resetBackoff?: () => void } | undefined;
  real?.resetBackoff?.();
}

function toEndpoint(endpoint: GrpcEndpoint): Endpoint {
  const address = endpoint.addresses[0] as { host: string; port: number };
  return endpointOf(
    createServiceInstance({
      service: 'unknown',
      host: address.host,
      port: address.port,
      id: `${address.host}:${address.port}`,
    }),
  );
}
