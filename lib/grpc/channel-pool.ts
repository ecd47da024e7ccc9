import * as grpc from '@grpc/grpc-js';
import type { Endpoint } from '../core/endpoint.js';
import type { EndpointSet } from '../core/endpoint-set.js';

/** How channels to endpoints are made. */
export interface ChannelFactoryOptions {
  /** Default: insecure. */
  credentials?: grpc.ChannelCredentials;
  /** grpc-js channel options (keepalive, message sizes, ...). */
  channelOptions?: grpc.ChannelOptions;
}

/**
 * One cached grpc-js Channel per endpoint address. Once used, the pool
 * follows the endpoint set: a channel is created when its endpoint appears
 * and closed when it leaves (after in-flight calls, as grpc-js closes
 * channels gracefully). Until the first `get`, it holds nothing, so clients
 * that only use `pick()` or the balanced `discovery:///` channel pay nothing.
 */
export class ChannelPool {
  private readonly channels = new Map<string, grpc.Channel>();
  private active = false;
  private closed = false;
  private readonly credentials: grpc.ChannelCredentials;

  constructor(private readonly options: ChannelFactoryOptions = {}) {
    this.credentials = options.credentials ?? grpc.credentials.createInsecure();
  }

  get size(): number {
    return this.channels.size;
  }

  /** Returns the endpoint's channel, creating it (and activating the pool) on first use. */
  get(endpoint: Endpoint, current: EndpointSet): grpc.Channel {
    if (this.closed) throw new Error('channel pool is closed');
    if (!this.active) {
      this.active = true;
      this.sync(current);
    }
    let channel = this.channels.get(endpoint.address);
    if (!channel) {
      channel = this.create(endpoint.address);
      this.channels.set(endpoint.address, channel);
    }
    return channel;
  }

  /** Follows a new snapshot: opens channels for new endpoints, closes channels of departed ones. */
  sync(set: EndpointSet): void {
    if (!this.active || this.closed) return;
    // A stale set keeps its endpoints: the registry is down, the servers may not be.
    const wanted = new Set(set.endpoints.map((e) => e.address));
    for (const [address, channel] of this.channels) {
      if (!wanted.has(address)) {
        channel.close();
        this.channels.delete(address);
      }
    }
    for (const address of wanted) {
      if (!this.channels.has(address)) this.channels.set(address, this.create(address));
    }
  }

  close(): void {
    this.closed = true;
    for (const channel of this.channels.values()) channel.close();
    this.channels.clear();
  }

  private create(address: string): grpc.Channel {
    // `dns:` would re-resolve behind our back; addresses here are already resolved.
    const target = /^\d+\.\d+\.\d+\.\d+:\d+$/.test(address) ? `ipv4:${address}` : address.startsWith('[') ? `ipv6:${address}` : address;
    return new grpc.Channel(target, this.credentials, this.options.channelOptions ?? {});
  }
}
