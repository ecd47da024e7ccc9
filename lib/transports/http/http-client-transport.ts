import { Dispatcher } from 'undici';
import type { Subscription } from 'rxjs';
import type { HttpFetchInit } from '../../client/client-options.js';
import type { HttpClientTransport } from '../../client/client-transports.js';
import type { ServiceClient } from '../../client/service-client.js';
import { BalancedExchange, type ExchangeContext } from './balanced-exchange.js';
import { IDEMPOTENT_METHODS } from './http-outcome.js';
import { HttpPools } from './http-pools.js';
import { asLegacyHandler } from './legacy-handler.js';

/** What the HTTP side of a client needs from its Discovery. */
export interface HttpTransportDeps {
  /** Header carrying the consistent-hash key (the configuration's, default `x-hash-key`). */
  hashHeader: string;
  /** Hosts ending in this name a service (`orders.svc.discovery`); '' for none. */
  hostSuffix: string;
  /** Where requests to other origins go (a redirect to another service or host). */
  dispatchOther(options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean;
}

/**
 * The HTTP transport of one ServiceClient: an undici Dispatcher that sends
 * each request to the endpoint the client's picker chooses, over a cached
 * undici Pool per endpoint, with HTTP's retry rules on the shared retry
 * loop; and `fetch()`, which is the platform's own fetch (its Request,
 * Response and errors) with this dispatcher.
 */
export class HttpServiceTransport extends Dispatcher implements HttpClientTransport {
  readonly context: ExchangeContext;
  /** `http://orders` (or https): what a path is resolved against. */
  readonly origin: string;
  private readonly ownHosts: ReadonlySet<string>;
  private readonly subscription: Subscription;
  private closed = false;

  constructor(
    readonly client: ServiceClient,
    private readonly deps: HttpTransportDeps,
  ) {
    super();
    const http = client.options.http ?? {};
    const scheme = http.tls ? 'https' : 'http';
    const pools = new HttpPools(scheme, http, client.options.channelLingerMs ?? 5_000);
    this.context = {
      client,
      pools,
      retry: client.retryPolicy,
      hashHeader: deps.hashHeader.toLowerCase(),
      treat5xxAsFailure: http.treat5xxAsFailure ?? false,
      idempotentMethods: new Set([
        ...IDEMPOTENT_METHODS,
        ...(http.idempotentMethods ?? []).map((m) => m.toUpperCase()),
      ]),
      maxRetryAfterMs: http.maxRetryAfterMs ?? 300_000,
    };
    const host = client.service.toLowerCase();
    this.ownHosts = new Set([host, ...(deps.hostSuffix ? [`${host}${deps.hostSuffix.toLowerCase()}`] : [])]);
    this.origin = `${scheme}://${host}`;
    this.subscription = client.endpoints$.subscribe((set) => pools.sync(set));
  }

  /** WHATWG fetch, balanced per request: a path (`/api/orders/42`) or a URL naming this service. */
  fetch(input: string | URL, init?: HttpFetchInit): Promise<Response> {
    const url = typeof input === 'string' && input.startsWith('/') ? this.origin + input : input;
    if (init?.key !== undefined) {
      // The key travels as the hash header, which the dispatcher reads (the server sees it too).
      const { key, ...rest } = init;
      const headers = new Headers(rest.headers);
      headers.set(this.deps.hashHeader, key);
      init = { ...rest, headers };
    }
    // The platform's fetch (its Response is the global one); its dispatcher type comes from Node's bundled undici.
    return globalThis.fetch(url, { ...init, dispatcher: this } as unknown as RequestInit);
  }

  override dispatch(options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    if (!this.serves(options.origin)) return this.deps.dispatchOther(options, handler);
    return this.send(options, handler);
  }

  /** Sends a request to this service, whatever its origin says. */
  send(options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    const user = asLegacyHandler(handler);
    if (this.closed) {
      user.onError?.(new Error(`the HTTP transport of '${this.client.service}' is closed`));
      return true;
    }
    new BalancedExchange(this.context, options, user).start();
    return true;
  }

  /** True when `origin`'s host names this service. */
  serves(origin: string | URL | undefined): boolean {
    if (origin === undefined) return true;
    return this.ownHosts.has(hostOfOrigin(origin));
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

  private async shutdown(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.subscription.unsubscribe();
    await this.context.pools.close();
  }
}

/** The host of an origin (`http://orders:8080` → `orders`), lower case. */
export function hostOfOrigin(origin: string | URL): string {
  if (typeof origin !== 'string') return origin.hostname.toLowerCase();
  const start = origin.indexOf('://');
  const from = start < 0 ? 0 : start + 3;
  let end = origin.length;
  if (origin.charCodeAt(from) === 91 /* [ */) end = origin.indexOf(']', from) + 1 || end;
  else {
    const colon = origin.indexOf(':', from);
    if (colon >= 0) end = colon;
  }
  const slash = origin.indexOf('/', from);
  if (slash >= 0 && slash < end) end = slash;
  const host = origin.slice(from, end);
  return host === host.toLowerCase() ? host : host.toLowerCase();
}
