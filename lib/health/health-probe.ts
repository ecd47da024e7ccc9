import * as grpc from '@grpc/grpc-js';
import { request } from 'node:http';
import { createConnection } from 'node:net';
import { HealthClientConstructor, ServingStatus, type HealthClient } from './grpc-health-protocol.js';

/** Which protocol active checks speak (`tcp`: the port accepts a connection). */
export type HealthCheckKind = 'grpc' | 'http' | 'tcp';

/** One check's outcome. */
export interface ProbeResult {
  ok: boolean;
  /** Why it failed (or a note on a pass), for logs and events. */
  detail?: string;
}

/** Asks one endpoint whether it serves; owns whatever connection it needs. */
export interface HealthProbe {
  check(timeoutMs: number): Promise<ProbeResult>;
  close(): void;
}

/** Where and how to probe. */
export interface ProbeTarget {
  host: string;
  port: number;
  kind: HealthCheckKind;
  /** grpc: the service name asked for (`''` = whole server). */
  service: string;
  /** http: the path requested. */
  path: string;
  /** Longest reconnect backoff of the probe's channel, ms (the check interval). */
  intervalMs: number;
}

/**
 * Builds the probe for a target.
 *
 * @example
 * const probe = createProbe({ host: '127.0.0.1', port: 50051, kind: 'grpc', service: '', path: '/health', intervalMs: 10_000 });
 */
export function createProbe(target: ProbeTarget): HealthProbe {
  if (target.kind === 'http') return new HttpProbe(target);
  if (target.kind === 'tcp') return new TcpConnectProbe(target);
  return new GrpcHealthProbe(target);
}

/** `grpc.health.v1.Health/Check` over a channel of its own. */
class GrpcHealthProbe implements HealthProbe {
  private readonly client: HealthClient;
  private unimplementedNoted = false;

  constructor(private readonly target: ProbeTarget) {
    const host = target.host.includes(':') ? `[${target.host}]` : target.host;
    this.client = new HealthClientConstructor(`${host}:${target.port}`, grpc.credentials.createInsecure(), {
      // A connection of its own: the check measures the endpoint, not the app's channel state.
      'grpc.use_local_subchannel_pool': 1,
      // A restarted server must be seen by the next check, not after a long reconnect backoff.
      'grpc.initial_reconnect_backoff_ms': Math.min(1_000, target.intervalMs),
      'grpc.max_reconnect_backoff_ms': Math.max(100, target.intervalMs),
    });
  }

  check(timeoutMs: number): Promise<ProbeResult> {
    return new Promise((resolve) => {
      this.client.Check(
        { service: this.target.service },
        new grpc.Metadata(),
        { deadline: Date.now() + timeoutMs },
        (error, response) => {
          if (error) {
            // gRPC's own client-side health checking treats UNIMPLEMENTED as
            // "this server does not do health checks": serving, with a note.
            if (error.code === grpc.status.UNIMPLEMENTED) {
              const note = this.unimplementedNoted
                ? undefined
                : 'the server does not implement grpc.health.v1.Health; treated as serving';
              this.unimplementedNoted = true;
              resolve({ ok: true, detail: note });
              return;
            }
            resolve({ ok: false, detail: `${grpc.status[error.code] ?? error.code}: ${error.details}` });
            return;
          }
          const status = response?.status ?? ServingStatus.UNKNOWN;
          resolve(
            status === ServingStatus.SERVING
              ? { ok: true }
              : { ok: false, detail: ServingStatus[status] ?? String(status) },
          );
        },
      );
    });
  }

  close(): void {
    this.client.close();
  }
}

/** HTTP `GET path`: any 2xx passes. No keep-alive, so nothing stays open between checks. */
class HttpProbe implements HealthProbe {
  constructor(private readonly target: ProbeTarget) {}

  check(timeoutMs: number): Promise<ProbeResult> {
    return new Promise((resolve) => {
      let settled = false;
      const done = (result: ProbeResult) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(result);
      };
      const req = request(
        {
          host: this.target.host,
          port: this.target.port,
          path: this.target.path,
          method: 'GET',
          agent: false,
          headers: { connection: 'close' },
        },
        (res) => {
          res.resume();
          const code = res.statusCode ?? 0;
          done(code >= 200 && code < 300 ? { ok: true } : { ok: false, detail: `HTTP ${code}` });
        },
      );
      const timer = setTimeout(() => {
        done({ ok: false, detail: `no answer within ${timeoutMs} ms` });
        req.destroy();
      }, timeoutMs);
      req.on('error', (error: NodeJS.ErrnoException) => done({ ok: false, detail: error.code ?? error.message }));
      req.end();
    });
  }

  close(): void {}
}

/**
 * Connect and close: for servers with no health endpoint (Nest TCP
 * microservices). A refused or unanswered connection fails; what the server
 * would answer to a request is not asked.
 */
class TcpConnectProbe implements HealthProbe {
  constructor(private readonly target: ProbeTarget) {}

  check(timeoutMs: number): Promise<ProbeResult> {
    return new Promise((resolve) => {
      const socket = createConnection({ host: this.target.host, port: this.target.port });
      const done = (result: ProbeResult) => {
        clearTimeout(timer);
        socket.destroy();
        resolve(result);
      };
      const timer = setTimeout(() => done({ ok: false, detail: `no connection within ${timeoutMs} ms` }), timeoutMs);
      socket.once('connect', () => done({ ok: true }));
      socket.once('error', (error: NodeJS.ErrnoException) => done({ ok: false, detail: error.code ?? error.message }));
    });
  }

  close(): void {}
}
