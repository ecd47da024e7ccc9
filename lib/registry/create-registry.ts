import type { ResolvedDiscoveryConfig } from '../core/config/resolve-discovery-config.js';
import { consoleLogger, type DiscoveryLogger, type Registry } from './registry.interface.js';
import type { BackendFactory } from './backend-context.js';

// Backends are loaded lazily so a user of one backend never loads (or
// installs) the client libraries of the others.
const LOADERS: Record<ResolvedDiscoveryConfig['backend'], () => Promise<{ createRegistry: BackendFactory }>> = {
  memory: () => import('./memory/memory.registry.js'),
  local: () => import('./local/local.registry.js'),
  static: () => import('./static/static.registry.js'),
  etcd: () => import('./etcd/etcd.registry.js'),
  consul: () => import('./consul/consul.registry.js'),
  dns: () => import('./dns/dns.registry.js'),
  kubernetes: () => import('./kubernetes/kubernetes.registry.js'),
  mesh: () => import('./mesh/mesh.registry.js'),
};

/** Creates the registry a resolved configuration asks for. */
export async function createRegistry(
  config: ResolvedDiscoveryConfig,
  logger: DiscoveryLogger = consoleLogger,
): Promise<Registry> {
  const module = await LOADERS[config.backend]();
  return module.createRegistry({ config, logger });
}
