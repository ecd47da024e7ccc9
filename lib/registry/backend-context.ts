import type { ResolvedConfigOf, ResolvedDiscoveryConfig } from '../core/config/resolve-discovery-config.js';
import type { ResolvedBackendName } from '../core/config/backend-schemas.js';
import { DiscoveryError } from '../core/errors.js';
import type { DiscoveryLogger, Registry } from './registry.interface.js';

/** What every backend factory receives. */
export interface BackendContext {
  config: ResolvedDiscoveryConfig;
  logger: DiscoveryLogger;
}

/** Each backend folder's entry file exports `createRegistry` with this signature. */
export type BackendFactory = (context: BackendContext) => Registry | Promise<Registry>;

/**
 * Narrows a resolved configuration to `backend`'s, so the backend reads its
 * own typed settings; a configuration of another backend is a programming
 * error, said plainly.
 *
 * @example
 * const { backendConfig: settings } = configFor(config, 'etcd'); // settings: EtcdSettings
 */
export function configFor<B extends ResolvedBackendName>(
  config: ResolvedDiscoveryConfig,
  backend: B,
): ResolvedConfigOf<B> {
  if (config.backend !== backend) {
    throw new DiscoveryError(
      `The '${backend}' backend was given a configuration of backend '${String(config.backend)}'`,
    );
  }
  return config as ResolvedConfigOf<B>;
}
