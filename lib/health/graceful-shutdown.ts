import type { DiscoveryLogger } from '../registry/registry.interface.js';
import type { GrpcHealthService } from './grpc-health.service.js';

/** The steps of a graceful shutdown; every one is optional. */
export interface GracefulShutdownSteps {
  /** Turned NOT_SERVING first (its Watch streams are told before anything else happens). */
  health?: GrpcHealthService;
  /** Removes the instance from the registry. */
  deregister?: () => Promise<void>;
  /** Wait after deregistering, so callers still holding the address finish or move away, ms. */
  drainMs?: number;
  /** Closes the server last (plain programs; Nest closes its servers itself after this). */
  close?: () => Promise<void> | void;
  logger?: DiscoveryLogger;
}

/**
 * Shuts an instance down in the order callers need: `NOT_SERVING` →
 * deregistered → drain delay → server closed. Step errors are logged and do
 * not stop the later steps.
 *
 * @example
 * process.once('SIGTERM', () => shutdownGracefully({ health, deregister: () => self.deregister(), drainMs: 2_000, close: () => new Promise((r) => server.tryShutdown(() => r())) }));
 */
export async function shutdownGracefully(steps: GracefulShutdownSteps): Promise<void> {
  const fail = (what: string) => (error: unknown) =>
    steps.logger?.error(`shutdown: ${what} failed: ${(error as Error)?.message ?? String(error)}`);
  if (steps.health) await steps.health.setNotServing().catch(fail('NOT_SERVING'));
  if (steps.deregister) await steps.deregister().catch(fail('deregistration'));
  if (steps.drainMs && steps.drainMs > 0) {
    steps.logger?.log(`draining for ${steps.drainMs} ms before the server closes`);
    await new Promise((resolve) => setTimeout(resolve, steps.drainMs));
  }
  // Open Watch streams would hold a graceful server shutdown open.
  steps.health?.close();
  if (steps.close) await Promise.resolve(steps.close()).catch(fail('closing the server'));
}
