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

// Loaded by core's configuration loader, so it imports only zod and core:
// core/config may import each registry/<backend>/<backend>.schema.ts and
// nothing else from registry/.

/**
 * How instances are laid out under etcd keys: `seed` as the Rust crate
 * writes them (the default), `seed-slash` as switchyard 0.1 did, or etcd's
 * gRPC naming records.
 */
export type EtcdLayoutName = 'seed' | 'seed-slash' | 'grpc-naming';

/** Values above this are not instance records (etcd's own limit is 1.5 MiB). */
export const MAX_VALUE_BYTES = 64 * 1024;

/** The smallest request and dial timeout that makes sense, ms. */
const MIN_TIMEOUT_MS = 50;

/**
 * `backend = "etcd"`: validates `backend_config` and transforms it into the
 * backend's settings: endpoints as etcd3 wants them, TLS material loaded,
 * durations in ms, and the request deadline and reachability probe derived
 * from the heartbeat when not given.
 *
 * @example
 * etcdConfigSchema(context).parse({ endpoints: ['10.0.0.1:2379'], ttl: 30 }).hosts; // ['http://10.0.0.1:2379']
 */
export const etcdConfigSchema = (context: BackendSchemaContext) =>
  z
    .strictObject({
      ...commonBackendFields,
      endpoints: z.array(serverUrl).min(1).default(['http://127.0.0.1:2379']),
      /** The seed's registration TTL (read by core: `registration.ttl` wins over it). */
      ttl: seconds.optional(),
      auth: z.strictObject({ username: nonEmpty, password: z.string() }).optional(),
      tls: tlsFilesSchema.optional(),
      prefix: z.string().default(''),
      layout: z.enum(['seed', 'seed-slash', 'grpc-naming']).default('seed'),
      dialTimeout: seconds.default(5),
      requestTimeout: seconds.optional(),
      strict: z.boolean().default(false),
    })
    .transform((raw, ctx) => {
      const hosts: string[] = [];
      raw.endpoints.forEach((endpoint, i) => {
        try {
          hosts.push(
            normalizeServerUrl(endpoint, {
              field: 'endpoints',
              tls: raw.tls !== undefined,
              example: 'http://127.0.0.1:2379',
              allowPathPrefix: false,
              defaultPort: '2379',
            }),
          );
        } catch (error) {
          reportIssue(ctx, ['endpoints', i], (error as Error).message, endpoint);
        }
      });

      let credentials: { rootCertificate: Buffer | null; privateKey?: Buffer; certChain?: Buffer } | undefined;
      if (raw.tls) {
        if (raw.tls.insecureSkipVerify) {
          reportIssue(
            ctx,
            ['tls', 'insecureSkipVerify'],
            'false: the etcd client cannot skip certificate checks; give tls.ca with the CA that signed the server certificate instead',
            true,
          );
        }
        const { ca, cert, key } = loadTlsMaterial(raw.tls, ctx);
        credentials = {
          rootCertificate: ca ?? null,
          ...(key ? { privateKey: key } : {}),
          ...(cert ? { certChain: cert } : {}),
        };
      }

      const { heartbeatMs } = context.registration;
      const dialTimeoutMs = toMs(raw.dialTimeout);
      // A request must fail before the next heartbeat is due, or one stalled call
      // would delay every later one; but never below 1 s (a busy etcd can be slow).
      const requestTimeoutMs =
        raw.requestTimeout !== undefined ? toMs(raw.requestTimeout) : clamp(heartbeatMs, 1_000, 5_000);
      if (requestTimeoutMs < MIN_TIMEOUT_MS)
        reportIssue(ctx, ['requestTimeout'], 'a timeout of at least 0.05 seconds', raw.requestTimeout);
      if (dialTimeoutMs < MIN_TIMEOUT_MS)
        reportIssue(ctx, ['dialTimeout'], 'a timeout of at least 0.05 seconds', raw.dialTimeout);

      if (/\s/.test(raw.prefix)) reportIssue(ctx, ['prefix'], 'a key prefix without whitespace', raw.prefix);
      // A trailing separator would double it in every key.
      const prefix = raw.prefix.replace(/\/+$/, '');

      return Object.freeze({
        serviceType: raw.serviceType,
        /** Endpoints as etcd3 wants them (`http(s)://host:port`). */
        hosts: Object.freeze(hosts),
        credentials,
        auth: raw.auth,
        layout: raw.layout,
        /** Key prefix; for the seed layouts it is put before `/{namespace}/services/...`, for `grpc-naming` before `/{service}/...`. */
        prefix,
        separator: context.namespace.separator,
        /** How long start-up (strict mode) and a first connection may take. */
        dialTimeoutMs,
        /** Deadline of every unary request (and of one lease keepalive). */
        requestTimeoutMs,
        /** How often a cheap request checks that etcd still answers (notices a stalled server). */
        probeIntervalMs: clamp(Math.min(heartbeatMs, context.refreshIntervalMs), 250, 5_000),
        /** When true, an unreachable etcd fails start-up and the first registration. */
        strict: raw.strict,
        /** Largest value decoded; bigger values are skipped with a warning. */
        maxValueBytes: MAX_VALUE_BYTES,
      });
    });

/** The etcd backend's settings (durations in ms, TLS material loaded). */
export type EtcdSettings = z.output<ReturnType<typeof etcdConfigSchema>>;

function clamp(value: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, value));
}
