import { DiscoveryError } from '../../core/errors.js';
import type { ServiceClientOptions } from '../../client/client-options.js';
import type { ServiceClient } from '../../client/service-client.js';

/** What makes the clients a DiscoveryClientProxy sends through: the app's Discovery. */
export interface ServiceClientSource {
  client(nameOrOptions: string | ServiceClientOptions): ServiceClient;
}

/** One application that imports DiscoveryModule. */
export interface ClientProxyOwner {
  source: ServiceClientSource;
  /** True when `proxy` is one of the application's providers (ClientsModule puts it there). */
  holds(proxy: object): boolean;
}

/**
 * Process-wide list of the Nest applications a DiscoveryClientProxy may
 * belong to. Nest's ClientsModule constructs the proxy itself (`new
 * customClass(options)`, outside dependency injection), so the proxy cannot
 * be handed the app's Discovery: instead, each DiscoveryModule adds its app
 * here, and the proxy, at its first send, asks which app holds it.
 */
class ClientProxyOwners {
  private readonly owners = new Set<ClientProxyOwner>();

  /** Adds an application; returns the function that removes it (when its Discovery closes). */
  add(owner: ClientProxyOwner): () => void {
    this.owners.add(owner);
    return () => this.owners.delete(owner);
  }

  /**
   * The application that holds `proxy` (`held`); unless `mustBeHeld`, with
   * one application in the process, that one (a proxy made by hand, not as
   * a provider). Throws a DiscoveryError saying what to import otherwise.
   */
  sourceFor(proxy: object, service: string, mustBeHeld: boolean): { source: ServiceClientSource; held: boolean } {
    for (const owner of this.owners) if (owner.holds(proxy)) return { source: owner.source, held: true };
    if (this.owners.size === 1 && !mustBeHeld) return { source: [...this.owners][0].source, held: false };
    if (this.owners.size === 0) {
      throw new DiscoveryError(
        `DiscoveryClientProxy for service '${service}' found no DiscoveryModule: import DiscoveryModule.forRoot() or forRootAsync() in the application whose ClientsModule registers it (without Nest, use discovery.client('${service}').proxy())`,
      );
    }
    throw new DiscoveryError(
      `DiscoveryClientProxy for service '${service}' is not a provider of any of the ${this.owners.size} application(s) in this process that import DiscoveryModule: register it with ClientsModule in the application it belongs to`,
    );
  }
}

/** The list every DiscoveryModule in this process adds its application to. */
export const clientProxyOwners = new ClientProxyOwners();
