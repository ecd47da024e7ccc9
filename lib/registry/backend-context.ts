import type { ResolvedDiscoveryConfig } from '../core/config/resolve-discovery-config.js';
import type { DiscoveryLogger, Registry } from './registry.interface.js';

/** What every backend factory receives. */
export interface BackendContext {
  config: ResolvedDiscoveryConfig;
  logger: DiscoveryLogger;
}

/** Each backend folder's entry file exports `createRegistry` with this signature. */
export type BackendFactory = (context: BackendContext) => Registry | Promise<Registry>;
