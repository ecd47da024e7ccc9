import * as grpc from '@grpc/grpc-js';
import type { Subscription } from 'rxjs';
import type { PickContext } from '../../balancing/picker.js';
import type { CallOptions } from '../../client/client-options.js';
import type { CallAttempt, GrpcClientTransport } from '../../client/client-transports.js';
import { resolveRetryOptions } from '../../client/retry-policy.js';
import { runWithRetries, type AttemptPlan } from '../../client/retry-loop.js';
import { runHedged } from '../../client/overload/hedging.js';
import type { ServiceClient } from '../../client/service-client.js';
import { ChannelPool } from './channel-pool.js';
import { grpcOutcome, grpcRetryable } from './grpc-outcome.js';
import { ProtoServices } from './proto-services.js';

/**
 * One attempt as `call()`'s function sees it. An attempt that cannot be
 * aborted (no hedging with cancel) gets its own never-aborted signal, made
 * only if the function reads it: one shared signal collected the 'abort'
 * listener every call added and never removed (a leak, and each add slower
 * than the last: 5 ms of CPU per call after a few minutes).
 */
class GrpcAttempt implements CallAttempt {
  private ownSignal: AbortSignal | undefined;

  constructor(
    readonly channel: grpc.Channel,
    readonly endpoint: CallAttempt['endpoint'],
    readonly deadline: Date | undefined,
    readonly attempt: number,
    private readonly given: AbortSignal | undefined,
  ) {}

  get signal(): AbortSignal {
    return this.given ?? (this.ownSignal ??= new AbortController().signal);
  }
}

/** What the gRPC side of a client needs from its Discovery. */
export interface GrpcTransportDeps {
  /** `discovery://<discovery-id>/<service>`. */
  balancedTarget: string;
  /** Makes `balancedTarget` resolvable in grpc-js (installs the resolver and LB policy once). */
  serveTarget(): void;
}

/**
 * The gRPC transport of one ServiceClient: a cached channel per endpoint
 * (opened on first use, following the served set), `call()` with the shared
 * retry loop, and stubs over one balanced `discovery:` channel whose LB
 * policy picks from the same picker.
 */
export class GrpcChannels implements GrpcClientTransport {
  private readonly pool: ChannelPool;
  private readonly stubs = new Map<grpc.ServiceClientConstructor, grpc.Client>();
  private readonly services: ProtoServices;
  private readonly subscription: Subscription;

  constructor(
    private readonly client: ServiceClient,
    private readonly deps: GrpcTransportDeps,
  ) {
    this.pool = new ChannelPool(client.options);
    this.services = new ProtoServices(client.service, client.options.proto);
    this.subscription = client.endpoints$.subscribe((set) => this.pool.sync(set));
  }

  get balancedTarget(): string {
    return this.deps.balancedTarget;
  }

  async getChannel(context?: PickContext): Promise<grpc.Channel> {
    if (!this.client.hasEndpoints()) await this.client.ready();
    return this.pool.get(this.client.pick(context), this.client.snapshot());
  }

  getService<T = grpc.Client>(service: string | grpc.ServiceClientConstructor): T {
    const Constructor = typeof service === 'string' ? this.services.get(service) : service;
    let stub = this.stubs.get(Constructor);
    if (!stub) {
      this.deps.serveTarget();
      const options = this.client.options;
      stub = new Constructor(
        this.deps.balancedTarget,
        options.credentials ?? grpc.credentials.createInsecure(),
        options.channelOptions ?? {},
      );
      this.stubs.set(Constructor, stub);
    }
    return stub as T;
  }

  call<T>(fn: (attempt: CallAttempt) => Promise<T>, options: CallOptions = {}): Promise<T> {
    const retry =
      options.retry !== undefined ? resolveRetryOptions(options.retry, 'call.retry') : this.client.retryPolicy;
    const plan: AttemptPlan<T> = {
      run: (endpoint, attempt, deadline, _call, signal) =>
        fn(new GrpcAttempt(this.pool.get(endpoint, this.client.snapshot()), endpoint, deadline, attempt, signal)),
      classify: grpcOutcome,
      retryable: grpcRetryable,
    };
    const hedging = this.client.overload.hedging;
    if (options.idempotent && hedging.delayMs !== 0) {
      return runHedged(this.client, plan, retry, hedging.maxAttempts, options, hedging.cancel);
    }
    return runWithRetries(this.client, plan, retry, options);
  }

  close(): void {
    this.subscription.unsubscribe();
    this.pool.close();
    for (const stub of this.stubs.values()) stub.close();
    this.stubs.clear();
  }
}
