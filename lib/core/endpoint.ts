import type { ServiceInstance } from './service-instance.js';

/**
 * Something a client can send calls to: one instance's address plus what
 * the balancers need. `key` identifies the endpoint across snapshots
 * (instance id and address).
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

/**
 * The key of the endpoint an instance becomes (instance id and address), for
 * backends that report which endpoints left.
 *
 * @example
 * publisher.publishChanges([], [endpointKeyOf(departed)]);
 */
export function endpointKeyOf(instance: ServiceInstance): string {
  return `${instance.id}@${instance.address}`;
}

/** Builds the endpoint for an instance. */
export function endpointOf(instance: ServiceInstance): Endpoint {
  return Object.freeze({
    key: endpointKeyOf(instance),
    address: instance.address,
    host: instance.host,
    port: instance.port,
    weight: instance.weight,
    zone: instance.metadata.zone,
    instance,
  });
}

/**
 * True when two instances would be served identically (used to detect
 * updates). Field by field: backends that re-decode the whole list on every
 * answer compare 10,000 instances per update, and JSON.stringify of both
 * sides was the hottest line of a snapshot update.
 */
export function sameInstance(a: ServiceInstance, b: ServiceInstance): boolean {
  if (a === b) return true;
  return (
    a.id === b.id &&
    a.address === b.address &&
    a.service === b.service &&
    a.namespace === b.namespace &&
    a.version === b.version &&
    a.healthy === b.healthy &&
    a.weight === b.weight &&
    sameRecord(a.tags, b.tags) &&
    a.metadata.region === b.metadata.region &&
    a.metadata.zone === b.metadata.zone &&
    a.metadata.environment === b.metadata.environment &&
    sameRecord(a.metadata.custom, b.metadata.custom)
  );
}

function sameRecord(a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>): boolean {
  if (a === b) return true;
  let count = 0;
  for (const key in a) {
    if (!Object.hasOwn(b, key) || a[key] !== b[key]) return false;
    count++;
  }
  for (const key in b) if (Object.hasOwn(b, key)) count--;
  return count === 0;
}
