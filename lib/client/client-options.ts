import type { ChannelCredentials, ChannelOptions, GrpcObject } from '@grpc/grpc-js';
import type { OverloadOptions } from '../core/config/overload-options.js';
import type { TcpClientOptions } from '@nestjs/microservices';
import type { RetryOptions } from './retry-policy.js';

/** A proto file (or loaded package) for `getService(name)`. */
export interface ProtoSource {
  /** .proto file(s), loaded with @grpc/proto-loader (keepCase, longs as String, enums as String, defaults, oneofs). */
  path?: string | string[];
  /** proto-loader options (include dirs, ...). */
  loaderOptions?: Record<string, unknown>;
  /** Or a package already loaded with grpc.loadPackageDefinition. */
  grpcObject?: GrpcObject;
}

/** A tag filter on the instances of a service. */
export interface TagFilterOption {
  key: string;
  value?: string;
  pattern?: 'exact' | 'prefix' | 'regex' | 'exists';
}

/**
 * Per-service client options: what `forFeature`, `forRoot({ clients })` and
 * `Discovery.client()` take.
 *
 * @example
 * DiscoveryModule.forFeature([{ name: 'orders', loadBalance: 'least_connections', version: '^2.0.0', retry: { maxAttempts: 2 } }])
 */
export interface ServiceClientOptions extends OverloadOptions {
  /** The service to discover. */
  name: string;
  /** Default: the configuration's `namespace.default`. */
  namespace?: string;
  /** Exact version, or a semver range when version routing is on. */
  version?: string;
  /** Extra tag filters, added to the configuration's `tag_filters`. */
  tags?: readonly TagFilterOption[];
  /**
   * The caller's zone: endpoints in it are served first, and traffic spills
   * to the region (then elsewhere) in proportion as they degrade (priority
   * failover). An instance tag `priority` (see `priority.tag`) overrides it.
   */
  zone?: string;
  /** The caller's region, for priority failover (same zone, then same region, then elsewhere). */
  region?: string;
  /** Strategy name; default the configuration's `load_balance`. */
  loadBalance?: string;
  /** Default bound of `ready()`, ms. Default the module's `firstSetTimeoutMs` (10 000). */
  readyTimeoutMs?: number;
  /** Retries for `call()` and for grpc-js clients on `discovery:///<name>`; `false` disables. */
  retry?: RetryOptions | false;
  /** Below this many served endpoints the Terminus indicator reports the service `degraded`. Default 1. */
  minEndpoints?: number;
  /** gRPC: the proto that `getService(name)` builds stubs from. */
  proto?: ProtoSource;
  /** gRPC: channel credentials (default insecure). */
  credentials?: ChannelCredentials;
  /** gRPC: grpc-js channel options (keepalive, message sizes, ...). */
  channelOptions?: ChannelOptions;
  /**
   * How long the connection of an endpoint that left stays open, ms (default
   * 5 000): a call picked just before the endpoint left still starts, and the
   * server (which deregistered first and is draining) still answers it.
   */
  channelLingerMs?: number;
  /** Nest's TCP transport (`proxy()`, `DiscoveryClientProxy`): hash key, idempotent patterns, timeouts, TLS, serializers. */
  tcp?: TcpTransportOptions;
  /** HTTP: connection pools, TLS and what counts as a failure (`client.fetch`, the dispatcher, axios). */
  http?: HttpClientOptions;
}

/**
 * Nest TCP transport options of one service: what `ClientTCP` takes (TLS,
 * serializer, deserializer, framing limits) except host and port, which
 * come from the registry, plus how sends are balanced and retried.
 *
 * @example
 * DiscoveryModule.forFeature([{ name: 'orders', loadBalance: 'consistent_hash', tcp: { hashKey: (_pattern, data) => data.userId, timeoutMs: 2_000 } }])
 */
export interface TcpTransportOptions extends Omit<NonNullable<TcpClientOptions['options']>, 'host' | 'port'> {
  /** consistent_hash: the key of a send() or emit() (e.g. a user id); undefined sends without a key. */
  hashKey?: (pattern: any, data: any) => string | undefined;
  /**
   * Patterns safe to handle twice. A send() that was written but got no
   * answer (connection lost, timeout) is retried on another endpoint only
   * for these; one that was never written is retried for every pattern.
   */
  idempotent?: ReadonlyArray<string | Record<string, unknown>>;
  /** Deadline of one send() over all its attempts, ms. Default none (as ClientTCP); a timeout counts against the endpoint. */
  timeoutMs?: number;
  /** Longest wait for a connection to an endpoint, ms. Default 5 000; a connect not done in time is retried elsewhere. */
  connectTimeoutMs?: number;
}

/**
 * HTTP options of one service's client.
 *
 * @example
 * DiscoveryModule.forFeature([{ name: 'orders', http: { connections: 32, tls: { ca: readFileSync('ca.pem') } } }])
 */
export interface HttpClientOptions {
  /** Connections per endpoint (undici Pool); default 64. */
  connections?: number;
  /** How long an idle keep-alive connection stays open, ms; default 4 000 (servers should keep theirs longer). */
  keepAliveTimeoutMs?: number;
  /** Connect timeout per attempt, ms; default 5 000 (a timeout there never reached the server, so it is retried). */
  connectTimeoutMs?: number;
  /** No response headers within this long fails the attempt as a timeout, ms; default 300 000. */
  headersTimeoutMs?: number;
  /** Speak https to the endpoints: the CA, client certificate and key (PEM), as Node's tls options. */
  tls?: HttpTlsOptions;
  /** Count 5xx answers as endpoint failures (outlier ejection; retried when idempotent). Default false: a 5xx is the application's answer. */
  treat5xxAsFailure?: boolean;
  /** Methods besides GET, HEAD, OPTIONS, PUT, DELETE and TRACE that are safe to send twice (e.g. `['PATCH']` if yours is). */
  idempotentMethods?: readonly string[];
  /** Longest `Retry-After` honoured, ms; default 300 000. */
  maxRetryAfterMs?: number;
}

/**
 * `client.fetch()`'s options: fetch's own, and the consistent-hash key
 * (sent as the `x-hash-key` header, or the configured `hash_header`).
 *
 * @example
 * await client.fetch('/api/carts/7', { key: customerId });
 */
export interface HttpFetchInit extends RequestInit {
  key?: string;
}

/** TLS for `https` endpoints (Node's `tls.connect` options). */
export interface HttpTlsOptions {
  ca?: string | Buffer | Array<string | Buffer>;
  cert?: string | Buffer;
  key?: string | Buffer;
  /** Name checked against the certificate (default: the endpoint's host). */
  servername?: string;
  /** Default true. */
  rejectUnauthorized?: boolean;
}

/** Options of `ServiceClient.ready()`. */
export interface ReadyOptions {
  /** Wait until at least this many endpoints are served. Default 1. */
  minEndpoints?: number;
  /** Give up after this long (rejects with NoEndpointsError). Default the client's readyTimeoutMs. */
  timeoutMs?: number;
}

/** Options of `ServiceClient.call()`. */
export interface CallOptions {
  /** Consistent-hash key. */
  key?: string;
  /** Retry settings for this call; default the client's. `false` disables retries. */
  retry?: RetryOptions | false;
  /** Overall deadline for all attempts, ms from now. */
  timeoutMs?: number;
  /**
   * The call may safely run more than once: with `hedging` configured for the
   * client, a second attempt goes to another endpoint when the first is slow,
   * and the first answer wins.
   */
  idempotent?: boolean;
}
