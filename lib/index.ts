// Core model and configuration (framework-free).
export * from './core/index.js';
// Registries.
export type {
  Registry,
  Registration,
  RegistrationEvent,
  RegistrationTiming,
  DiscoveryLogger,
} from './registry/registry.interface.js';
export { consoleLogger } from './registry/registry.interface.js';
export type { BackendContext, BackendFactory } from './registry/backend-context.js';
export { createRegistry } from './registry/create-registry.js';
export { MemoryRegistry } from './registry/memory/memory.registry.js';
export { MemoryStore } from './registry/memory/memory.store.js';
// Balancing.
export * from './balancing/index.js';
// grpc.
export { ChannelPool, type ChannelFactoryOptions } from './grpc/channel-pool.js';
export { ServiceClient, type ServiceClientOptions, type ReadyOptions } from './grpc/service-client.js';
// Framework-free facade.
export { Discovery, type DiscoveryExtras, type InstanceOptions } from './discovery/discovery.js';
export { DiscoveryFactory } from './discovery/discovery.factory.js';
export { ServiceRegistry, type ServiceRegistryEvent, type RegistrationState } from './discovery/service-registry.js';
// Nest.
export { DiscoveryModule, ServiceDiscoveryModule, DiscoveryFeatureModule } from './nest/discovery.module.js';
export { InjectServiceClient } from './nest/decorators/inject-service-client.decorator.js';
export { InjectServiceRegistry } from './nest/decorators/inject-service-registry.decorator.js';
export { getServiceClientToken } from './nest/utils/get-service-client-token.util.js';
export type {
  DiscoveryModuleOptions,
  DiscoveryModuleAsyncOptions,
  DiscoveryOptionsFactory,
} from './nest/interfaces/discovery-module-options.interface.js';
// Built-in backends usable directly.
export { LocalRegistry } from './registry/local/local.registry.js';
export { StaticRegistry } from './registry/static/static.registry.js';
export { staticInstances } from './registry/static/static-instances.js';
// grpc-js integration.
export { installGrpcIntegration } from './grpc/install-grpc-integration.js';
export { resolveRetryOptions, type RetryOptions, type ResolvedRetryOptions } from './grpc/retry-policy.js';
export type { CallAttempt, CallOptions, ProtoSource } from './grpc/service-client.js';
// Health: active checks, outlier detection, panic mode, own grpc.health.v1 and drain, events, metrics, Terminus.
export * from './health/index.js';
export { DiscoveryHealthIndicator, type DiscoveryIndicatorResult } from './nest/health/discovery.health.js';
// Mesh (xDS) backend, usable directly.
export { MeshRegistry, createMeshRegistry, parseXdsServer } from './registry/mesh/mesh.registry.js';
export type { MeshSettings, MeshTuning } from './registry/mesh/mesh.registry.js';
export { MissingPeerDependencyError } from './core/optional-peer.js';
// Admin view (what this process sees), also used by the CLI-free JSON endpoint.
export {
  collectAdminState,
  type AdminState,
  type AdminServiceState,
  type AdminEndpointState,
} from './admin/admin-state.js';
export { renderAdminPage } from './admin/admin-page.js';
export { MinuteCounter } from './grpc/minute-counter.js';
export type { EndpointReport } from './grpc/service-client.js';
