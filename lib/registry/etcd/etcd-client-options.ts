import type { IOptions } from 'etcd3';
import { backoffDelay } from '../../core/backoff.js';
import { DiscoveryError } from '../../core/errors.js';
import type { Etcd3Library } from './etcd-connection.js';
import type { EtcdSettings } from './etcd.schema.js';

/** A request that got no answer within its deadline (a stalled or busy server, or a hung connection). */
export class EtcdTimeoutError extends DiscoveryError {}

type FaultHandling = NonNullable<IOptions['faultHandling']>;

/**
 * The etcd3 client options the backend needs: every unary call carries the
 * request deadline, gRPC keepalive notices a dead connection, reconnects
 * stay within a few seconds, and etcd3's circuit breaker is replaced by a
 * pass-through (the backend retries on its own jittered backoff).
 *
 * A slow reply is not a dead server: etcd3's pool closes every client of a
 * host (the shared watch stream and every read in flight with them) when a
 * call fails with an error it deems recoverable, DEADLINE_EXCEEDED
 * included. The host policy hands a deadline back as {@link EtcdTimeoutError},
 * which etcd3 does not treat so, so a busy etcd (or a busy client missing
 * its own deadlines) costs one request, not every watch.
 *
 * @example
 * const client = new lib.Etcd3(etcdClientOptions(lib, settings));
 */
export function etcdClientOptions(lib: Etcd3Library, settings: EtcdSettings, hosts = settings.hosts): IOptions {
  const requestTimeoutMs = settings.requestTimeoutMs;
  const deadline = () => ({ deadline: Date.now() + requestTimeoutMs });
  const hostCount = hosts.length;
  // etcd3's default host policy is a circuit breaker that refuses every
  // call for 5 s after three failures: after an outage the key would come
  // back seconds late. The backend retries on its own jittered backoff, so
  // the host policy only passes calls through; the global one tries each
  // other endpoint once on a connection failure (leader loss in a cluster).
  // (Async like cockatiel's: etcd3's markFailed relies on a rejected promise, not a throw.)
  const passThrough = {
    async execute<T>(fn: (context: { signal: AbortSignal; attempt: number }) => T | Promise<T>): Promise<T> {
      try {
        return await fn({ signal: new AbortController().signal, attempt: 0 });
      } catch (error) {
        if (error instanceof lib.GRPCDeadlineExceededError) {
          throw new EtcdTimeoutError(`etcd answered no request within its deadline (${error.message})`, {
            cause: error,
          });
        }
        throw error;
      }
    },
  };
  const acrossHosts = {
    async execute<T>(fn: (context: { signal: AbortSignal; attempt: number }) => Promise<T>): Promise<T> {
      const signal = new AbortController().signal;
      for (let attempt = 0; ; attempt++) {
        try {
          return await fn({ signal, attempt });
        } catch (error) {
          if (attempt + 1 >= hostCount || !lib.isRecoverableError(error as Error)) throw error;
        }
      }
    },
  };
  const reconnectCapMs = Math.max(1_000, Math.min(5_000, settings.probeIntervalMs * 2));
  return {
    hosts: [...hosts],
    ...(settings.credentials ? { credentials: settings.credentials as NonNullable<IOptions['credentials']> } : {}),
    ...(settings.auth ? { auth: { ...settings.auth, callOptions: deadline } } : {}),
    dialTimeout: settings.dialTimeoutMs,
    defaultCallOptions: (context) => (context.isStream ? {} : deadline()),
    grpcOptions: {
      // etcd refuses pings more often than every 5 s (--grpc-keepalive-min-time)
      // and only while a stream is open, so: 10 s, with calls only.
      'grpc.keepalive_time_ms': 10_000,
      'grpc.keepalive_timeout_ms': Math.max(1_000, requestTimeoutMs),
      'grpc.keepalive_permit_without_calls': 0,
      // grpc-js backs off up to 120 s between reconnects by default; an etcd
      // that is back must be noticed within a few seconds.
      'grpc.initial_reconnect_backoff_ms': 100,
      'grpc.max_reconnect_backoff_ms': reconnectCapMs,
    },
    faultHandling: {
      host: () => passThrough as unknown as ReturnType<NonNullable<FaultHandling['host']>>,
      global: acrossHosts as unknown as FaultHandling['global'],
      watchBackoff: jitteredWatchBackoff(0, reconnectCapMs) as unknown as FaultHandling['watchBackoff'],
    },
  };
}

/** A cockatiel-style backoff (what etcd3's watch manager expects) with full jitter. */
function jitteredWatchBackoff(attempt: number, maxMs: number): { duration: number; next(): unknown } {
  return {
    duration: Math.max(20, backoffDelay(attempt, { initialMs: 200, maxMs })),
    next: () => jitteredWatchBackoff(attempt + 1, maxMs),
  };
}
