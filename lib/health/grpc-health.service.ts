import * as grpc from '@grpc/grpc-js';
import {
  HEALTH_SERVICE_DEFINITION,
  ServingStatus,
  type HealthCheckRequest,
  type HealthCheckResponse,
} from './grpc-health-protocol.js';

type WatchStream = grpc.ServerWritableStream<HealthCheckRequest, HealthCheckResponse>;

/** The server side: anything with grpc-js's `addService` (a grpc.Server, or what Nest's `onLoadPackageDefinition` hands over). */
export interface HealthServiceHost {
  addService(service: grpc.ServiceDefinition, implementation: grpc.UntypedServiceImplementation): void;
}

/**
 * This app's own `grpc.health.v1.Health` service: `Check` and `Watch` per
 * service name (`''` is the whole server). Starts `SERVING`; on shutdown
 * {@link GrpcHealthService.setNotServing} flips every name to `NOT_SERVING`
 * and waits until open `Watch` streams have been sent the change, so
 * watchers learn it before the instance leaves the registry.
 *
 * @example
 * const health = new GrpcHealthService(); health.addToServer(server); health.setStatus('greeter.Greeter', ServingStatus.SERVING);
 */
export class GrpcHealthService {
  private readonly statuses = new Map<string, ServingStatus>();
  private readonly watchers = new Map<string, Set<WatchStream>>();

  constructor(initial: Record<string, ServingStatus> = { '': ServingStatus.SERVING }) {
    for (const [service, status] of Object.entries(initial)) this.statuses.set(service, status);
  }

  /** The status `Check` answers for `service` (undefined: unknown, answered NOT_FOUND). */
  getStatus(service = ''): ServingStatus | undefined {
    return this.statuses.get(service);
  }

  /** Sets a service's status and tells its watchers. */
  setStatus(service: string, status: ServingStatus): void {
    void this.update(service, status);
  }

  /**
   * Every known service turns NOT_SERVING (the shutdown sequence's first
   * step); resolves once the change was written to every open Watch stream,
   * or after `timeoutMs`.
   */
  async setNotServing(timeoutMs = 1_000): Promise<void> {
    const writes = [...this.statuses.keys()].map((service) => this.update(service, ServingStatus.NOT_SERVING));
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(writes), new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
    clearTimeout(timer);
  }

  /** Every known service back to SERVING (e.g. after a cancelled drain). */
  setServing(): void {
    for (const service of this.statuses.keys()) this.setStatus(service, ServingStatus.SERVING);
  }

  /**
   * Adds the Health service to a grpc-js server. Returns false (and adds
   * nothing) when the server already serves `grpc.health.v1.Health`: the
   * app's own implementation wins.
   *
   * @example
   * NestFactory.createMicroservice(App, { transport: Transport.GRPC, options: { ..., onLoadPackageDefinition: (_pkg, server) => health.addToServer(server) } });
   */
  addToServer(server: HealthServiceHost): boolean {
    try {
      server.addService(HEALTH_SERVICE_DEFINITION, this.implementation());
      return true;
    } catch (error) {
      if (/already provided/i.test((error as Error).message)) return false;
      throw error;
    }
  }

  /** Ends every open Watch stream (the server is going away). */
  close(): void {
    for (const set of this.watchers.values()) for (const call of set) call.end();
    this.watchers.clear();
  }

  /** The handlers, for servers built by other means. */
  implementation(): grpc.UntypedServiceImplementation {
    return {
      Check: (
        call: grpc.ServerUnaryCall<HealthCheckRequest, HealthCheckResponse>,
        callback: grpc.sendUnaryData<HealthCheckResponse>,
      ) => {
        const status = this.statuses.get(call.request.service);
        if (status === undefined)
          callback({ code: grpc.status.NOT_FOUND, details: `unknown service '${call.request.service}'` });
        else callback(null, { status });
      },
      Watch: (call: WatchStream) => {
        const service = call.request.service;
        let set = this.watchers.get(service);
        if (!set) this.watchers.set(service, (set = new Set()));
        set.add(call);
        const forget = () => {
          set.delete(call);
          if (set.size === 0 && this.watchers.get(service) === set) this.watchers.delete(service);
        };
        call.on('cancelled', forget);
        call.on('close', forget);
        call.on('error', forget);
        call.write({ status: this.statuses.get(service) ?? ServingStatus.SERVICE_UNKNOWN });
      },
    };
  }

  private update(service: string, status: ServingStatus): Promise<void> {
    const previous = this.statuses.get(service);
    this.statuses.set(service, status);
    if (previous === status) return Promise.resolve();
    const calls = [...(this.watchers.get(service) ?? [])];
    return Promise.all(
      calls.map(
        (call) =>
          new Promise<void>((resolve) => {
            try {
              call.write({ status }, () => resolve());
            } catch {
              resolve();
            }
          }),
      ),
    ).then(() => undefined);
  }
}
