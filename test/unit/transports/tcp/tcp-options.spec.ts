import { firstValueFrom } from 'rxjs';
import { describe, expect, it } from 'vitest';
import {
  ConfigurationError,
  DiscoveryClientProxy,
  DiscoveryError,
  resolveDiscoveryConfig,
} from '../../../../lib/index.js';
import { parseDiscoveryConfig } from '../../../../lib/core/config/load-discovery-config.js';
import { checkProxyOptions, resolveTcpOptions } from '../../../../lib/transports/tcp/tcp-options.js';
import {
  TcpAttemptCancelledError,
  TcpErrorReply,
  tcpOutcome,
  tcpRetryable,
  TcpTransportError,
} from '../../../../lib/transports/tcp/tcp-outcome.js';

function messageOf(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigurationError);
    return (error as Error).message;
  }
  throw new Error('expected a ConfigurationError');
}

describe("DiscoveryClientProxy's options (what ClientsModule hands it)", () => {
  it.each([
    [undefined, /options: an object naming the service, e\.g\. \{ service: 'orders' \}/],
    [{}, /options\.service: the name of the service to call/],
    [{ service: '' }, /options\.service: the name of the service to call \(got ""\)/],
    [{ service: 'orders', host: 'a' }, /options\.host: nothing: endpoints come from the registry/],
    [
      { service: 'orders', serializer: {} },
      /options\.serializer: nothing here: ClientTCP options go under options\.tcp \(options\.tcp\.serializer\)/,
    ],
    [{ service: 'orders', proto: {} }, /options\.proto: one of service, tcp, namespace, version/],
    [{ service: 'orders', tcp: 'tls' }, /options\.tcp: an object of TCP transport options \(got "tls"\)/],
    [{ service: 'orders', tcp: { retries: 2 } }, /options\.tcp\.retries: one of hashKey, idempotent, timeoutMs/],
    [{ service: 'orders', tcp: { hashKey: 'userId' } }, /options\.tcp\.hashKey: a function \(pattern, data\) => key/],
    [{ service: 'orders', tcp: { idempotent: 'read' } }, /options\.tcp\.idempotent: an array of message patterns/],
    [{ service: 'orders', tcp: { idempotent: ['read', 7] } }, /options\.tcp\.idempotent\[1\]: a message pattern/],
    [{ service: 'orders', tcp: { timeoutMs: 0 } }, /options\.tcp\.timeoutMs: a number of milliseconds > 0 \(got 0\)/],
    [
      { service: 'orders', tcp: { serializer: { encode() {} } } },
      /options\.tcp\.serializer: an object with a serialize\(\) method/,
    ],
    [{ service: 'orders', channelLingerMs: -1 }, /options\.channelLingerMs: a number of milliseconds >= 0 \(got -1\)/],
    [{ service: 'orders', retry: { maxAttempts: 9 } }, /options\.retry\.maxAttempts: an integer from 1 to 5/],
  ])('%j is refused, naming the field', (options, expected) => {
    expect(messageOf(() => checkProxyOptions(options))).toMatch(expected);
    expect(() => new DiscoveryClientProxy(options as never)).toThrow(expected);
  });

  it('accepts the service alone, and client options that apply to TCP', () => {
    expect(() => new DiscoveryClientProxy({ service: 'orders' })).not.toThrow();
    expect(() =>
      checkProxyOptions({
        service: 'orders',
        loadBalance: 'consistent_hash',
        version: '^2.0.0',
        retry: { maxAttempts: 2 },
        tcp: { hashKey: () => 'k', idempotent: ['read', { cmd: 'get' }], timeoutMs: 1_000, tlsOptions: {} },
      }),
    ).not.toThrow();
  });

  it('resolves defaults: no deadline, 5 s connect timeout and linger, ClientTCP options kept apart', () => {
    const serializer = { serialize: (v: unknown) => v };
    expect(resolveTcpOptions({ name: 'orders', tcp: { serializer, maxBufferSize: 1024 } }, 'clients.orders')).toEqual({
      nest: { serializer, maxBufferSize: 1024 },
      hashKey: undefined,
      idempotent: [],
      timeoutMs: undefined,
      connectTimeoutMs: 5_000,
      lingerMs: 5_000,
    });
    expect(messageOf(() => resolveTcpOptions({ name: 'orders', tcp: { port: 1 } as never }, 'clients.orders'))).toMatch(
      /clients\.orders\.tcp\.port: nothing: endpoints \(host and port\) come from the registry/,
    );
  });

  it('a proxy made outside any application that imports DiscoveryModule says so through the Observable', async () => {
    const proxy = new DiscoveryClientProxy({ service: 'orders' });
    let sent: ReturnType<typeof proxy.send> | undefined;
    expect(() => (sent = proxy.send('whoami', {}))).not.toThrow();
    const error = await firstValueFrom(sent!).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DiscoveryError);
    expect(String(error)).toMatch(
      /DiscoveryClientProxy for service 'orders' found no DiscoveryModule: import DiscoveryModule\.forRoot\(\) or forRootAsync\(\)/,
    );
    await expect(proxy.connect()).rejects.toThrow(/found no DiscoveryModule/);
  });
});

describe('TCP outcomes and retry rules', () => {
  const notWritten = new TcpTransportError('refused', '127.0.0.1:1', false, false);
  const lost = new TcpTransportError('lost', '127.0.0.1:1', true, false);
  const timedOut = new TcpTransportError('late', '127.0.0.1:1', true, true);

  it('maps failures onto the shared outcomes', () => {
    expect(tcpOutcome(notWritten)).toBe('connection-failure');
    expect(tcpOutcome(lost)).toBe('connection-failure');
    expect(tcpOutcome(timedOut)).toBe('timeout');
    expect(tcpOutcome(new TcpErrorReply({ status: 'error' }))).toBe('application-error');
    expect(tcpOutcome(new TcpAttemptCancelledError('cancelled'))).toBe('neutral');
    expect(tcpOutcome(new TypeError('serializer bug'))).toBe('neutral');
  });

  it('retries what never left always, what was written only when idempotent, nothing once a value was delivered', () => {
    const fresh = { idempotent: false, delivered: false };
    const idempotent = { idempotent: true, delivered: false };
    expect(tcpRetryable(notWritten, fresh)).toBe(true);
    expect(tcpRetryable(lost, fresh)).toBe(false);
    expect(tcpRetryable(timedOut, fresh)).toBe(false);
    expect(tcpRetryable(lost, idempotent)).toBe(true);
    expect(tcpRetryable(timedOut, idempotent)).toBe(true);
    expect(tcpRetryable(new TcpErrorReply('no'), idempotent)).toBe(false);
    expect(tcpRetryable(notWritten, { idempotent: true, delivered: true })).toBe(false);
  });
});

describe("health_check.kind = 'tcp'", () => {
  it('is accepted in options and in TOML; an unknown kind names the field', () => {
    expect(resolveDiscoveryConfig({ healthCheck: { enabled: true, kind: 'tcp' } }).healthCheck.kind).toBe('tcp');
    const parsed = parseDiscoveryConfig(
      '[discovery]\nbackend = "memory"\n[discovery.health_check]\nkind = "tcp"\n',
      'toml',
      'x.toml',
    );
    expect(resolveDiscoveryConfig(parsed).healthCheck.kind).toBe('tcp');
    expect(() => resolveDiscoveryConfig({ healthCheck: { kind: 'udp' as never } })).toThrow(
      /healthCheck\.kind|health_check\.kind/,
    );
  });
});
