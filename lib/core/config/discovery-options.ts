import { z } from 'zod';

/** Backends selectable by `backend`. `xds` is an alias of `mesh`. */
export const BACKEND_NAMES = ['local', 'memory', 'static', 'etcd', 'consul', 'dns', 'mesh', 'xds'] as const;
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

// Durations in seconds: above 0.01 s (timers below that spin) and at most a
// week (setTimeout overflows past 24.8 days and would fire at once).
const seconds = z.number().min(0.01).max(604_800);
const nonEmpty = z.string().min(1);
/** A server URL; credentials never go in it (they would end up in logs): use token / auth. */
const serverUrl = nonEmpty.refine((v) => !/^[a-z][a-z0-9+.-]*:\/\/[^/]*@/i.test(v), {
  message: 'a URL without user:password@ (put credentials in backend_config.token or backend_config.auth)',
});
const tlsSchema = z.strictObject({
  ca: nonEmpty.optional(),
  cert: nonEmpty.optional(),
  key: nonEmpty.optional(),
  insecureSkipVerify: z.boolean().optional(),
});

/** Keys every backend_config may hold. */
const common = {
  /** The service this configuration discovers, and registers as (the seed's `service_type`). */
  serviceType: nonEmpty.optional(),
};

export const localConfigSchema = z.strictObject({ ...common, dir: nonEmpty.optional() });
export const memoryConfigSchema = z.strictObject({ ...common, store: nonEmpty.optional() });
export const staticConfigSchema = z.strictObject({ ...common, addresses: z.array(z.string()).default([]) });
export const etcdConfigSchema = z.strictObject({
  ...common,
  endpoints: z.array(serverUrl).min(1).default(['http://127.0.0.1:2379']),
  ttl: seconds.optional(),
  auth: z.strictObject({ username: nonEmpty, password: z.string() }).optional(),
  tls: tlsSchema.optional(),
  prefix: z.string().optional(),
  layout: z.enum(['seed', 'grpc-naming']).default('seed'),
  dialTimeout: seconds.optional(),
  requestTimeout: seconds.optional(),
  strict: z.boolean().default(false),
});
export const consulConfigSchema = z.strictObject({
  ...common,
  url: serverUrl.default('http://127.0.0.1:8500'),
  token: z.string().optional(),
  tls: tlsSchema.optional(),
  datacenter: nonEmpty.optional(),
  check: z
    .strictObject({
      kind: z.enum(['ttl', 'http', 'grpc']).default('ttl'),
      path: z.string().optional(),
      interval: seconds.optional(),
      deregisterCriticalAfter: seconds.optional(),
    })
    .optional(),
  wait: seconds.optional(),
  strict: z.boolean().default(false),
});
export const dnsConfigSchema = z.strictObject({
  ...common,
  domain: nonEmpty.optional(),
  addresses: z.array(z.string()).optional(),
  nameservers: z.array(z.string()).optional(),
  srv: z.union([z.boolean(), z.strictObject({ template: nonEmpty.optional() })]).optional(),
  port: z.number().int().min(1).max(65535).optional(),
  ttlFloor: seconds.optional(),
  ttlCeiling: seconds.optional(),
  timeout: seconds.optional(),
  tries: z.number().int().min(1).optional(),
});
export const meshConfigSchema = z.strictObject({
  ...common,
  xdsServer: nonEmpty.optional(),
  nodeId: nonEmpty.optional(),
  bootstrap: nonEmpty.optional(),
  clusterTemplate: nonEmpty.optional(),
  mode: z.enum(['data', 'delegate']).default('data'),
});

export const BACKEND_CONFIG_SCHEMAS = {
  local: localConfigSchema,
  memory: memoryConfigSchema,
  static: staticConfigSchema,
  etcd: etcdConfigSchema,
  consul: consulConfigSchema,
  dns: dnsConfigSchema,
  mesh: meshConfigSchema,
  xds: meshConfigSchema,
} as const;

export type LocalBackendConfig = z.output<typeof localConfigSchema>;
export type MemoryBackendConfig = z.output<typeof memoryConfigSchema>;
export type StaticBackendConfig = z.output<typeof staticConfigSchema>;
export type EtcdBackendConfig = z.output<typeof etcdConfigSchema>;
export type ConsulBackendConfig = z.output<typeof consulConfigSchema>;
export type DnsBackendConfig = z.output<typeof dnsConfigSchema>;
export type MeshBackendConfig = z.output<typeof meshConfigSchema>;

const tagFilterSchema = z.strictObject({
  key: nonEmpty,
  value: z.string().optional(),
  pattern: z.enum(['exact', 'prefix', 'regex', 'exists']).default('exact'),
});

/** The options without the backend-specific part (validated separately, by backend). */
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
      kind: z.enum(['grpc', 'http']).default('grpc'),
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

/** backend_config in camelCase, for whichever backend is chosen. */
export type BackendConfigInput =
  | z.input<typeof localConfigSchema>
  | z.input<typeof memoryConfigSchema>
  | z.input<typeof staticConfigSchema>
  | z.input<typeof etcdConfigSchema>
  | z.input<typeof consulConfigSchema>
  | z.input<typeof dnsConfigSchema>
  | z.input<typeof meshConfigSchema>;

/**
 * The typed options: the seed's configuration in camelCase.
 *
 * @example
 * const options: DiscoveryOptions = { backend: 'etcd', backendConfig: { endpoints: ['http://10.0.0.2:2379'], ttl: 30 }, loadBalance: 'round_robin' };
 */
export type DiscoveryOptions = Omit<DiscoveryConfigInput, 'backendConfig'> & { backendConfig?: BackendConfigInput };
