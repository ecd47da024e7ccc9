import * as grpc from '@grpc/grpc-js';
import type { Endpoint } from '../../core/endpoint.js';
import type { EndpointSet } from '../../core/endpoint-set.js';

/** Longest wait between reconnect attempts to a listed endpoint, for pooled channels and the balanced channel's subchannels alike. */
export const MAX_RECONNECT_BACKOFF_MS = 1_000;

/** How channels to endpoints are made. */
export interface ChannelFactoryOptions {
  /** Default: insecure. */
  credentials?: grpc.ChannelCredentials;
  /** grpc-js channel options (keepalive, message sizes, ...). */
  channelOptions?: grpc.ChannelOptions;
  /**
   * How long the channel of an endpoint that left stays open, ms (default
   * 5 000): a call picked just before the endpoint left still starts, and the
   * server (which deregistered first and is draining) still answers it.
   */
  channelLingerMs?: number;
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
  /** Channels of departed endpoints, closed when their linger timer fires. */
  private readonly lingering = new Map<string, { channel: grpc.Channel; timer: NodeJS.Timeout }>();
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
      channel = this.revive(endpoint.address) ?? this.create(endpoint.address);
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
        this.channels.delete(address);
        this.linger(address, channel);
      }
    }
    for (const address of wanted) {
      if (!this.channels.has(address)) this.channels.set(address, this.revive(address) ?? this.create(address));
    }
  }

  close(): void {
    this.closed = true;
    for (const channel of this.channels.values()) channel.close();
    this.channels.clear();
    for (const { channel, timer } of this.lingering.values()) {
      clearTimeout(timer);
      channel.close();
    }
    this.lingering.clear();
  }

  private linger(address: string, channel: grpc.Channel): void {
    const delay = this.options.channelLingerMs ?? 5_000;
    if (delay <= 0) return channel.close();
    const timer = setTimeout(() => {
      this.lingering.delete(address);
      channel.close();
    }, delay);
    timer.unref();
    this.lingering.set(address, { channel, timer });
  }

  /** An endpoint that comes back while its old channel lingers gets that channel again. */
  private revive(address: string): grpc.Channel | undefined {
    const entry = this.lingering.get(address);
    if (!entry) return undefined;
    clearTimeout(entry.timer);
    this.lingering.delete(address);
    return entry.channel;
  }

  private create(address: string): grpc.Channel {
    // Same reconnect cap as the balanced channel: a listed endpoint that restarts is used again within a second.
    const options = {
      'grpc.max_reconnect_backoff_ms': MAX_RECONNECT_BACKOFF_MS,
      'grpc.initial_reconnect_backoff_ms': MAX_RECONNECT_BACKOFF_MS,
      ...this.options.channelOptions,
    };
    return new grpc.Channel(channelTarget(address), this.credentials, options);
  }
}

/**
 * The grpc-js target for a `host:port`. Always scheme-qualified: a bare
 * `unix:50051` (host "unix") would be read as a unix socket, `xds:…` or
 * `discovery:…` as another resolver, so a registry record could redirect
 * calls. IP literals need no resolution; host names go through `dns:`.
 */
export function channelTarget(address: string): string {
  if (/^\d+\.\d+\.\d+\.\d+:\d+$/.test(address)) return `ipv4:${address}`;
  if (address.startsWith('[')) return `ipv6:${address}`;
  return `dns:${address}`;
}
