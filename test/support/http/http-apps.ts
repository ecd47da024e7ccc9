import { join } from 'node:path';
import { findFreePort } from '../../../lib/core/tcp.js';
import { PeerProcess } from '../peers/peer-process.js';

export type HttpPlatform = 'express' | 'fastify';

/** What one app process counts (GET /api/stats). */
export interface HttpAppStats {
  instance: string;
  posts: string[];
  gets: number;
  /** Requests answered after SIGTERM (during the drain). */
  duringDrain: number;
  connections: number;
  draining: boolean;
}

export interface HttpAppOptions {
  id: string;
  platform: HttpPlatform;
  /** DiscoveryModule.forRoot options (backend, backendConfig, registration ...). */
  discovery: Record<string, unknown>;
  /** https with this certificate and key (PEM files); with `ca`, clients must present a certificate it signed. */
  tls?: { cert: string; key: string; ca?: string };
  /** Reuse a port (a restart of the same instance). */
  port?: number;
  /** Append each POST id to this file as it arrives (survives a SIGKILL). */
  seenFile?: string;
}

/** A Nest HTTP app of service `orders` in its own process (test/support/http/http-app-process.mjs). */
export class HttpApp {
  constructor(
    readonly options: HttpAppOptions,
    readonly peer: PeerProcess,
    readonly port: number,
  ) {}

  get id(): string {
    return this.options.id;
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  get url(): string {
    return `${this.options.tls ? 'https' : 'http'}://127.0.0.1:${this.port}`;
  }

  /** What the app counted, asked directly (not through discovery). */
  async stats(fetchOptions: RequestInit = {}): Promise<HttpAppStats> {
    const response = await fetch(`${this.url}/api/stats`, { ...fetchOptions, signal: AbortSignal.timeout(5_000) });
    return (await response.json()) as HttpAppStats;
  }

  /** From now on, answer `/api/whoami` with 429 and `Retry-After: retryAfter` for `forSeconds`. */
  async overload(retryAfter: number, forSeconds = retryAfter): Promise<void> {
    const response = await fetch(`${this.url}/api/overload?retryAfter=${retryAfter}&for=${forSeconds}`, {
      method: 'POST',
      signal: AbortSignal.timeout(5_000),
    });
    if (response.status !== 200) throw new Error(`overload: HTTP ${response.status}`);
  }
}

/** Starts an app and waits until it answers on its port (registration follows in the background). */
export async function startHttpApp(options: HttpAppOptions, attempts = 3): Promise<HttpApp> {
  const port = options.port ?? (await findFreePort());
  const peer = new PeerProcess({
    name: `${options.platform} app ${options.id}`,
    command: process.execPath,
    args: [join(import.meta.dirname, 'http-app-process.mjs')],
    env: {
      PORT: String(port),
      ID: options.id,
      PLATFORM: options.platform,
      DISCOVERY: JSON.stringify(options.discovery),
      ...(options.seenFile ? { SEEN_FILE: options.seenFile } : {}),
      ...(options.tls
        ? {
            TLS_CERT: options.tls.cert,
            TLS_KEY: options.tls.key,
            ...(options.tls.ca ? { TLS_CA: options.tls.ca } : {}),
          }
        : {}),
    },
    ready: async () => /listening \d+/.test(peer.log),
    readyTimeoutMs: 30_000,
  });
  try {
    await peer.start();
  } catch (error) {
    // Another process may have taken the free port first.
    if (attempts <= 1 || options.port !== undefined) throw error;
    return startHttpApp(options, attempts - 1);
  }
  return new HttpApp(options, peer, port);
}
