import { Pool } from 'undici';
import type { Endpoint } from '../../core/endpoint.js';
import type { EndpointSet } from '../../core/endpoint-set.js';
import type { HttpClientOptions } from '../../client/client-options.js';

/** The pool of one endpoint, as requests use it. */
export interface EndpointPool {
  readonly origin: string;
  readonly pool: Pool;
}

/**
 * One undici Pool (keep-alive connections) per endpoint of a service. Like
 * the gRPC channel pool it follows the served set: a pool is made on the
 * endpoint's first request, and when the endpoint leaves it lingers for
 * `lingerMs` — so a request picked just before the endpoint left still goes
 * out, and the server (which deregistered first and is draining) answers it —
 * then closes gracefully (requests in flight finish). An endpoint that comes
 * back in time gets its pool again. `close()` closes every pool.
 */
export class HttpPools {
  private readonly pools = new Map<string, EndpointPool>();
  private readonly lingering = new Map<string, { entry: EndpointPool; timer: NodeJS.Timeout }>();
  private closed = false;

  constructor(
    private readonly scheme: 'http' | 'https',
    private readonly options: HttpClientOptions,
    private readonly lingerMs: number,
  ) {}

  /** Pools open now (lingering ones included). */
  get size(): number {
    return this.pools.size + this.lingering.size;
  }

  /** The endpoint's pool, made on first use. No allocation once it exists. */
  get(endpoint: Endpoint): EndpointPool {
    const entry = this.pools.get(endpoint.key);
    if (entry !== undefined) return entry;
    if (this.closed) throw new Error('the HTTP pools of this client are closed');
    const made = this.revive(endpoint.key) ?? this.create(endpoint);
    this.pools.set(endpoint.key, made);
    return made;
  }

  /** Follows a served set: pools of endpoints that left linger, then close. */
  sync(set: EndpointSet): void {
    if (this.closed || this.pools.size === 0) return;
    for (const [key, entry] of this.pools) {
      if (set.has(key)) continue;
      this.pools.delete(key);
      this.linger(key, entry);
    }
  }

  /** Closes every pool: requests in flight finish, idle connections close. */
  async close(): Promise<void> {
    this.closed = true;
    const entries = [...this.pools.values()];
    this.pools.clear();
    for (const { entry, timer } of this.lingering.values()) {
      clearTimeout(timer);
      entries.push(entry);
    }
    this.lingering.clear();
    await Promise.allSettled(entries.map(({ pool }) => pool.close()));
  }

  private linger(key: string, entry: EndpointPool): void {
    if (this.lingerMs <= 0) {
      void entry.pool.close().catch(() => undefined);
      return;
    }
    const timer = setTimeout(() => {
      this.lingering.delete(key);
      void entry.pool.close().catch(() => undefined);
    }, this.lingerMs);
    timer.unref();
    this.lingering.set(key, { entry, timer });
  }

  private revive(key: string): EndpointPool | undefined {
    const lingering = this.lingering.get(key);
    if (!lingering) return undefined;
    clearTimeout(lingering.timer);
    this.lingering.delete(key);
    return lingering.entry;
  }

  private create(endpoint: Endpoint): EndpointPool {
    const host = endpoint.host.includes(':') ? `[${endpoint.host}]` : endpoint.host;
    const origin = `${this.scheme}://${host}:${endpoint.port}`;
    const o = this.options;
    const tls = o.tls;
    const pool = new Pool(origin, {
      connections: o.connections ?? 64,
      keepAliveTimeout: o.keepAliveTimeoutMs ?? 4_000,
      headersTimeout: o.headersTimeoutMs ?? 300_000,
      connect: {
        timeout: o.connectTimeoutMs ?? 5_000,
        ...(this.scheme === 'https' && tls
          ? {
              ca: tls.ca,
              cert: tls.cert,
              key: tls.key,
              servername: tls.servername,
              rejectUnauthorized: tls.rejectUnauthorized ?? true,
            }
          : {}),
      },
    });
    return { origin, pool };
  }
}
