import {
  Inject,
  Injectable,
  Optional,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
  type OnModuleDestroy,
} from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { waitForTcp } from '../core/tcp.js';
import type { Discovery } from '../discovery/discovery.js';
import type { ServiceRegistry } from '../discovery/service-registry.js';
import { DISCOVERY_INSTANCE, SERVICE_REGISTRY } from './discovery.constants.js';
import { GrpcHealthService } from '../health/grpc-health.service.js';
import { ServingStatus } from '../health/grpc-health-protocol.js';
import { shutdownGracefully } from '../health/graceful-shutdown.js';
import { closeConnectionsAfterEachResponse, listeningHttpServer } from './http-drain.js';

/**
 * Registers the app's instance once its advertised address accepts TCP
 * (a gRPC server, or the HTTP server of `NestFactory.create` on Express or
 * Fastify); when shutdown starts (before the server stops accepting) turns
 * the app's grpc.health.v1 status NOT_SERVING, makes HTTP responses say
 * `Connection: close` (keep-alive clients move on), deregisters, waits the
 * drain delay while still serving; closes everything after the server closed.
 */
@Injectable()
export class DiscoveryLifecycle implements OnApplicationBootstrap, OnModuleDestroy, OnApplicationShutdown {
  private readonly abort = new AbortController();
  private registering: Promise<void> | undefined;

  constructor(
    @Inject(DISCOVERY_INSTANCE) private readonly discovery: Discovery,
    @Inject(SERVICE_REGISTRY) private readonly self: ServiceRegistry,
    private readonly health: GrpcHealthService,
    @Optional() private readonly adapterHost?: HttpAdapterHost,
  ) {}

  onApplicationBootstrap(): void {
    const instance = this.self.instance();
    const { registration } = this.discovery.config;
    const logger = this.discovery.logger;
    if (!instance) return;
    // Health checks may name the service (as switchyard's own checks can, via health_check.service).
    if (this.health.getStatus(instance.service) === undefined)
      this.health.setStatus(instance.service, ServingStatus.SERVING);
    if (!registration.enabled) {
      logger.log(`self-registration disabled by configuration; '${instance.service}' is not registered`);
      return;
    }
    if (this.discovery.registry.readOnly) {
      logger.log(
        `backend '${this.discovery.registry.backend}' is read-only: skipping self-registration of '${instance.service}'`,
      );
      return;
    }
    // Nest opens the port after bootstrap hooks, so registration waits in the background.
    this.registering = (async () => {
      const host = instance.host === '0.0.0.0' || instance.host === '::' ? '127.0.0.1' : instance.host;
      const listening = await waitForTcp(host, instance.port, registration.awaitListenMs, this.abort.signal);
      if (this.abort.signal.aborted) return;
      if (!listening) {
        logger.error(
          `advertised address ${instance.address} of '${instance.service}' did not accept TCP connections within ${registration.awaitListenMs} ms; not registered (check instance.host/port)`,
        );
        return;
      }
      await this.self.register();
    })().catch((error: Error) => logger.error(`registration of '${instance.service}' failed: ${error.message}`));
  }

  async onModuleDestroy(): Promise<void> {
    this.abort.abort();
    await this.registering;
    const { registration } = this.discovery.config;
    const deregister =
      registration.deregisterOnShutdown && (this.self.state === 'registered' || this.self.state === 'lost');
    // A read-only backend (dns, kubernetes) lists the instance by the platform's rules: the drain
    // gives a readinessProbe on grpc.health.v1 time to see NOT_SERVING and callers time to move away.
    const listedByPlatform = this.discovery.registry.readOnly && this.self.instance() !== undefined;
    // From now on keep-alive HTTP clients get `Connection: close` with their answer, and reconnect elsewhere.
    if (deregister) {
      const server = listeningHttpServer(this.adapterHost?.httpAdapter);
      if (server) closeConnectionsAfterEachResponse(server);
    }
    // NOT_SERVING -> deregistered -> drain; Nest closes the servers after this hook.
    await shutdownGracefully({
      health: this.health,
      deregister: deregister ? () => this.self.deregister() : undefined,
      drainMs: deregister || listedByPlatform ? registration.drainMs : 0,
      logger: this.discovery.logger,
    });
  }

  async onApplicationShutdown(): Promise<void> {
    this.abort.abort();
    await this.discovery.close();
  }
}
