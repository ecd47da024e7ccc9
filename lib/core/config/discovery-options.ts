import { z } from 'zod';
import { overloadConfigShape } from './overload-options.js';
import type { BackendConfigInput } from './backend-schemas.js';
import { nonEmpty, seconds } from './config-fields.js';

/** Backends selectable by `backend`. `xds` is an alias of `mesh`. */
export const BACKEND_NAMES = [
  'local',
  'memory',
  'static',
  'etcd',
  'consul',
  'dns',
  'kubernetes',
  'mesh',
  'xds',
] as const;
export type BackendName = (typeof BACKEND_NAMES)[number];

/** Built-in load-balancing strategies selectable by `load_balance`. */
export const STRATEGY_NAMES = [
  'round_robin',
  'random',
  'consistent_hash',
  'least_connections',
  'weighted_round_robin',
  'weighted_random',
  'p2c_ewma',
] as const;
export type StrategyName = (typeof STRATEGY_NAMES)[number];

const tagFilterSchema = z.strictObject({
  key: nonEmpty,
  value: z.string().optional(),
  pattern: z.enum(['exact', 'prefix', 'regex', 'exists']).default('exact'),
});

/** The options without the backend-specific part (each backend's schema validates its `backend_config`). */
export const discoveryConfigSchema = z.strictObject({
  backend: z.enum(BACKEND_NAMES).default('local'),
  backendConfig: z.record(z.string(), z.unknown()).default({}),
  namespace: z
    .strictObject({ default: nonEmpty.default('default'), separator: nonEmpty.default('/') })
    .default({ default: 'default', separator: '/' }),
  version: z
    .strictObject({
      default: z.string().optional(),
      format: z.enum(['semver', 'plain']).default('plain'),
      enableRouting: z.boolean().default(false),
    })
    .default({ format: 'plain', enableRouting: false }),
  tagFilters: z.array(tagFilterSchema).default([]),
  loadBalance: z.string().default('consistent_hash'),
  hashHeader: nonEmpty.default('x-hash-key'),
  healthCheck: z
    .strictObject({
      enabled: z.boolean().default(false),
      interval: seconds.default(10),
      timeout: seconds.default(5),
      failureThreshold: z.number().int().min(1).default(3),
      successThreshold: z.number().int().min(1).default(2),
      path: z.string().startsWith('/').default('/health'),
      kind: z.enum(['grpc', 'http', 'tcp']).default('grpc'),
      service: z.string().default(''),
      // Health layer: spread of each check interval (fraction), so checks of many endpoints do not synchronise.
      jitter: z.number().min(0).max(0.5).default(0.1),
    })
    .refine((h) => h.timeout < h.interval, { message: 'timeout must be smaller than interval', path: ['timeout'] })
    .default({
      enabled: false,
      interval: 10,
      timeout: 5,
      failureThreshold: 3,
      successThreshold: 2,
      path: '/health',
      kind: 'grpc',
      service: '',
      jitter: 0.1,
    }),
  // Health layer: passive ejection of endpoints whose calls fail at the transport level (Envoy's outlier detection).
  outlierDetection: z
    .strictObject({
      enabled: z.boolean().default(true),
      consecutiveFailures: z.number().int().min(1).default(5),
      baseEjectionTime: seconds.default(30),
      maxEjectionTime: seconds.default(300),
      maxEjectionPercent: z.number().min(0).max(100).default(50),
    })
    .refine((o) => o.maxEjectionTime >= o.baseEjectionTime, {
      message: 'max_ejection_time must be at least base_ejection_time',
      path: ['maxEjectionTime'],
    })
    .default({
      enabled: true,
      consecutiveFailures: 5,
      baseEjectionTime: 30,
      maxEjectionTime: 300,
      maxEjectionPercent: 50,
    }),
  // Health layer: below this share (percent) of healthy endpoints, balance over all known ones (Envoy's panic threshold); 0 disables.
  panicThreshold: z.number().min(0).max(100).default(50),
  // Overload protection and tail latency (slow_start, circuit_breaker, throttling, hedging, priority, subsetting).
  ...overloadConfigShape,
  refreshInterval: seconds.default(30),
  registration: z
    .strictObject({
      enabled: z.boolean().default(true),
      heartbeatInterval: seconds.optional(),
      ttl: seconds.optional(),
      deregisterOnShutdown: z.boolean().default(true),
      drainMs: z.number().int().min(0).default(0),
      awaitListenMs: z.number().int().min(0).default(30_000),
    })
    .default({ enabled: true, deregisterOnShutdown: true, drainMs: 0, awaitListenMs: 30_000 }),
});

export type DiscoveryConfigInput = z.input<typeof discoveryConfigSchema>;

export type { BackendConfigInput } from './backend-schemas.js';

/**
 * The typed options: the seed's configuration in camelCase.
 *
 * @example
 * const options: DiscoveryOptions = { backend: 'etcd', backendConfig: { endpoints: ['http://10.0.0.2:2379'], ttl: 30 }, loadBalance: 'round_robin' };
 */
export type DiscoveryOptions = AcceptReadonly<
  Omit<DiscoveryConfigInput, 'backendConfig'> & { backendConfig?: BackendConfigInput }
>;

/**
 * The same shape, accepting readonly arrays and objects too, so a
 * configuration written `as const` (or built from readonly data) type-checks.
 */
export type AcceptReadonly<T> = T extends (...args: never[]) => unknown
  ? T
  : T extends ReadonlyArray<infer U>
    ? ReadonlyArray<AcceptReadonly<U>>
    : T extends object
      ? { readonly [K in keyof T]: AcceptReadonly<T[K]> }
      : T;
