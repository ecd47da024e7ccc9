import type { ResolvedDiscoveryConfig } from '../../core/config/resolve-discovery-config.js';
import type { Registry } from '../../registry/registry.interface.js';
import type { RegistryAdmin } from './registry-admin.js';

/**
 * The operator operations for `registry`'s backend. Backend modules are
 * imported lazily, like the registries themselves, so using one backend
 * never loads another's client library.
 *
 * @example
 * const admin = await openRegistryAdmin(registry, config, 5_000);
 */
export async function openRegistryAdmin(
  registry: Registry,
  config: ResolvedDiscoveryConfig,
  timeoutMs: number,
): Promise<RegistryAdmin> {
  switch (registry.backend) {
    case 'etcd': {
      const [{ EtcdAdmin }, { EtcdRegistry }] = await Promise.all([
        import('./etcd-admin.js'),
        import('../../registry/etcd/etcd.registry.js'),
      ]);
      if (registry instanceof EtcdRegistry) return new EtcdAdmin(registry, timeoutMs);
      break;
    }
    case 'consul': {
      const [{ ConsulAdmin }, { ConsulRegistry }] = await Promise.all([
        import('./consul-admin.js'),
        import('../../registry/consul/consul.registry.js'),
      ]);
      if (registry instanceof ConsulRegistry) return new ConsulAdmin(registry, timeoutMs);
      break;
    }
    case 'local': {
      const [{ LocalAdmin }, { LocalRegistry }] = await Promise.all([
        import('./local-admin.js'),
        import('../../registry/local/local.registry.js'),
      ]);
      if (registry instanceof LocalRegistry) return new LocalAdmin(registry, config.registration.ttlMs);
      break;
    }
  }
  const { GenericAdmin } = await import('./generic-admin.js');
  return new GenericAdmin(registry, config, timeoutMs);
}
