import { normalizeServerUrl } from '../../core/config/server-url.js';
import { loadTlsMaterial } from '../../core/config/tls-material.js';
import type { ResolvedDiscoveryConfig } from '../../core/config/resolve-discovery-config.js';
import { ConfigurationError, type ConfigIssue } from '../../core/errors.js';
import { assertServiceName } from '../../core/service-instance.js';

/** Which check Consul runs against a registered instance. */
export type ConsulCheckKind = 'ttl' | 'http' | 'grpc';

/**
 * The Consul backend's options after validation: durations in ms, TLS
 * material loaded, the URL split into what requests need.
 *
 * @example
 * const { origin, waitMs } = resolveConsulSettings(config); // config.backend === 'consul'
 */
export interface ConsulSettings {
  /** `http(s)://host:port[/prefix]` without a trailing slash; `/v1/...` is appended. */
  readonly baseUrl: string;
  /** The URL as shown in logs and errors (never carries credentials). */
  readonly displayUrl: string;
  readonly secure: boolean;
  readonly tls: { ca?: Buffer; cert?: Buffer; key?: Buffer; rejectUnauthorized: boolean } | undefined;
  /** ACL token, sent as `X-Consul-Token`; never logged. */
  readonly token: string | undefined;
  /** Datacenter queried for discovery (`dc=`); registration always goes to the local agent. */
  readonly datacenter: string | undefined;
  readonly check: {
    readonly kind: ConsulCheckKind;
    /** HTTP check path (or full URL); default `health_check.path`. */
    readonly path: string;
    /** Interval of HTTP / gRPC checks. */
    readonly intervalMs: number;
    /** Timeout of one HTTP / gRPC check. */
    readonly timeoutMs: number;
    /** gRPC health service name checked (empty: the whole server). */
    readonly grpcService: string;
    /** `DeregisterCriticalServiceAfter`; undefined: max(1 min, 3 x TTL) per registration. */
    readonly deregisterCriticalAfterMs: number | undefined;
  };
  /** Blocking query `wait`. */
  readonly waitMs: number;
  /** Deadline of non-blocking requests (register, check pass, deregister). */
  readonly requestTimeoutMs: number;
  /** Smallest gap between the starts of two health queries of one watcher. */
  readonly minQueryIntervalMs: number;
  /** When true, an unreachable agent fails start-up and the first registration. */
  readonly strict: boolean;
}

/** Consul's blocking queries accept at most 10 minutes. */
const MAX_WAIT_S = 600;
const DEFAULT_WAIT_S = 30;
/** Consul raises DeregisterCriticalServiceAfter below this to this. */
export const CONSUL_MIN_DEREGISTER_MS = 60_000;

/**
 * Validates `backend_config` for Consul beyond what the shared schema checks
 * (URL syntax, TLS files, option combinations) and loads TLS material.
 * Throws {@link ConfigurationError} naming every bad field.
 *
 * @example
 * const settings = resolveConsulSettings(config);
 */
export function resolveConsulSettings(config: ResolvedDiscoveryConfig): ConsulSettings {
  const raw = config.backendConfig;
  const issues: ConfigIssue[] = [];
  const path = (name: string) => `backend_config.${name}`;
  const tls = raw.tls as { ca?: string; cert?: string; key?: string; insecureSkipVerify?: boolean } | undefined;

  let baseUrl = 'http://127.0.0.1:8500';
  try {
    baseUrl = normalizeServerUrl(raw.url ?? baseUrl, {
      field: 'backend_config.url',
      tls: tls !== undefined,
      example: 'http://127.0.0.1:8500',
      allowPathPrefix: true,
    });
  } catch (error) {
    issues.push({ path: path('url'), value: raw.url, message: (error as Error).message });
  }

  if (raw.serviceType !== undefined) {
    try {
      assertServiceName(raw.serviceType, path('service_type'));
    } catch {
      issues.push({
        path: path('service_type'),
        value: raw.serviceType,
        message: 'a Consul service name: letters, digits, ".", "_" or "-" (1-253 characters)',
      });
    }
  }

  let tlsMaterial: ConsulSettings['tls'];
  if (tls) {
    const { ca, cert, key } = loadTlsMaterial(tls, path, issues);
    tlsMaterial = { ca, cert, key, rejectUnauthorized: tls.insecureSkipVerify !== true };
  }

  const check = (raw.check ?? {}) as {
    kind?: ConsulCheckKind;
    path?: string;
    interval?: number;
    deregisterCriticalAfter?: number;
  };
  const kind: ConsulCheckKind = check.kind ?? 'ttl';
  const checkPath = check.path ?? config.healthCheck.path;
  if (kind === 'http' && !checkPath.startsWith('/') && !/^https?:\/\//.test(checkPath)) {
    issues.push({
      path: path('check.path'),
      value: checkPath,
      message: 'a path starting with "/" or a full http(s):// URL',
    });
  }
  const intervalMs = check.interval !== undefined ? Math.round(check.interval * 1000) : config.healthCheck.intervalMs;
  if (intervalMs < 100)
    issues.push({
      path: path('check.interval'),
      value: check.interval,
      message: 'an interval of at least 0.1 seconds',
    });
  const deregisterCriticalAfterMs =
    check.deregisterCriticalAfter !== undefined ? Math.round(check.deregisterCriticalAfter * 1000) : undefined;

  const waitS = typeof raw.wait === 'number' ? raw.wait : DEFAULT_WAIT_S;
  if (waitS > MAX_WAIT_S)
    issues.push({
      path: path('wait'),
      value: raw.wait,
      message: `a blocking-query wait of at most ${MAX_WAIT_S} seconds (Consul's limit)`,
    });
  const waitMs = Math.max(1, Math.round(waitS * 1000));

  const token = typeof raw.token === 'string' && raw.token.length > 0 ? raw.token : undefined;
  if (token !== undefined && /[\r\n]/.test(token)) {
    // The value itself is never echoed: it is a secret.
    issues.push({ path: path('token'), message: 'a token on one line (it contains a line break)' });
  }

  if (issues.length) throw new ConfigurationError(issues);
  const url = new URL(baseUrl);
  const heartbeatMs = config.registration.heartbeatMs;
  return Object.freeze({
    baseUrl,
    displayUrl: baseUrl,
    secure: url.protocol === 'https:',
    tls: tlsMaterial,
    token,
    datacenter: typeof raw.datacenter === 'string' ? raw.datacenter : undefined,
    check: Object.freeze({
      kind,
      path: checkPath,
      intervalMs,
      // Consul needs the timeout below the interval, or checks overlap.
      timeoutMs: Math.max(50, Math.min(config.healthCheck.timeoutMs, Math.floor(intervalMs * 0.9))),
      grpcService: config.healthCheck.service,
      deregisterCriticalAfterMs,
    }),
    waitMs,
    // A request must fail before the next heartbeat is due, or one stalled
    // call would delay every later one; but never below 1 s.
    requestTimeoutMs: clamp(heartbeatMs, 1_000, 5_000),
    minQueryIntervalMs: 250,
    strict: raw.strict === true,
  });
}

function clamp(value: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, value));
}
