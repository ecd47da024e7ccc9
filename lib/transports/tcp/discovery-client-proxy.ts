import { ClientProxy, type ReadPacket, type TcpEvents, type WritePacket } from '@nestjs/microservices';
import { connectable, defer, lastValueFrom, Observable, Subject, throwError, type Subscriber } from 'rxjs';
import { ClosedError, DiscoveryError } from '../../core/errors.js';
import type { ServiceClientOptions } from '../../client/client-options.js';
import { runWithRetries } from '../../client/retry-loop.js';
import type { ServiceClient } from '../../client/service-client.js';
import { clientProxyOwners, type ServiceClientSource } from './client-proxy-owners.js';
import type { EndpointTcpClient } from './endpoint-tcp-client.js';
import { EndpointTcpClients, type SocketListener } from './endpoint-tcp-clients.js';
import { Cancellation, emitAttempt, sendAttempt, type AttemptContext } from './tcp-attempts.js';
import { checkProxyOptions, resolveTcpOptions, type ResolvedTcpOptions } from './tcp-options.js';
import { TcpErrorReply, tcpOutcome, tcpRetryable, TcpTransportError } from './tcp-outcome.js';

/**
 * What `ClientsModule` hands {@link DiscoveryClientProxy} as `options`: the
 * service to call and, optionally, client options of its own (a client
 * with only `service` uses the options `forFeature` / `forRoot({ clients })`
 * declared for that service). ClientTCP's own options go under `tcp`.
 *
 * @example
 * const options: DiscoveryClientProxyOptions = { service: 'orders', loadBalance: 'consistent_hash', tcp: { hashKey: (_p, data) => data.userId } };
 */
export interface DiscoveryClientProxyOptions extends Omit<
  ServiceClientOptions,
  'name' | 'proto' | 'credentials' | 'channelOptions'
> {
  /** The service to call, as registered. */
  service: string;
}

/** An endpoint's connection and the settings an attempt runs with. */
interface Target {
  client: ServiceClient;
  tcp: ResolvedTcpOptions;
  connections: EndpointTcpClients;
}

/**
 * Nest's TCP transport, balanced: a `ClientProxy` that picks an endpoint of
 * the service for every `send()` and `emit()` with the service's strategy,
 * over one `ClientTCP` per endpoint (connected on first use, closed after
 * the linger when the endpoint leaves). A send that never reached a server
 * is retried on another endpoint; one that did is not, unless its pattern is
 * listed in `tcp.idempotent`; events are never sent twice. Errors, a
 * service without endpoints included, arrive through the Observable.
 *
 * Nest's ClientsModule constructs it (`customClass`) outside dependency
 * injection; it finds its application's `DiscoveryModule` at its first send.
 *
 * @example
 * ClientsModule.register([{ name: 'ORDERS', customClass: DiscoveryClientProxy, options: { service: 'orders' } }])
 */
export class DiscoveryClientProxy extends ClientProxy<TcpEvents> {
  private readonly settings: DiscoveryClientProxyOptions;
  private target: Target | undefined;
  private idempotentRoutes: ReadonlySet<string> | undefined;
  private readonly listeners: SocketListener[] = [];
  /** Made for one ServiceClient (`proxy()`): never looks for another. */
  private bound = false;
  /** A provider of the application it sends through (found there, not by default). */
  private held = false;

  /** Throws a ConfigurationError naming the field when `options` lack `service` or hold something unknown. */
  constructor(options: DiscoveryClientProxyOptions) {
    super();
    checkProxyOptions(options);
    this.settings = options;
  }

  /** @internal The proxy of one ServiceClient (what `ServiceClient.proxy()` returns). */
  static forClient(client: ServiceClient): DiscoveryClientProxy {
    const proxy = new DiscoveryClientProxy({ service: client.service });
    proxy.bind(client);
    proxy.bound = true;
    return proxy;
  }

  /** Finds the service's client (the app's DiscoveryModule) and waits until it has endpoints (its `readyTimeoutMs`). */
  async connect(): Promise<void> {
    await this.resolve().client.ready();
    this._status$.next('connected');
  }

  /** Closes every endpoint connection; a later send connects again. Nest calls it on application shutdown. */
  close(): void {
    this.target?.connections.close();
    if (this.target) this.target.connections = this.newConnections(this.target.client, this.target.tcp);
    this._status$.next('disconnected');
  }

  /** Listens to socket events of every endpoint connection, present and future. */
  override on<K extends keyof TcpEvents = keyof TcpEvents, C extends TcpEvents[K] = TcpEvents[K]>(
    event: K,
    callback: C,
  ): void {
    const listener = { event: event as string, callback: callback as (...args: any[]) => void };
    this.listeners.push(listener);
    this.target?.connections.listen(listener);
  }

  /** The endpoint connections: a Map from `host:port` to its ClientTCP. */
  unwrap<T>(): T {
    return (this.target?.connections.all() ?? new Map<string, EndpointTcpClient>()) as T;
  }

  override send<TResult = any, TInput = any>(pattern: any, data: TInput): Observable<TResult> {
    if (pattern === undefined || pattern === null || data === undefined || data === null) {
      return throwError(() => invalidMessage('send', pattern));
    }
    return new Observable<TResult>((subscriber) => {
      const cancellation = new Cancellation();
      this.runSend(pattern, data, subscriber, cancellation);
      return () => cancellation.cancel();
    });
  }

  override emit<TResult = any, TInput = any>(pattern: any, data: TInput): Observable<TResult> {
    if (pattern === undefined || pattern === null || data === undefined || data === null) {
      return throwError(() => invalidMessage('emit', pattern));
    }
    // Hot, as ClientProxy.emit(): the event goes out whether or not anyone subscribes.
    const sent = connectable(
      defer(() => this.runEmit(pattern, data)),
      { connector: () => new Subject<undefined>(), resetOnDisconnect: false },
    );
    sent.connect();
    return sent as Observable<any>;
  }

  protected publish(packet: ReadPacket, callback: (packet: WritePacket) => void): () => void {
    const subscription = this.send(packet.pattern, packet.data).subscribe({
      next: (response) => callback({ response }),
      error: (err) => callback({ err }),
      complete: () => callback({ isDisposed: true }),
    });
    return () => subscription.unsubscribe();
  }

  protected dispatchEvent<T = any>(packet: ReadPacket): Promise<T> {
    return lastValueFrom(this.emit<T>(packet.pattern, packet.data), { defaultValue: undefined as T });
  }

  private runSend(pattern: unknown, data: unknown, subscriber: Subscriber<any>, cancellation: Cancellation): void {
    let target: Target;
    let key: string | undefined;
    try {
      target = this.resolve();
      key = this.keyOf(target, pattern, data);
    } catch (error) {
      subscriber.error(error);
      return;
    }
    const { client, tcp } = target;
    const route = this.normalizePattern(pattern as string);
    const packet = this.packetOf(pattern, data);
    const request = { idempotent: this.isIdempotent(tcp, route), delivered: false };
    const deliver = (response: unknown) => {
      request.delivered = true;
      subscriber.next(this.serializeResponse(response));
    };
    runWithRetries(
      client,
      {
        run: (endpoint, _attempt, deadline) =>
          sendAttempt(
            target.connections.get(endpoint),
            packet,
            this.context(client, tcp, `send('${route}')`, deadline, cancellation),
            deliver,
          ),
        classify: tcpOutcome,
        retryable: (error) => !cancellation.cancelled && tcpRetryable(error, request),
      },
      client.retryPolicy,
      { key, timeoutMs: tcp.timeoutMs },
    ).then(
      () => subscriber.complete(),
      (error: unknown) => subscriber.error(error instanceof TcpErrorReply ? this.serializeError(error.err) : error),
    );
  }

  private async runEmit(pattern: unknown, data: unknown): Promise<undefined> {
    const target = this.resolve();
    const { client, tcp } = target;
    const key = this.keyOf(target, pattern, data);
    const packet = this.packetOf(pattern, data);
    const context = this.context(client, tcp, `emit('${this.normalizePattern(pattern as string)}')`, undefined);
    await runWithRetries(
      client,
      {
        run: (endpoint, _attempt, deadline) =>
          emitAttempt(target.connections.get(endpoint), packet, { ...context, deadline }),
        classify: tcpOutcome,
        // Only an event that never left may go elsewhere: an event is never delivered twice.
        retryable: (error) => error instanceof TcpTransportError && !error.written,
        succeeded: () => 'neutral',
      },
      client.retryPolicy,
      { key, timeoutMs: tcp.timeoutMs },
    );
    return undefined;
  }

  private context(
    client: ServiceClient,
    tcp: ResolvedTcpOptions,
    call: string,
    deadline: Date | undefined,
    cancellation = new Cancellation(),
  ): AttemptContext {
    return { service: client.service, call, deadline, connectTimeoutMs: tcp.connectTimeoutMs, cancellation };
  }

  /** The service's client: bound by `forClient`, else found through the application's DiscoveryModule. */
  private resolve(): Target {
    const target = this.target;
    // A proxy from ClientsModule.register() outlives its app when the module is bootstrapped again (tests do):
    // once its client closed, it looks for the application that holds it now.
    if (target && !target.client.isClosed) return target;
    const closed = () => new ClosedError(`client for '${this.settings.service}' was closed`);
    if (target && this.bound) throw closed();
    let source: ServiceClientSource;
    try {
      // Once an application held it, only an application that holds it will do.
      ({ source, held: this.held } = clientProxyOwners.sourceFor(this, this.settings.service, this.held));
    } catch (error) {
      throw target ? closed() : error;
    }
    const { service, ...clientOptions } = this.settings;
    this.bind(
      Object.keys(clientOptions).length ? source.client({ ...clientOptions, name: service }) : source.client(service),
    );
    return this.target!;
  }

  private bind(client: ServiceClient): void {
    const tcp = resolveTcpOptions(client.options, `clients.${client.service}`);
    this.target?.connections.close();
    this.target = { client, tcp, connections: this.newConnections(client, tcp) };
    // The client's Discovery closing ends every connection, even without a close() from Nest.
    client.closing.addEventListener('abort', () => this.target?.connections.close(), { once: true });
  }

  private newConnections(client: ServiceClient, tcp: ResolvedTcpOptions): EndpointTcpClients {
    return new EndpointTcpClients(client, tcp.nest, tcp.lingerMs, this.listeners);
  }

  private keyOf(target: Target, pattern: unknown, data: unknown): string | undefined {
    const hashKey = target.tcp.hashKey;
    if (hashKey === undefined) return undefined;
    let key: unknown;
    try {
      key = hashKey(pattern, data);
    } catch (error) {
      throw new DiscoveryError(
        `tcp.hashKey of client '${target.client.service}' threw for pattern ${JSON.stringify(this.normalizePattern(pattern as string))}: ${(error as Error)?.message ?? String(error)}`,
        { cause: error },
      );
    }
    if (key === undefined || key === null || typeof key === 'string') return key ?? undefined;
    if (typeof key === 'number') return String(key);
    throw new DiscoveryError(
      `tcp.hashKey of client '${target.client.service}' returned ${typeof key}: expected a string (or undefined for no key)`,
    );
  }

  private isIdempotent(tcp: ResolvedTcpOptions, route: string): boolean {
    if (tcp.idempotent.length === 0) return false;
    this.idempotentRoutes ??= new Set(tcp.idempotent.map((p) => this.normalizePattern(p as string)));
    return this.idempotentRoutes.has(route);
  }

  /** The packet of one send or emit, passed once through the dispatch hook (Nest 12's setOnDispatchHook). */
  private packetOf(pattern: unknown, data: unknown): ReadPacket {
    const packet: ReadPacket = { pattern, data };
    // Absent in Nest 11, where the hook does not exist.
    this.onDispatchHook?.(packet);
    return packet;
  }
}

function invalidMessage(method: 'send' | 'emit', pattern: unknown): DiscoveryError {
  const missing = pattern === undefined || pattern === null ? 'pattern' : 'data';
  return new DiscoveryError(
    `${method}(): the ${missing} is ${String(missing === 'pattern' ? pattern : 'null or undefined')}; Nest's TCP transport needs a pattern and data (use {} for none)`,
  );
}
