import type { z } from 'zod';
import { ConfigurationError, type ConfigIssue } from '../errors.js';
import type { BackendSchemaContext } from './backend-schema.js';
import { backendSelectionSchema, type BackendSelection, type ResolvedBackendName } from './backend-schemas.js';
import { DISPLAY_PATH_PARAM, QUOTED_VALUE_PARAM, seconds } from './config-fields.js';
import { discoveryConfigSchema, STRATEGY_NAMES } from './discovery-options.js';
import { resolveOverload, type OverloadSettings } from './overload-options.js';

/** Maps a converted (camelCase) path back to what the user wrote. */
export type PathNames = Map<string, string>;

/** What every resolved configuration holds besides its backend's part. */
export interface ResolvedCommonConfig {
  /** The service this configuration discovers / registers as, when given. */
  serviceType: string | undefined;
  namespace: { default: string; separator: string };
  version: { default: string | undefined; format: 'semver' | 'plain'; enableRouting: boolean };
  tagFilters: Array<{ key: string; value?: string; pattern: 'exact' | 'prefix' | 'regex' | 'exists' }>;
  loadBalance: string;
  hashHeader: string;
  healthCheck: {
    enabled: boolean;
    intervalMs: number;
    timeoutMs: number;
    failureThreshold: number;
    successThreshold: number;
    path: string;
    kind: 'grpc' | 'http' | 'tcp';
    service: string;
    /** Spread of each check interval, as a fraction of it. */
    jitter: number;
  };
  /** Passive outlier detection (health layer). */
  outlierDetection: {
    enabled: boolean;
    consecutiveFailures: number;
    baseEjectionMs: number;
    maxEjectionMs: number;
    maxEjectionPercent: number;
  };
  /** Percent of healthy endpoints below which all known endpoints are used; 0 disables. */
  panicThreshold: number;
  /** Slow start, circuit breaking, adaptive throttling, hedging, priority failover, subsetting. */
  overload: OverloadSettings;
  refreshIntervalMs: number;
  registration: {
    enabled: boolean;
    ttlMs: number;
    heartbeatMs: number;
    deregisterOnShutdown: boolean;
    drainMs: number;
    awaitListenMs: number;
  };
}

/**
 * Configuration after validation, with every default applied and durations
 * in milliseconds. `backend` discriminates `backendConfig`: each backend's
 * settings as its schema produced them (`config.backend === 'etcd'` narrows
 * `config.backendConfig` to the etcd settings).
 */
export type ResolvedDiscoveryConfig = ResolvedCommonConfig & BackendSelection;

/** The resolved configuration of one backend. */
export type ResolvedConfigOf<B extends ResolvedBackendName> = ResolvedCommonConfig &
  Extract<BackendSelection, { backend: B }>;

export interface ResolveOptions {
  /** Names the error messages use for the file or option object. */
  source?: string;
  /** Prefix of every reported path (e.g. `discovery`). */
  pathPrefix?: string;
  /** Original key names for converted paths. */
  pathNames?: PathNames;
  /** Strategy names registered by the user, accepted besides the built-ins. */
  extraStrategies?: readonly string[];
  /** Environment read by backends that honour their client library's variables (default `process.env`). */
  env?: NodeJS.ProcessEnv;
}

const DEFAULT_TTL_S = 90;

/** Marks objects produced by {@link resolveDiscoveryConfig}, so they are not validated twice. */
const RESOLVED = Symbol.for('switchyard.resolvedDiscoveryConfig');

/** True for a configuration already validated by resolveDiscoveryConfig / loadDiscoveryConfig. */
export function isResolvedDiscoveryConfig(value: unknown): value is ResolvedDiscoveryConfig {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[RESOLVED] === true;
}
const DEFAULT_HEARTBEAT_S = 30;

/**
 * Validates camelCase options and fills defaults. Throws one
 * {@link ConfigurationError} listing every problem (field path, value, expectation).
 */
export function resolveDiscoveryConfig(input: unknown, options: ResolveOptions = {}): ResolvedDiscoveryConfig {
  if (isResolvedDiscoveryConfig(input)) return input;
  const issues: ConfigIssue[] = [];
  const name = (path: readonly PropertyKey[]) => displayPath(path, options);
  const parsed = discoveryConfigSchema.safeParse(input ?? {}, { reportInput: true });
  if (!parsed.success) {
    issues.push(...zodIssues(parsed.error.issues, [], name));
    throw new ConfigurationError(issues, options.source);
  }
  const cfg = parsed.data;
  const backend = cfg.backend === 'xds' ? 'mesh' : cfg.backend;

  // TTL: registration.ttl wins, then backend_config.ttl (the seed's etcd
  // example; the etcd schema reports it when invalid), then 90 s.
  const seedTtl = backend === 'etcd' ? seconds.safeParse(cfg.backendConfig.ttl).data : undefined;
  const ttlS = cfg.registration.ttl ?? seedTtl ?? DEFAULT_TTL_S;
  const ttlPath = cfg.registration.ttl !== undefined ? ['registration', 'ttl'] : ['backendConfig', 'ttl'];
  const timingIssues: ConfigIssue[] = [];
  if (ttlS < 2 && backend !== 'memory')
    timingIssues.push({ path: name(ttlPath), value: ttlS, message: 'a TTL of at least 2 seconds' });
  let heartbeatS = cfg.registration.heartbeatInterval;
  if (heartbeatS === undefined) heartbeatS = Math.min(DEFAULT_HEARTBEAT_S, ttlS / 3);
  else if (heartbeatS >= ttlS) {
    timingIssues.push({
      path: name(['registration', 'heartbeatInterval']),
      value: heartbeatS,
      message: `a heartbeat interval smaller than the TTL (${ttlS} s)`,
    });
  }
  const common = {
    namespace: cfg.namespace,
    version: { default: cfg.version.default, format: cfg.version.format, enableRouting: cfg.version.enableRouting },
    tagFilters: cfg.tagFilters,
    loadBalance: cfg.loadBalance,
    hashHeader: cfg.hashHeader.toLowerCase(),
    healthCheck: {
      enabled: cfg.healthCheck.enabled,
      intervalMs: cfg.healthCheck.interval * 1000,
      timeoutMs: cfg.healthCheck.timeout * 1000,
      failureThreshold: cfg.healthCheck.failureThreshold,
      successThreshold: cfg.healthCheck.successThreshold,
      path: cfg.healthCheck.path,
      kind: cfg.healthCheck.kind,
      service: cfg.healthCheck.service,
      jitter: cfg.healthCheck.jitter,
    },
    outlierDetection: {
      enabled: cfg.outlierDetection.enabled,
      consecutiveFailures: cfg.outlierDetection.consecutiveFailures,
      baseEjectionMs: cfg.outlierDetection.baseEjectionTime * 1000,
      maxEjectionMs: cfg.outlierDetection.maxEjectionTime * 1000,
      maxEjectionPercent: cfg.outlierDetection.maxEjectionPercent,
    },
    panicThreshold: cfg.panicThreshold,
    overload: resolveOverload(cfg),
    refreshIntervalMs: cfg.refreshInterval * 1000,
    registration: {
      enabled: cfg.registration.enabled,
      ttlMs: Math.round(ttlS * 1000),
      heartbeatMs: Math.round(heartbeatS * 1000),
      deregisterOnShutdown: cfg.registration.deregisterOnShutdown,
      drainMs: cfg.registration.drainMs,
      awaitListenMs: cfg.registration.awaitListenMs,
    },
  };

  // The backend's own schema, with what it may derive its defaults from.
  const context: BackendSchemaContext = {
    registration: common.registration,
    refreshIntervalMs: common.refreshIntervalMs,
    healthCheck: common.healthCheck,
    namespace: common.namespace,
    env: options.env ?? process.env,
  };
  const selection = backendSelectionSchema(context).safeParse(
    { backend, backendConfig: cfg.backendConfig },
    { reportInput: true },
  );
  if (!selection.success) issues.push(...zodIssues(selection.error.issues, [], name));

  const strategies = new Set<string>([...STRATEGY_NAMES, ...(options.extraStrategies ?? [])]);
  if (!strategies.has(cfg.loadBalance)) {
    issues.push({
      path: name(['loadBalance']),
      value: cfg.loadBalance,
      message: `one of ${[...strategies].join(', ')}`,
    });
  }
  issues.push(...timingIssues);
  if (issues.length || !selection.success) throw new ConfigurationError(issues, options.source);

  const resolved: ResolvedDiscoveryConfig = {
    ...selection.data,
    serviceType: selection.data.backendConfig.serviceType,
    ...common,
  };
  Object.defineProperty(resolved, RESOLVED, { value: true, enumerable: false });
  return resolved;
}

function displayPath(path: readonly PropertyKey[], options: ResolveOptions): string {
  const camel = path.map(String).join('.');
  let mapped = options.pathNames?.get(camel);
  if (mapped === undefined) {
    // A path the user did not write (a default checked against another key)
    // is shown in the spelling of its source: snake_case for files.
    mapped = path
      .map((segment, i) => {
        if (typeof segment === 'number') return `[${segment}]`;
        const name = options.pathNames
          ? String(segment).replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)
          : String(segment);
        return i === 0 ? name : `.${name}`;
      })
      .join('');
  }
  return options.pathPrefix ? (mapped ? `${options.pathPrefix}.${mapped}` : options.pathPrefix) : mapped;
}

function zodIssues(
  zodIssueList: readonly z.core.$ZodIssue[],
  base: readonly PropertyKey[],
  name: (path: readonly PropertyKey[]) => string,
): ConfigIssue[] {
  const out: ConfigIssue[] = [];
  for (const issue of zodIssueList) {
    const path = [...base, ...issue.path];
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys)
        out.push({ path: name([...path, key]), message: 'unknown key (not a known option here)' });
      continue;
    }
    // A schema's own check says which value it quotes (if any), and may name a path outside the
    // configuration (a bootstrap file, an environment variable), shown as the backend named it.
    const params: Record<string, unknown> = (issue.code === 'custom' && issue.params) || {};
    const input = Object.hasOwn(params, QUOTED_VALUE_PARAM)
      ? params[QUOTED_VALUE_PARAM]
      : (issue as { input?: unknown }).input;
    const given = params[DISPLAY_PATH_PARAM] as string | undefined;
    out.push({
      path: given ?? name(path),
      message: expectation(issue),
      ...(input !== undefined ? { value: input } : {}),
    });
  }
  return out;
}

function expectation(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case 'invalid_value':
      return `one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
    case 'invalid_type':
      return `a value of type ${issue.expected}`;
    case 'too_small':
      return `a value ${issue.inclusive ? '>=' : '>'} ${String(issue.minimum)}${issue.origin === 'array' ? ' items' : ''}`;
    case 'too_big':
      return `a value ${issue.inclusive ? '<=' : '<'} ${String(issue.maximum)}`;
    default:
      return issue.message;
  }
}
