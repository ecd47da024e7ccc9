import {
  createServiceInstance,
  type DiscoveryLogger,
  type EndpointSet,
  type Registration,
  type ServiceClient,
} from '../../../../lib/index.js';
import { type MemoryRegistry } from '../../../../lib/testing.js';

export const TIMING = { ttlMs: 90_000, heartbeatMs: 30_000 };

/** Registers `address` as instance `id` of `service`. */
export function register(
  registry: MemoryRegistry,
  service: string,
  id: string,
  address: string,
): Promise<Registration> {
  return registry.register(createServiceInstance({ service, id, address }), TIMING);
}

/** A logger that keeps its lines (tests assert on warnings) and prints nothing. */
export function recordingLogger(): DiscoveryLogger & { lines: string[] } {
  const lines: string[] = [];
  return {
    lines,
    log: (m) => lines.push(`log ${m}`),
    warn: (m) => lines.push(`warn ${m}`),
    error: (m) => lines.push(`error ${m}`),
  };
}

/** Addresses in a set. */
export function addressesOf(set: EndpointSet): string[] {
  return set.endpoints.map((e) => e.address).sort();
}

/** True when the client serves exactly these addresses. */
export function serves(client: ServiceClient, addresses: string[]): boolean {
  return JSON.stringify(addressesOf(client.snapshot())) === JSON.stringify([...addresses].sort());
}
