import { z } from 'zod';
import type { BackendSchemaContext } from '../../core/config/backend-schema.js';
import {
  commonBackendFields,
  loadTlsMaterial,
  nonEmpty,
  reportIssue,
  seconds,
  serverUrl,
  tlsFilesSchema,
  toMs,
} from '../../core/config/config-fields.js';
import { normalizeServerUrl } from '../../core/config/server-url.js';
import { assertServiceName } from '../../core/service-instance.js';

// Loaded by core's configuration loader, so it imports only zod and core:
// core/config may import each registry/<backend>/<backend>.schema.ts and
// nothing else from registry/.

/** Which check Consul runs against a registered instance. */
export type ConsulCheckKind = 'ttl' | 'http' | 'grpc';

/** Consul raises DeregisterCriticalServiceAfter below this to this. */
export const CONSUL_MIN_DEREGISTER_MS = 60_000;
/** Smallest gap between the starts of two health queries of one watcher, ms (tests shorten it). */
const MIN_QUERY_INTERVAL_MS: number = 250;
/** Consul's blocking queries accept at most 10 minutes. */
const MAX_WAIT_S = 600;
/**
 * Services watched with a long-poll each, at most; beyond, a catalog-wide
 * watch serves them (consul-catalog-watch.ts). The agent accepts 200
 * connections per client IP by default, shared with everything else the
 * host sends it: 32 long-polls, the wide watch's 10 and registrations stay
 * well below.
 */
const DEFAULT_BLOCKING_QUERIES = 32;

/**
 * `backend = "consul"`: validates `backend_config` and transforms it into
 * the backend's settings: the agent URL split into what requests need, TLS
 * material loaded, durations in ms, and the check's path, interval and
 * timeout defaulting to the `health_check` section.
 *
 * @example
 * consulConfigSchema(context).parse({ url: '127.0.0.1:8500', token: 'secret' }).baseUrl; // 'http://127.0.0.1:8500'
 */
export const consulConfigSchema = (context: BackendSchemaContext) =>
  z
    .strictObject({
      ...commonBackendFields,
      url: serverUrl.default('http://127.0.0.1:8500'),
      token: z.string().optional(),
      tls: tlsFilesSchema.optional(),
      datacenter: nonEmpty.optional(),
      check: z
        .strictObject({
          kind: z.enum(['ttl', 'http', 'grpc']).default('ttl'),
          path: z.string().optional(),
          interval: seconds.optional(),
          deregisterCriticalAfter: seconds.optional(),
        })
        .prefault({}),
      wait: seconds.default(30),
      maxBlockingQueries: z.number().int().min(0).max(1_000).default(DEFAULT_BLOCKING_QUERIES),
      strict: z.boolean().default(false),
      rustCompatible: z.boolean().default(false),
    })
    .transform((raw, ctx) => {
      let baseUrl = 'http://127.0.0.1:8500';
      try {
        baseUrl = normalizeServerUrl(raw.url, {
          field: 'url',
          tls: raw.tls !== undefined,
          example: 'http://127.0.0.1:8500',
          allowPathPrefix: true,
        });
      } catch (error) {
        reportIssue(ctx, ['url'], (error as Error).message, raw.url);
      }

      if (raw.serviceType !== undefined) {
        try {
          assertServiceName(raw.serviceType);
        } catch {
          reportIssue(
            ctx,
            ['serviceType'],
            'a Consul service name: letters, digits, ".", "_" or "-" (1-253 characters)',
            raw.serviceType,
          );
        }
      }

      let tls: { ca?: Buffer; cert?: Buffer; key?: Buffer; rejectUnauthorized: boolean } | undefined;
      if (raw.tls) {
        const { ca, cert, key } = loadTlsMaterial(raw.tls, ctx);
        tls = { ca, cert, key, rejectUnauthorized: raw.tls.insecureSkipVerify !== true };
      }

      const check = raw.check;
      const checkPath = check.path ?? context.healthCheck.path;
      if (check.kind === 'http' && !checkPath.startsWith('/') && !/^https?:\/\//.test(checkPath)) {
        reportIssue(ctx, ['check', 'path'], 'a path starting with "/" or a full http(s):// URL', checkPath);
      }
      // Consul runs checks at most every 100 ms: an explicit interval must respect it, one taken from health_check is raised to it.
      const intervalMs =
        check.interval !== undefined ? toMs(check.interval) : Math.max(100, context.healthCheck.intervalMs);
      if (intervalMs < 100)
        reportIssue(ctx, ['check', 'interval'], 'an interval of at least 0.1 seconds', check.interval);

      if (raw.wait > MAX_WAIT_S) {
        reportIssue(ctx, ['wait'], `a blocking-query wait of at most ${MAX_WAIT_S} seconds (Consul's limit)`, raw.wait);
      }

      const token = raw.token !== undefined && raw.token.length > 0 ? raw.token : undefined;
      // The value itself is never echoed: it is a secret.
      if (token !== undefined && /[\r\n]/.test(token))
        reportIssue(ctx, ['token'], 'a token on one line (it contains a line break)');

      const { heartbeatMs } = context.registration;
      return Object.freeze({
        serviceType: raw.serviceType,
        /** `http(s)://host:port[/prefix]` without a trailing slash; `/v1/...` is appended. */
        baseUrl,
        /** The URL as shown in logs and errors (never carries credentials). */
        displayUrl: baseUrl,
        secure: baseUrl.startsWith('https:'),
        tls,
        /** ACL token, sent as `X-Consul-Token`; never logged. */
        token,
        /** Datacenter queried for discovery (`dc=`); registration always goes to the local agent. */
        datacenter: raw.datacenter,
        check: Object.freeze({
          kind: check.kind,
          /** HTTP check path (or full URL); default `health_check.path`. */
          path: checkPath,
          /** Interval of HTTP / gRPC checks. */
          intervalMs,
          /** Timeout of one HTTP / gRPC check: below the interval, or checks overlap. */
          timeoutMs: Math.max(50, Math.min(context.healthCheck.timeoutMs, Math.floor(intervalMs * 0.9))),
          /** gRPC health service name checked (empty: the whole server). */
          grpcService: context.healthCheck.service,
          /** `DeregisterCriticalServiceAfter`; undefined: max(1 min, 3 x TTL) per registration. */
          deregisterCriticalAfterMs:
            check.deregisterCriticalAfter !== undefined ? toMs(check.deregisterCriticalAfter) : undefined,
        }),
        /** Blocking query `wait`. */
        waitMs: Math.max(1, toMs(raw.wait)),
        /** Services watched with a long-poll each; beyond, by the catalog-wide watch. */
        maxBlockingQueries: raw.maxBlockingQueries,
        // A request must fail before the next heartbeat is due, or one stalled
        // call would delay every later one; but never below 1 s.
        /** Deadline of non-blocking requests (register, check pass, deregister). */
        requestTimeoutMs: clamp(heartbeatMs, 1_000, 5_000),
        /** Smallest gap between the starts of two health queries of one watcher. */
        minQueryIntervalMs: MIN_QUERY_INTERVAL_MS,
        /** When true, an unreachable agent fails start-up and the first registration. */
        strict: raw.strict,
        /**
         * Register so the Rust services' Consul discovery can read the
         * address: an IP literal (IPv6 in brackets); a host name is refused.
         */
        rustCompatible: raw.rustCompatible,
      });
    });

/** The Consul backend's settings (durations in ms, TLS material loaded). */
export type ConsulSettings = z.output<ReturnType<typeof consulConfigSchema>>;

function clamp(value: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, value));
}
