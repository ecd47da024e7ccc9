import type { Subscription } from 'rxjs';
import type { Endpoint } from '../../core/endpoint.js';
import type { EndpointSet } from '../../core/endpoint-set.js';
import type { ServiceClient } from '../../client/service-client.js';
import { EndpointTcpClient, type NestTcpOptions } from './endpoint-tcp-client.js';

/** A listener registered with `ClientProxy.on()`, applied to every connection. */
export interface SocketListener {
  event: string;
  callback: (...args: any[]) => void;
}

/**
 * One ClientTCP per endpoint of one service, made on the first send to it
 * and connected by that send. It follows the served set: when an endpoint
 * leaves, its connection stays open for the linger (a send picked just
 * before still gets its answer from the server, which deregistered first and
 * is draining), then closes; an endpoint that comes back within the linger
 * gets its connection again.
 */
export class EndpointTcpClients {
  private readonly clients = new Map<string, EndpointTcpClient>();
  private readonly lingering = new Map<string, { client: EndpointTcpClient; timer: NodeJS.Timeout }>();
  private served = new Set<string>();
  private subscription: Subscription | undefined;
  private closed = false;

  constructor(
    private readonly service: ServiceClient,
    private readonly options: NestTcpOptions,
    private readonly lingerMs: number,
    private readonly listeners: readonly SocketListener[],
  ) {}

  /** The endpoint's client, created (not connected) on first use. */
  get(endpoint: Endpoint): EndpointTcpClient {
    const client = this.clients.get(endpoint.address);
    if (client !== undefined) return client;
    if (this.subscription === undefined && !this.closed) {
      // endpoints$ replays the current set at once, so `served` is up to date below.
      this.subscription = this.service.endpoints$.subscribe((set) => this.sync(set));
    }
    const made = this.revive(endpoint.address) ?? this.create(endpoint);
    if (this.served.has(endpoint.address) && !this.closed) this.clients.set(endpoint.address, made);
    // Picked from a set that has just changed: keep it only for the linger.
    else this.linger(endpoint.address, made);
    return made;
  }

  /** Every open or lingering client, by address (what `unwrap()` shows). */
  all(): Map<string, EndpointTcpClient> {
    const out = new Map(this.clients);
    for (const [address, { client }] of this.lingering) out.set(address, client);
    return out;
  }

  /** Applies a listener to every client now and later. */
  listen(listener: SocketListener): void {
    for (const client of this.all().values()) client.on(listener.event as 'error', listener.callback);
  }

  /** Closes every connection now (in-flight sends fail as lost) and stops following the set. */
  close(): void {
    this.closed = true;
    this.subscription?.unsubscribe();
    for (const client of this.clients.values()) client.close();
    this.clients.clear();
    for (const { client, timer } of this.lingering.values()) {
      clearTimeout(timer);
      client.close();
    }
    this.lingering.clear();
  }

  private sync(set: EndpointSet): void {
    // A stale set keeps its endpoints: the registry is down, the servers may not be.
    this.served = new Set(set.endpoints.map((e) => e.address));
    for (const [address, client] of this.clients) {
      if (this.served.has(address)) continue;
      this.clients.delete(address);
      this.linger(address, client);
    }
  }

  private linger(address: string, client: EndpointTcpClient): void {
    if (this.lingerMs <= 0 || this.closed) return client.close();
    const previous = this.lingering.get(address);
    if (previous && previous.client !== client) {
      clearTimeout(previous.timer);
      previous.client.close();
    }
    const timer = setTimeout(() => {
      this.lingering.delete(address);
      client.close();
    }, this.lingerMs);
    timer.unref();
    this.lingering.set(address, { client, timer });
  }

  private revive(address: string): EndpointTcpClient | undefined {
    const entry = this.lingering.get(address);
    if (!entry) return undefined;
    clearTimeout(entry.timer);
    this.lingering.delete(address);
    return entry.client;
  }

  private create(endpoint: Endpoint): EndpointTcpClient {
    const client = new EndpointTcpClient(endpoint, this.options);
    for (const { event, callback } of this.listeners) client.on(event as 'error', callback);
    return client;
  }
}
