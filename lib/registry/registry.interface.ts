import type { Observable } from 'rxjs';
import type { DiscoveryQuery } from '../core/discovery-query.js';
import type { EndpointSet } from '../core/endpoint-set.js';
import type { ServiceInstance } from '../core/service-instance.js';
import type { Reachability } from './shared/reachability.js';

/** Events of one registration: the backend lost it (lease expired, agent restarted) or restored it. */
export type RegistrationEvent =
  | { type: 'lost'; instance: ServiceInstance; reason: string; at: number }
  | { type: 'restored'; instance: ServiceInstance; at: number };

/** Timing of a registration, in milliseconds. */
export interface RegistrationTiming {
  /** How long the registry keeps an instance without a heartbeat. */
  ttlMs: number;
  /** How often the backend refreshes the registration. */
  heartbeatMs: number;
}

/** A live registration of one instance in one registry. */
export interface Registration {
  readonly instance: ServiceInstance;
  /** `lost` / `restored` notifications; completes on deregister or close. */
  readonly events$: Observable<RegistrationEvent>;
  /** Refreshes the registration now (backends also do it on their own timer). */
  heartbeat(): Promise<void>;
  /** Replaces the stored instance (same id). */
  update(instance: ServiceInstance): Promise<void>;
  /** Removes the instance; idempotent. */
  deregister(): Promise<void>;
  /**
   * Stops refreshing without removing the instance: the registry drops it
   * when its TTL runs out (`deregister_on_shutdown = false`). Idempotent.
   */
  stop(): Promise<void>;
}

/**
 * One backend. `watch` streams immutable snapshots and never errors: a
 * registry outage yields the last known good set with state `stale`.
 */
export interface Registry {
  /** Backend name: local, memory, static, etcd, consul, dns, kubernetes, mesh. */
  readonly backend: string;
  /** True for backends that only read (dns, kubernetes, static, mesh): `register` throws NotSupportedError. */
  readonly readOnly: boolean;
  register(instance: ServiceInstance, timing: RegistrationTiming): Promise<Registration>;
  /** Unfiltered-by-zone snapshots of instances matching the query (namespace, version, tags). */
  watch(query: DiscoveryQuery): Observable<EndpointSet>;
  /**
   * Whether the backend's server answers: the current state, its changes
   * and an on-demand probe, the same for every backend (see {@link Reachability}).
   */
  readonly reachability: Reachability;
  /**
   * The weight of an instance registered without one, when the backend's
   * format has its own (the etcd `seed` layout: 100, the Rust services'
   * default); absent means 1.
   */
  readonly defaultWeight?: number;
  /** Stops every timer, stream and registration this registry opened. */
  close(): Promise<void>;
  /**
   * Asks for an early re-read of a service (e.g. DNS re-resolution after the
   * grpc layer saw a connection fail). Optional; rate-limited by the
   * backend. Returns true when it moved a read earlier.
   */
  refresh?(service: string): boolean;
}

/** Optional logger; backends log skipped records and outages through it. */
export interface DiscoveryLogger {
  log(message: string): void;
  warn(message: string): void;
  error(message: string): void;
  debug?(message: string): void;
}

/** Logger used when none is given: warnings and errors to stderr, info dropped. */
export const consoleLogger: DiscoveryLogger = {
  log: () => undefined,
  warn: (m) => console.warn(`[switchyard] ${m}`),
  error: (m) => console.error(`[switchyard] ${m}`),
};
