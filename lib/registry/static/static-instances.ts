import { HOST_PORT_EXPECTATION, normalizeHostPorts } from '../../core/config/config-fields.js';
import { ConfigurationError } from '../../core/errors.js';
import { createServiceInstance, DEFAULT_NAMESPACE, type ServiceInstance } from '../../core/service-instance.js';

/**
 * Turns a fixed list of `host:port` addresses into instances of `service`:
 * healthy, weight 1, no version and no tags, ids derived from the address
 * (`static-<host:port>`) so they stay stable across restarts. Duplicates are
 * dropped. Other backends use it for a fallback seed list.
 *
 * Throws {@link ConfigurationError} naming `<field>[i]` and the value for an
 * address that is not `host:port`.
 *
 * @example
 * const seeds = staticInstances('orders', ['127.0.0.1:50051', '[::1]:50052'], 'production');
 */
export function staticInstances(
  service: string,
  addresses: readonly string[],
  namespace: string = DEFAULT_NAMESPACE,
  field = 'backend_config.addresses',
): ServiceInstance[] {
  const parsed = parseStaticAddresses(addresses, field);
  return parsed.map((address) => createServiceInstance({ service, address, id: staticInstanceId(address), namespace }));
}

/**
 * Validates and normalises addresses (`host:port`, IPv6 in brackets),
 * dropping duplicates, as the `addresses` of a configuration are. Throws
 * {@link ConfigurationError} naming `<field>[i]`.
 *
 * @example
 * parseStaticAddresses(['localhost:8080']); // ['localhost:8080']
 */
export function parseStaticAddresses(addresses: unknown, field = 'backend_config.addresses'): string[] {
  if (!Array.isArray(addresses)) {
    throw ConfigurationError.single(field, addresses, 'a list of "host:port" addresses');
  }
  const { addresses: normalised, invalid } = normalizeHostPorts(addresses);
  if (invalid.length > 0) {
    const [{ index, value }] = invalid;
    throw ConfigurationError.single(`${field}[${index}]`, value, HOST_PORT_EXPECTATION);
  }
  return normalised;
}

/** The id a static address gets: stable, so endpoint keys survive a reload. */
export function staticInstanceId(address: string): string {
  return `static-${address}`;
}
