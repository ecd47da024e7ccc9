import { Agent, Dispatcher } from 'undici';
import { DiscoveryError } from '../../core/errors.js';
import type { ServiceClient } from '../../client/service-client.js';
import { hostOfOrigin } from './http-client-transport.js';
import { asLegacyHandler } from './legacy-handler.js';

/**
 * How `discovery.httpDispatcher()` maps a URL's host to a service.
 *
 * @example
 * setGlobalDispatcher(discovery.httpDispatcher({ hostSuffix: '.svc.discovery', fallback: true }));
 */
export interface HttpDispatcherOptions {
  /**
   * Hosts ending in this suffix name a service: with `.svc.discovery`,
   * `http://orders.svc.discovery/...` goes to `orders` (any service, declared or not).
   */
  hostSuffix?: string;
  /** Service names a plain host may name, besides the declared clients (forRoot / forFeature `clients`). */
  services?: readonly string[];
  /**
   * Where requests to hosts that name no service go: `true` for a normal
   * undici Agent (closed with the Discovery), your own Dispatcher, or
   * `false` (the default): such a request fails with an error naming the
   * host and the services known.
   */
  fallback?: boolean | Dispatcher;
}

/**
 * The dispatcher type the platform's `fetch` takes: `RequestInit['dispatcher']`
 * of Node's types (their copy of undici's types), or undici's own where the
 * global `RequestInit` has none (the DOM lib). What `httpDispatcher()`
 * returns, so `fetch(url, { dispatcher })` type-checks without a cast; at
 * run time it is an undici Dispatcher, which every fetch accepts.
 *
 * @example
 * const dispatcher: FetchDispatcher = discovery.httpDispatcher();
 */
export type FetchDispatcher = RequestInit extends { dispatcher?: infer D } ? NonNullable<D> : Dispatcher;

/** What the dispatcher needs from its Discovery. */
export interface DiscoveryHttpRouting {
  /** The client of a service (its declared options: namespace, version, strategy ...). */
  clientFor(service: string): ServiceClient;
  /** Declared services and services with a client, for the host table and error messages. */
  knownServices(): readonly string[];
  /** Sends one request through a client's HTTP transport. */
  dispatchTo(client: ServiceClient, options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean;
}

/** Origins remembered (they repeat: a process calls a handful of hosts). */
const ROUTE_CACHE_LIMIT = 1_000;

/**
 * An undici Dispatcher for a whole Discovery: `fetch('http://orders/api',
 * { dispatcher })` is balanced over the endpoints of `orders` with the
 * options declared for it; other origins go to the fallback, or fail with a
 * clear error. A host names a service when it is a declared service's name
 * (or listed in `services`), or when it ends in `hostSuffix`.
 *
 * @example
 * const res = await fetch('http://orders/api/orders/42', { dispatcher: discovery.httpDispatcher() });
 */
export class DiscoveryHttpDispatcher extends Dispatcher {
  private readonly routes = new Map<string, ServiceClient | null>();
  private readonly suffix: string;
  private readonly extraServices: ReadonlySet<string>;
  private fallbackAgent: Dispatcher | undefined;
  private closed = false;

  constructor(
    private readonly routing: DiscoveryHttpRouting,
    private readonly options: HttpDispatcherOptions = {},
  ) {
    super();
    this.suffix = (options.hostSuffix ?? '').toLowerCase();
    this.extraServices = new Set((options.services ?? []).map((s) => s.toLowerCase()));
  }

  override dispatch(options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    const origin = options.origin;
    const key = typeof origin === 'string' ? origin : String(origin);
    let client = this.routes.get(key);
    if (client === undefined || (client !== null && client.isClosed)) {
      client = this.route(key);
      if (this.routes.size >= ROUTE_CACHE_LIMIT) this.routes.clear();
      this.routes.set(key, client);
    }
    if (client !== null) {
      try {
        return this.routing.dispatchTo(client, options, handler);
      } catch (error) {
        // A closed client or Discovery: the caller's fetch rejects with it.
        asLegacyHandler(handler).onError?.(error as Error);
        return true;
      }
    }
    const fallback = this.fallback();
    if (fallback) return fallback.dispatch(options, handler);
    asLegacyHandler(handler).onError?.(this.unknownHost(key));
    return true;
  }

  /** The service a host names, or undefined. */
  serviceOf(origin: string): string | undefined {
    const host = hostOfOrigin(origin);
    if (this.suffix && host.endsWith(this.suffix) && host.length > this.suffix.length) {
      return host.slice(0, -this.suffix.length);
    }
    if (this.extraServices.has(host)) return host;
    return this.routing.knownServices().find((name) => name.toLowerCase() === host);
  }

  override close(): Promise<void>;
  override close(callback: () => void): void;
  override close(callback?: () => void): Promise<void> | void {
    const done = this.shutdown();
    if (callback) void done.then(callback);
    else return done;
  }

  override destroy(): Promise<void>;
  override destroy(error: Error | null): Promise<void>;
  override destroy(callback: () => void): void;
  override destroy(error: Error | null, callback: () => void): void;
  override destroy(...args: unknown[]): Promise<void> | void {
    const callback = args.find((a) => typeof a === 'function') as (() => void) | undefined;
    const done = this.shutdown();
    if (callback) void done.then(callback);
    else return done;
  }

  /** Closes the fallback Agent it made (the clients belong to the Discovery). */
  private async shutdown(): Promise<void> {
    this.closed = true;
    this.routes.clear();
    const agent = this.fallbackAgent;
    this.fallbackAgent = undefined;
    if (agent && this.options.fallback === true) await agent.close();
  }

  private route(origin: string): ServiceClient | null {
    const service = this.serviceOf(origin);
    return service === undefined ? null : this.routing.clientFor(service);
  }

  private fallback(): Dispatcher | undefined {
    const fallback = this.options.fallback;
    if (fallback === undefined || fallback === false) return undefined;
    if (fallback !== true) return fallback;
    if (this.closed) return undefined;
    return (this.fallbackAgent ??= new Agent());
  }

  private unknownHost(origin: string): DiscoveryError {
    const host = hostOfOrigin(origin);
    const known = [...new Set([...this.routing.knownServices(), ...this.extraServices])].sort();
    return new DiscoveryError(
      `host '${host}' (${origin}) is not a discovered service: the services known are ${known.length ? known.join(', ') : 'none yet'}` +
        `${this.suffix ? `, and any host ending in '${this.suffix}'` : ''}. Declare it (forFeature / clients), list it in httpDispatcher({ services }), ` +
        `or pass { fallback: true } to send other hosts to a normal agent`,
    );
  }
}
