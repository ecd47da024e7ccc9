import { ConfigurationError } from '../../core/errors.js';
import type { ServiceClientOptions, TcpTransportOptions } from '../../client/client-options.js';
import { resolveRetryOptions } from '../../client/retry-policy.js';
import type { NestTcpOptions } from './endpoint-tcp-client.js';

/** The TCP options of one client, checked, with defaults. */
export interface ResolvedTcpOptions {
  nest: NestTcpOptions;
  hashKey: ((pattern: any, data: any) => string | undefined) | undefined;
  idempotent: ReadonlyArray<string | Record<string, unknown>>;
  timeoutMs: number | undefined;
  connectTimeoutMs: number;
  lingerMs: number;
}

const OWN_KEYS = new Set(['hashKey', 'idempotent', 'timeoutMs', 'connectTimeoutMs']);
const NUMBER_KEYS = ['maxBufferSize', 'incompleteMessageTimeout', 'maxSendBufferSize'] as const;
const NEST_KEYS = new Set<string>(['tlsOptions', 'serializer', 'deserializer', 'socketClass', ...NUMBER_KEYS]);

/** Keys of `DiscoveryClientProxy` options besides `service` and `tcp`: the client options that make sense for TCP. */
const PROXY_CLIENT_KEYS = new Set([
  'namespace',
  'version',
  'tags',
  'zone',
  'loadBalance',
  'readyTimeoutMs',
  'retry',
  'minEndpoints',
  'channelLingerMs',
]);

const isPlainObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

const positive = (value: unknown): value is number => typeof value === 'number' && Number.isFinite(value) && value > 0;

/**
 * Checks a client's `tcp` options and fills in the defaults. Errors name the
 * field (`path.<key>`), the value and what was expected.
 *
 * @example
 * resolveTcpOptions({ name: 'orders', tcp: { timeoutMs: 2_000 } }, 'clients.orders'); // { timeoutMs: 2000, connectTimeoutMs: 5000, ... }
 */
export function resolveTcpOptions(options: ServiceClientOptions, path: string, source?: string): ResolvedTcpOptions {
  const raw: unknown = options.tcp ?? {};
  const at = `${path}.tcp`;
  const fail = (key: string, value: unknown, expected: string) =>
    ConfigurationError.single(key ? `${at}.${key}` : at, value, expected, source);
  if (!isPlainObject(raw)) throw fail('', raw, 'an object of TCP transport options');
  const tcp = raw as TcpTransportOptions;
  for (const [key, value] of Object.entries(tcp)) {
    if (value === undefined) continue;
    if (key === 'host' || key === 'port') {
      throw fail(key, value, 'nothing: endpoints (host and port) come from the registry');
    }
    if (!OWN_KEYS.has(key) && !NEST_KEYS.has(key)) {
      throw fail(key, value, `one of ${[...OWN_KEYS, ...NEST_KEYS].join(', ')}`);
    }
  }
  if (tcp.hashKey !== undefined && typeof tcp.hashKey !== 'function') {
    throw fail('hashKey', tcp.hashKey, 'a function (pattern, data) => key');
  }
  const idempotent = tcp.idempotent ?? [];
  if (!Array.isArray(idempotent)) throw fail('idempotent', idempotent, 'an array of message patterns');
  idempotent.forEach((pattern: unknown, i) => {
    if (!(typeof pattern === 'string' && pattern) && !isPlainObject(pattern)) {
      throw fail(`idempotent[${i}]`, pattern, "a message pattern: a string or an object such as { cmd: 'get' }");
    }
  });
  for (const key of ['timeoutMs', 'connectTimeoutMs'] as const) {
    if (tcp[key] !== undefined && !positive(tcp[key])) throw fail(key, tcp[key], 'a number of milliseconds > 0');
  }
  for (const key of NUMBER_KEYS) {
    const value = tcp[key];
    if (value !== undefined && !(typeof value === 'number' && value >= 0)) throw fail(key, value, 'a number >= 0');
  }
  if (tcp.tlsOptions !== undefined && !isPlainObject(tcp.tlsOptions)) {
    throw fail('tlsOptions', tcp.tlsOptions, 'an object of node:tls connect options (ca, cert, key, servername, ...)');
  }
  for (const [key, method] of [
    ['serializer', 'serialize'],
    ['deserializer', 'deserialize'],
  ] as const) {
    const value = tcp[key] as Record<string, unknown> | undefined;
    if (value !== undefined && typeof value?.[method] !== 'function') {
      throw fail(key, value, `an object with a ${method}() method`);
    }
  }
  if (tcp.socketClass !== undefined && typeof tcp.socketClass !== 'function') {
    throw fail('socketClass', tcp.socketClass, 'a class extending TcpSocket');
  }
  const lingerMs = options.channelLingerMs ?? 5_000;
  if (!(typeof lingerMs === 'number' && lingerMs >= 0)) {
    throw ConfigurationError.single(`${path}.channelLingerMs`, lingerMs, 'a number of milliseconds >= 0', source);
  }
  const nest: Record<string, unknown> = {};
  for (const key of NEST_KEYS) if (raw[key] !== undefined) nest[key] = raw[key];
  return {
    nest,
    hashKey: tcp.hashKey,
    idempotent,
    timeoutMs: tcp.timeoutMs,
    connectTimeoutMs: tcp.connectTimeoutMs ?? 5_000,
    lingerMs,
  };
}

/**
 * Checks the `options` Nest's ClientsModule hands `DiscoveryClientProxy`:
 * `service` is required; the other keys are client options that apply to
 * TCP. Nest's ClientTCP options written at the top level are pointed to
 * `tcp`.
 */
export function checkProxyOptions(options: unknown): void {
  const source = "DiscoveryClientProxy (ClientsModule's options)";
  if (!isPlainObject(options)) {
    throw ConfigurationError.single(
      'options',
      options,
      "an object naming the service, e.g. { service: 'orders' }",
      source,
    );
  }
  if (typeof options.service !== 'string' || !options.service) {
    throw ConfigurationError.single('options.service', options.service, 'the name of the service to call', source);
  }
  for (const [key, value] of Object.entries(options)) {
    if (key === 'service' || key === 'tcp' || PROXY_CLIENT_KEYS.has(key) || value === undefined) continue;
    const expected =
      key === 'host' || key === 'port'
        ? 'nothing: endpoints come from the registry'
        : NEST_KEYS.has(key)
          ? `nothing here: ClientTCP options go under options.tcp (options.tcp.${key})`
          : `one of service, tcp, ${[...PROXY_CLIENT_KEYS].join(', ')}`;
    throw ConfigurationError.single(`options.${key}`, value, expected, source);
  }
  const clientOptions = { ...options, name: options.service } as ServiceClientOptions;
  resolveTcpOptions(clientOptions, 'options', source);
  if (options.retry !== undefined) resolveRetryOptions(options.retry as ServiceClientOptions['retry'], 'options.retry');
}
