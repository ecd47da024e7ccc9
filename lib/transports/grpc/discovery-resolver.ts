import { status } from '@grpc/grpc-js';
import type { Subscription } from 'rxjs';
import { NoEndpointsError } from '../../core/errors.js';
import type { EndpointSet } from '../../core/endpoint-set.js';
import type { ServiceClient } from '../../client/service-client.js';
import { discoveryTargets, type DiscoveryTarget } from './discovery-targets.js';
import {
  LB_ATTRIBUTE_KEY,
  statusOrFromError,
  statusOrFromValue,
  type GrpcEndpoint,
  type GrpcResolver,
  type GrpcResolverListener,
  type GrpcUri,
} from './grpc-adapter.js';
import { serviceConfigFor } from './service-config.js';

/** What the resolver hands the LB policy along with the addresses. */
export interface EndpointSetAttribute {
  set: EndpointSet;
  client: ServiceClient;
}

/**
 * grpc-js resolver for `discovery:///<service>` (default Discovery) and
 * `discovery://<name>/<service>` (a named one). It follows the service's
 * endpoint set and gives grpc-js every change, with a service config that
 * selects the `switchyard` LB policy and gRPC's retry policy.
 */
export class DiscoveryResolver implements GrpcResolver {
  private readonly service: string;
  private readonly authority: string;
  private subscription: Subscription | undefined;
  private waitTimer: NodeJS.Timeout | undefined;
  private gotFirstSet = false;
  private client: ServiceClient | undefined;
  private destroyed = false;

  constructor(
    target: GrpcUri,
    private readonly listener: GrpcResolverListener,
  ) {
    this.service = target.path.replace(/^\/+/, '');
    this.authority = target.authority ?? '';
  }

  static getDefaultAuthority(target: GrpcUri): string {
    return target.path.replace(/^\/+/, '');
  }

  updateResolution(): void {
    this.destroyed = false;
    if (this.subscription) {
      // grpc-js asks again when a connection drops: let the backend re-read early (DNS does).
      this.client?.refreshEndpoints();
      return;
    }
    if (!this.service) {
      queueMicrotask(() => this.fail(`invalid target discovery://${this.authority}/: expected discovery:///<service>`));
      return;
    }
    let target: DiscoveryTarget | undefined;
    this.subscription = discoveryTargets.changes$.subscribe(() => {
      if (target || this.destroyed) return;
      target = discoveryTargets.get(this.authority);
      if (!target) return;
      const chosen = target;
      // The target table replays synchronously; grpc-js wants no callback during updateResolution.
      queueMicrotask(() => this.follow(chosen));
    });
    // Bound the wait for a Discovery and its first endpoint set.
    const bound = discoveryTargets.get(this.authority)?.firstSetTimeoutMs ?? 10_000;
    this.waitTimer = setTimeout(() => {
      if (this.gotFirstSet || this.destroyed) return;
      const why = target
        ? new NoEndpointsError(this.service, 'pending', `no endpoint set within ${bound} ms`).message
        : `No Discovery is configured for target discovery://${this.authority}/${this.service} (import DiscoveryModule, or Discovery.create(...).serveGrpcTargets())`;
      this.fail(why);
    }, bound);
    this.waitTimer.unref?.();
  }

  destroy(): void {
    this.destroyed = true;
    this.subscription?.unsubscribe();
    this.subscription = undefined;
    clearTimeout(this.waitTimer);
    this.gotFirstSet = false;
  }

  private follow(target: DiscoveryTarget): void {
    if (this.destroyed) return;
    const client = target.clientFor(this.service);
    this.client = client;
    const retry = client.retryPolicy;
    const serviceConfig = statusOrFromValue(
      serviceConfigFor({ service: this.service, authority: this.authority, hashHeader: target.hashHeader }, retry, {
        settings: client.overload.hedging,
        currentDelayMs: client.hedgeDelayMs(),
      }),
    );
    const inner = client.endpoints$.subscribe((set) => {
      if (this.destroyed) return;
      this.gotFirstSet = true;
      clearTimeout(this.waitTimer);
      const endpoints: GrpcEndpoint[] = set.endpoints.map((e) => ({ addresses: [{ host: e.host, port: e.port }] }));
      const attribute: EndpointSetAttribute = { set, client };
      const note =
        set.size === 0
          ? new NoEndpointsError(
              this.service,
              set.state === 'stale' ? 'unreachable' : set.state === 'empty' ? 'empty' : 'filtered',
              set.reason,
            ).message
          : '';
      this.listener(statusOrFromValue(endpoints), { [LB_ATTRIBUTE_KEY]: attribute }, serviceConfig, note);
    });
    this.subscription?.add(inner);
  }

  private fail(details: string): void {
    if (this.destroyed) return;
    this.listener(statusOrFromError({ code: status.UNAVAILABLE, details }), {}, null, details);
  }
}
