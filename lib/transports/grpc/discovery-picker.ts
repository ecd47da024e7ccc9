import { Metadata as GrpcMetadata, status, type Metadata, type status as Status } from '@grpc/grpc-js';
import type { Endpoint } from '../../core/endpoint.js';
import type { OverloadedError } from '../../core/errors.js';
import type { EndpointLoad, PickContext } from '../../balancing/picker.js';
import type { ServiceClient } from '../../client/service-client.js';
import { PickResultType, type GrpcPicker, type GrpcPickArgs, type GrpcPickResult } from './grpc-adapter.js';
import { grpcOutcome } from './grpc-outcome.js';

/** Picks again this many times when the picked endpoint has no ready subchannel. */
const REPICKS = 3;

/**
 * Per-call pick: the ServiceClient's picker chooses (hash key from the
 * configured metadata header), the endpoint's leaf supplies the subchannel.
 * An endpoint whose subchannel is still connecting keeps a keyed call (it
 * waits, so the key does not move); otherwise a pick that lands on an
 * endpoint without a ready subchannel picks again, then falls back to the
 * ready endpoints in turn. The call's start and end feed the client's load
 * records and outlier detection through pooled call slots.
 */
export class DiscoveryPicker implements GrpcPicker {
  private readonly context: PickContext = { key: undefined };
  private fallback = 0;

  constructor(
    private readonly client: ServiceClient,
    private readonly ready: ReadonlyMap<string, GrpcPicker>,
    private readonly readyList: ReadonlyArray<{ endpoint: Endpoint; leaf: GrpcPicker }>,
    private readonly connecting: ReadonlySet<string>,
    private readonly hashHeader: string,
    private readonly slots: CallSlots = new CallSlots(client),
  ) {
    this.readsKey = client.balancingStrategy.usesKey !== false;
  }

  private readonly readsKey: boolean;

  pick(args: GrpcPickArgs): GrpcPickResult {
    // Strategies that ignore keys are spared the header lookup (it allocates).
    const values = this.readsKey ? args.metadata.get(this.hashHeader) : NO_VALUES;
    const key = values.length > 0 ? String(values[0]) : undefined;
    const context = this.context;
    context.key = key;
    let endpoint = this.client.picker.pick(context);
    for (let i = 0; endpoint !== undefined; i++) {
      const leaf = this.ready.get(endpoint.key);
      if (leaf !== undefined) return this.complete(leaf, endpoint, args);
      if (key !== undefined && this.connecting.has(endpoint.key)) return QUEUE_RESULT;
      if (i === REPICKS) break;
      // A keyed call whose endpoint failed moves to a derived key: the same
      // key always lands on the same replacement.
      context.key = key === undefined ? undefined : `${key}#${i + 1}`;
      endpoint = this.client.picker.pick(context);
    }
    const list = this.readyList;
    if (list.length === 0) return QUEUE_RESULT;
    const next = list[this.fallback++ % list.length];
    return this.complete(next.leaf, next.endpoint, args);
  }

  private complete(leaf: GrpcPicker, endpoint: Endpoint, args: GrpcPickArgs): GrpcPickResult {
    const refusal = this.client.refusal(endpoint);
    if (refusal !== undefined) return this.refused(refusal, args);
    return this.completeAdmitted(leaf, endpoint, args);
  }

  private completeAdmitted(leaf: GrpcPicker, endpoint: Endpoint, args: GrpcPickArgs): GrpcPickResult {
    const result = leaf.pick(args);
    if (result.pickResultType !== PickResultType.COMPLETE) return result;
    // The leaf's pick result is a fresh object per pick: completing it in place saves a copy per call.
    const slot = this.slots.acquire(endpoint);
    result.onCallStarted = slot.started;
    result.onCallEnded = slot.ended;
    return result;
  }

  /** An endpoint at its own limit is passed over for a ready one that is not; any other refusal fails the call. */
  private refused(refusal: OverloadedError, args: GrpcPickArgs): GrpcPickResult {
    if (refusal.reason === 'max-requests-per-endpoint') {
      for (const { endpoint, leaf } of this.readyList) {
        if (this.client.refusal(endpoint) === undefined) return this.completeAdmitted(leaf, endpoint, args);
      }
    }
    return refusedResult(refusal);
  }
}

/**
 * A call the client's circuit breaker or adaptive throttling refuses fails at
 * once with RESOURCE_EXHAUSTED and the OverloadedError's message (grpc-js
 * drops the pick: no queueing, no retry).
 */
function refusedResult(refusal: OverloadedError): GrpcPickResult {
  return {
    pickResultType: PickResultType.DROP,
    subchannel: null,
    status: { code: status.RESOURCE_EXHAUSTED, details: refusal.message, metadata: new GrpcMetadata() },
    onCallStarted: null,
    onCallEnded: null,
  };
}

/**
 * The per-call callbacks grpc-js gets, pooled: each slot's two functions
 * are made once and reused call after call, so tracking a call allocates
 * nothing. grpc-js may drop a completed pick before the call starts (and
 * then calls neither): such a slot is simply not returned to the pool, and
 * the call is counted only once it has started.
 */
export class CallSlots {
  private readonly free: CallSlot[] = [];

  constructor(private readonly client: ServiceClient) {}

  acquire(endpoint: Endpoint): CallSlot {
    const slot = this.free.pop() ?? new CallSlot(this.client, this.free);
    slot.endpoint = endpoint;
    return slot;
  }
}

class CallSlot {
  endpoint: Endpoint | undefined;
  private load: EndpointLoad | undefined;
  private startedAt = 0;

  constructor(
    private readonly client: ServiceClient,
    private readonly pool: CallSlot[],
  ) {}

  readonly started = (): void => {
    this.load = this.client.callStarted(this.endpoint!);
    this.startedAt = performance.now();
  };

  readonly ended = (code: Status, _details: string, _metadata: Metadata): void => {
    const load = this.load;
    const endpoint = this.endpoint;
    this.load = undefined;
    this.endpoint = undefined;
    if (load === undefined || endpoint === undefined) return;
    this.client.callEnded(endpoint, load, performance.now() - this.startedAt, grpcOutcome(code));
    if (this.pool.length < MAX_FREE_SLOTS) this.pool.push(this);
  };
}

/** Free slots kept per picker lineage (about the concurrency of the busiest moment). */
const MAX_FREE_SLOTS = 1024;

const NO_VALUES: readonly unknown[] = [];

export const QUEUE_RESULT: GrpcPickResult = {
  pickResultType: PickResultType.QUEUE,
  subchannel: null,
  status: null,
  onCallStarted: null,
  onCallEnded: null,
};
