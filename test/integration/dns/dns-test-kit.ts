import type { Subscription } from 'rxjs';
import { resolveDiscoveryConfig } from '../../../lib/core/config/resolve-discovery-config.js';
import type { DiscoveryQuery } from '../../../lib/core/discovery-query.js';
import type { EndpointSet } from '../../../lib/core/endpoint-set.js';
import { configFor } from '../../../lib/registry/backend-context.js';
import { createRegistry, type DnsRegistry, type DnsSettings } from '../../../lib/registry/dns/dns.registry.js';
import type { DiscoveryLogger } from '../../../lib/registry/registry.interface.js';

/** A logger that keeps what it was told, so tests can assert on warnings. */
export class RecordingLogger implements DiscoveryLogger {
  readonly warnings: string[] = [];
  readonly infos: string[] = [];
  readonly errors: string[] = [];
  log(message: string): void {
    this.infos.push(message);
  }
  warn(message: string): void {
    this.warnings.push(message);
  }
  error(message: string): void {
    this.errors.push(message);
  }
}

/**
 * The dns backend's settings for a `backend_config` (camelCase), as the
 * configuration loader resolves them with `refresh_interval` = refreshIntervalMs.
 *
 * @example
 * const settings = dnsSettings({ backendConfig: { domain: 'svc.test' }, refreshIntervalMs: 30_000 });
 */
export function dnsSettings(input: {
  backendConfig?: Record<string, unknown>;
  refreshIntervalMs: number;
}): DnsSettings {
  const config = resolveDiscoveryConfig({
    backend: 'dns',
    backendConfig: input.backendConfig ?? {},
    refreshInterval: input.refreshIntervalMs / 1000,
  });
  return configFor(config, 'dns').backendConfig;
}

/** Builds a dns registry from camelCase backend options, as createRegistry would. */
export async function dnsRegistry(
  backendConfig: Record<string, unknown>,
  options: { refreshInterval?: number; logger?: RecordingLogger } = {},
): Promise<{ registry: DnsRegistry; logger: RecordingLogger }> {
  const logger = options.logger ?? new RecordingLogger();
  const config = resolveDiscoveryConfig({
    backend: 'dns',
    backendConfig,
    refreshInterval: options.refreshInterval ?? 2,
  });
  const registry = (await createRegistry({ config, logger })) as DnsRegistry;
  return { registry, logger };
}

/** Subscribes and records every emitted snapshot. */
export function record(
  registry: { watch(q: DiscoveryQuery): import('rxjs').Observable<EndpointSet> },
  query: DiscoveryQuery,
) {
  const sets: EndpointSet[] = [];
  const subscription: Subscription = registry.watch(query).subscribe((set) => sets.push(set));
  return {
    sets,
    subscription,
    get last(): EndpointSet | undefined {
      return sets.at(-1);
    },
  };
}

/** Sorted `address=weight` pairs of a snapshot, for readable assertions. */
export function weightsOf(set: EndpointSet | undefined): string[] {
  return (set?.endpoints ?? []).map((e) => `${e.address}=${e.weight}`).sort();
}

export function addressesOf(set: EndpointSet | undefined): string[] {
  return (set?.endpoints ?? []).map((e) => e.address).sort();
}
