import type { ModulesContainer } from '@nestjs/core';
import type { Discovery } from '../../discovery/discovery.js';
import { clientProxyOwners } from '../../transports/tcp/client-proxy-owners.js';

/**
 * Lets the DiscoveryClientProxy instances of this application — providers
 * ClientsModule made outside dependency injection — find its Discovery at
 * their first send, until the Discovery closes.
 */
export function offerToClientProxies(discovery: Discovery, container: ModulesContainer | undefined): void {
  const remove = clientProxyOwners.add({
    source: discovery,
    holds: (proxy) => container !== undefined && holdsProvider(container, proxy),
  });
  discovery.events$.subscribe({ complete: remove });
}

function holdsProvider(container: ModulesContainer, instance: object): boolean {
  for (const module of container.values()) {
    for (const wrapper of module.providers.values()) if (wrapper.instance === instance) return true;
  }
  return false;
}
