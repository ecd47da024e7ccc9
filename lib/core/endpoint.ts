import type { ServiceInstance } from './service-instance.js';

/**
 * Something a client can send calls to: one instance's address plus what
 * the balancers need. `key` identifies the endpoint across snapshots
 * (instance id and address), `index` is its position in the snapshot.
 */
export interface Endpoint {
  readonly key: string;
  readonly address: string;
  readonly host: string;
  readonly port: number;
  readonly weight: number;
  readonly zone: string | undefined;
  readonly instance: ServiceInstance;
}

/** Builds the endpoint for an instance. */
export function endpointOf(instance: ServiceInstance): Endpoint {
  return Object.freeze({
    key: `${instance.id}@${instance.address}`,
    address: instance.address,
    host: instance.host,
    port: instance.port,
    weight: instance.weight,
    zone: instance.metadata.zone,
    instance,
  });
}

/** True when two instances would be served identically (used to detect updates). */
export function sameInstance(a: ServiceInstance, b: ServiceInstance): boolean {
  if (a === b) return true;
  return JSON.stringify(a) === JSON.stringify(b);
}
