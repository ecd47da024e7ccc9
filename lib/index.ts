/**
 * switchyard's public API. Every name here is documented and chosen; the
 * list is pinned by test/unit/public-api.spec.ts, so a change to it is a
 * visible decision. Helpers for users' own tests live in 'switchyard/testing'.
 */

// Nest: the module, its decorators and what it provides.
export { DiscoveryModule, ServiceDiscoveryModule } from './nest/discovery.module.js';
export { InjectServiceClient } from './nest/decorators/inject-service-client.decorator.js';
export { InjectServiceRegistry } from './nest/decorators/inject-service-registry.decorator.js';
export { getServiceClientToken } from './nest/utils/get-service-client-token.util.js';
export type {
  DiscoveryModuleOptions,
  DiscoveryModuleAsyncOptions,
  DiscoveryOptionsFactory,
} from './nest/interfaces/discovery-module-options.interface.js';
export { DiscoveryHealthIndicator, type DiscoveryIndicatorResult } from './nest/health/discovery.health.js';
export {
  DiscoveryHttpModule,
  type DiscoveryHttpModuleOptions,
  type DiscoveryHttpModuleAsyncOptions,
} from './nest/http/discovery-http.module.js';

// Framework-free facade.
export { Discovery, type DiscoveryExtras, type InstanceOptions } from './discovery/discovery.js';
export { DiscoveryFactory } from './discovery/discovery.factory.js';
export { ServiceRegistry, type ServiceRegistryEvent, type RegistrationState } from './discovery/service-registry.js';

// The client of one service, for every transport.
export { ServiceClient, type EndpointReport } from './client/service-client.js';
export type { CallHandle } from './client/call-handle.js';
export type { CallAttempt } from './client/client-transports.js';
export type {
  ServiceClientOptions,
  ReadyOptions,
  CallOptions,
  ProtoSource,
  TagFilterOption,
} from './client/client-options.js';
export type { RetryOptions } from './client/retry-policy.js';
export type { HttpClientOptions, HttpFetchInit, HttpTlsOptions } from './client/client-options.js';

// HTTP beside the ServiceClient: the discovery-wide dispatcher, axios, errors.
export type { FetchDispatcher, HttpDispatcherOptions } from './transports/http/discovery-http-dispatcher.js';
export { discoveryAxiosConfig } from './transports/http/axios-config.js';
export { HttpEndpointError } from './transports/http/http-errors.js';

// Transports beside the ServiceClient: Nest's TCP transport, balanced (ClientsModule's customClass).
export { DiscoveryClientProxy, type DiscoveryClientProxyOptions } from './transports/tcp/discovery-client-proxy.js';

// Configuration.
export { loadDiscoveryConfig } from './core/config/load-discovery-config.js';
export { resolveDiscoveryConfig, type ResolvedDiscoveryConfig } from './core/config/resolve-discovery-config.js';
export type { DiscoveryOptions } from './core/config/discovery-options.js';
export type { OverloadOptions } from './core/config/overload-options.js';

// Model.
export { EndpointSet, type EndpointSetState, type EndpointSetDiff } from './core/endpoint-set.js';
export type { Endpoint } from './core/endpoint.js';
export {
  createServiceInstance,
  type ServiceInstance,
  type ServiceInstanceInput,
  type InstanceMetadata,
} from './core/service-instance.js';
export type { DiscoveryQuery } from './core/discovery-query.js';
export type { CallOutcome } from './core/call-outcome.js';

// Errors.
export {
  DiscoveryError,
  ConfigurationError,
  NoEndpointsError,
  OverloadedError,
  InvalidAddressError,
  RegistrationError,
  NotSupportedError,
  ClosedError,
  type ConfigIssue,
  type NoEndpointsReason,
  type OverloadReason,
} from './core/errors.js';
export { MissingPeerDependencyError } from './core/optional-peer.js';

// Balancing: the built-in strategies (for variants such as bounded-load hashing) and the shapes of your own.
export { RoundRobinStrategy } from './balancing/round-robin.strategy.js';
export { RandomStrategy } from './balancing/random.strategy.js';
export { WeightedRoundRobinStrategy } from './balancing/weighted-round-robin.strategy.js';
export { WeightedRandomStrategy } from './balancing/weighted-random.strategy.js';
export { LeastConnectionsStrategy } from './balancing/least-connections.strategy.js';
export { ConsistentHashStrategy, type ConsistentHashOptions } from './balancing/consistent-hash.strategy.js';
export { P2cEwmaStrategy, type P2cEwmaOptions } from './balancing/p2c-ewma.strategy.js';
export type {
  BalancingStrategy,
  Picker,
  PickContext,
  PickerBuildContext,
  EndpointLoad,
  LoadSource,
} from './balancing/picker.js';

// Registries: the contract (for your own backend) and the embedded backend.
export type {
  Registry,
  Registration,
  RegistrationEvent,
  RegistrationTiming,
  DiscoveryLogger,
} from './registry/registry.interface.js';
export type { Reachability, ReachabilityState } from './registry/shared/reachability.js';
export { LocalRegistry } from './registry/local/local.registry.js';

// Health: the app's own grpc.health.v1, graceful shutdown, events, metrics, the health report.
export { GrpcHealthService } from './health/grpc-health.service.js';
export { ServingStatus } from './health/grpc-health-protocol.js';
export { shutdownGracefully, type GracefulShutdownSteps } from './health/graceful-shutdown.js';
export type { DiscoveryEvent, DiscoveryEventType } from './health/discovery-events.js';
export type { DiscoveryMetrics, DiscoveryMetricsOptions } from './health/discovery-metrics.js';
export type {
  DiscoveryHealthReport,
  DiscoveryHealthOptions,
  DependencyHealth,
  HealthLevel,
} from './health/discovery-health-report.js';
