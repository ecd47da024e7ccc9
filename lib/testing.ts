/**
 * 'switchyard/testing': what tests of YOUR code need — an in-process
 * registry you can fill and break, and instances to put in it.
 *
 * @example
 * import { MemoryRegistry, MemoryStore, testInstance } from 'switchyard/testing';
 * const store = new MemoryStore();
 * DiscoveryModule.forRoot({ registry: new MemoryRegistry(store) });
 * store.put(testInstance('orders', 50051));
 */
import { createServiceInstance, type ServiceInstance, type ServiceInstanceInput } from './core/service-instance.js';

export { MemoryRegistry } from './registry/memory/memory.registry.js';
export { MemoryStore } from './registry/memory/memory.store.js';
export { StaticRegistry } from './registry/static/static.registry.js';
export { staticInstances } from './registry/static/static-instances.js';
export { createServiceInstance, type ServiceInstance, type ServiceInstanceInput };

/**
 * An instance of `service` on 127.0.0.1:`port`, with any field overridden.
 *
 * @example
 * store.put(testInstance('orders', 50051, { version: '2.1.0', metadata: { zone: 'a' } }));
 */
export function testInstance(
  service: string,
  port: number,
  overrides: Partial<ServiceInstanceInput> = {},
): ServiceInstance {
  return createServiceInstance({ service, host: '127.0.0.1', port, ...overrides });
}
