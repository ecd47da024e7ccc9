import { normalizeServerUrl } from '../../core/config/server-url.js';
import { loadTlsMaterial } from '../../core/config/tls-material.js';
import type { ResolvedDiscoveryConfig } from '../../core/config/resolve-discovery-config.js';
import { ConfigurationError, type ConfigIssue } from '../../core/errors.js';

/** How instances are laid out under etcd keys. */
export type EtcdLayoutName = 'seed' | 'grpc-naming';

/**
 * The etcd backend's options after validation, with durations in ms and
 * TLS material loaded.
 *
 * @example
 * const settings = resolveEtcdSettings(config); // config.backend === 'etcd'
 */
export interface EtcdSettings {
  /** Endpoints as etcd3 wants them (`http(s)://host:port`). */
  readonly hosts: readonly string[];
  readonly credentials: { rootCertificate: Buffer | null; privateKey?: Buffer; certChain?: Buffer } | undefined;
  readonly auth: { username: string; password: string } | undefined;
  readonly layout: EtcdLayoutName;
  /** Key prefix; for `seed` it is put before `/{namespace}/services/...`, for `grpc-naming` before `/{service}/...`. */
  readonly prefix: string;
  readonly separator: string;
  /** How long start-up (strict mode) and a first connection may take. */
  readonly dialTimeoutMs: number;
  /** Deadline of every unary request (and of one lease keepalive). */
  readonly requestTimeoutMs: number;
  /** How often a cheap request checks that etcd still answers (notices a stalled server). */
  readonly probeIntervalMs: number;
  /** When true, an unreachable etcd fails start-up and the first registration. */
  readonly strict: boolean;
  /** Largest value decoded; bigger values are skipped with a warning. */
  readonly maxValueBytes: number;
}

/** Values above this are not instance records (etcd's own limit is 1.5 MiB). */
export const MAX_VALUE_BYTES = 64 * 1024;

const DEFAULT_DIAL_TIMEOUT_MS = 5_000;

/**
 * Validates `backend_config` for etcd beyond what the shared schema checks
 * (endpoint syntax, TLS files, option combinations) and loads TLS material.
 * Throws {@link ConfigurationError} naming every bad field.
 *
 * @example
 * const { hosts, requestTimeoutMs } = resolveEtcdSettings(config);
 */
export function resolveEtcdSettings(config: ResolvedDiscoveryConfig): EtcdSettings {
  const raw = config.backendConfig;
  const issues: ConfigIssue[] = [];
  const path = (name: string) => `backend_config.${name}`;

  const tls = raw.tls as { ca?: string; cert?: string; key?: string; insecureSkipVerify?: boolean } | undefined;
  const endpoints: unknown = raw.endpoints ?? ['http://127.0.0.1:2379'];
  const hosts: string[] = [];
  if (!Array.isArray(endpoints) || endpoints.length === 0) {
    issues.push({
      path: path('endpoints'),
      value: endpoints,
      message: 'a non-empty list of "http(s)://host:port" endpoints',
    });
  } else {
    endpoints.forEach((endpoint, i) => {
      try {
        hosts.push(
          normalizeServerUrl(endpoint, {
            field: `${path('endpoints')}[${i}]`,
            tls: tls !== undefined,
            example: 'http://127.0.0.1:2379',
            allowPathPrefix: false,
            defaultPort: '2379',
          }),
        );
      } catch (error) {
        issues.push({ path: `${path('endpoints')}[${i}]`, value: endpoint, message: (error as Error).message });
      }
    });
  }

  let credentials: EtcdSettings['credentials'];
  if (tls) {
    if (tls.insecureSkipVerify) {
      issues.push({
        path: path('tls.insecure_skip_verify'),
        value: true,
        message:
          'false: the etcd client cannot skip certificate checks; give tls.ca with the CA that signed the server certificate instead',
      });
    }
    const { ca, cert, key } = loadTlsMaterial(tls, path, issues);
    credentials = {
      rootCertificate: ca ?? null,
      ...(key ? { privateKey: key } : {}),
      ...(cert ? { certChain: cert } : {}),
    };
  }

  const heartbeatMs = config.registration.heartbeatMs;
  const dialTimeoutMs = raw.dialTimeout !== undefined ? Math.round(raw.dialTimeout * 1000) : DEFAULT_DIAL_TIMEOUT_MS;
  // A request must fail before the next heartbeat is due, or one stalled call
  // would delay every later one; but never below 1 s (a busy etcd can be slow).
  const requestTimeoutMs =
    raw.requestTimeout !== undefined ? Math.round(raw.requestTimeout * 1000) : clamp(heartbeatMs, 1_000, 5_000);
  if (requestTimeoutMs < 50)
    issues.push({
      path: path('request_timeout'),
      value: raw.requestTimeout,
      message: 'a timeout of at least 0.05 seconds',
    });
  if (dialTimeoutMs < 50)
    issues.push({ path: path('dial_timeout'), value: raw.dialTimeout, message: 'a timeout of at least 0.05 seconds' });

  let prefix = typeof raw.prefix === 'string' ? raw.prefix : '';
  if (/\s/.test(prefix))
    issues.push({ path: path('prefix'), value: prefix, message: 'a key prefix without whitespace' });
  // A trailing separator would double it in every key.
  while (prefix.endsWith('/')) prefix = prefix.slice(0, -1);

  if (issues.length) throw new ConfigurationError(issues);
  return Object.freeze({
    hosts: Object.freeze(hosts),
    credentials,
    auth: raw.auth ? { username: String(raw.auth.username), password: String(raw.auth.password ?? '') } : undefined,
    layout: (raw.layout ?? 'seed') as EtcdLayoutName,
    prefix,
    separator: config.namespace.separator,
    dialTimeoutMs,
    requestTimeoutMs,
    probeIntervalMs: clamp(Math.min(heartbeatMs, config.refreshIntervalMs), 250, 5_000),
    strict: raw.strict === true,
    maxValueBytes: MAX_VALUE_BYTES,
  });
}

function clamp(value: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, value));
}
