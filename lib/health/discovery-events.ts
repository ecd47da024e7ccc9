import type { EndpointSetState } from '../core/endpoint-set.js';
import type { HealthCheckKind } from './health-probe.js';

/**
 * What happened in discovery, for telemetry other than Prometheus: the same
 * facts the metrics are built from. Per-call facts (picks) are not events —
 * one event per call would cost more than the call's balancing; read them
 * with `ServiceClient.pickCounts()` instead.
 */
export type DiscoveryEvent =
  /** The served set of a service changed (membership, health, state). */
  | {
      type: 'endpoints';
      service: string;
      revision: number;
      /** State of the served set (`stale` while the registry is unreachable). */
      state: EndpointSetState;
      /** Endpoints the registry knows. */
      total: number;
      /** Known endpoints passing active checks and not ejected. */
      healthy: number;
      /** Known endpoints failing active checks. */
      unhealthy: number;
      /** Known endpoints ejected by outlier detection (and not also failing checks). */
      ejected: number;
      /** Endpoints calls are balanced over (all known ones in panic mode). */
      served: number;
      panic: boolean;
      at: number;
    }
  /** One active check finished. `service` is set on a client's stream, absent on the Discovery's (one per check). */
  | {
      type: 'health-check';
      service?: string;
      address: string;
      kind: HealthCheckKind;
      ok: boolean;
      healthy: boolean;
      /** True when this check flipped the endpoint's state. */
      changed: boolean;
      detail?: string;
      durationMs: number;
      at: number;
    }
  /** Passive outlier detection took an endpoint out. */
  | {
      type: 'ejected';
      service: string;
      address: string;
      key: string;
      consecutiveFailures: number;
      durationMs: number;
      ejections: number;
      at: number;
    }
  /** An ejection ended. */
  | { type: 'returned'; service: string; address: string; key: string; at: number }
  /** Panic mode: too few healthy endpoints, so every known one is used (`active`), or back to normal. */
  | { type: 'panic'; service: string; active: boolean; healthy: number; total: number; at: number }
  /** The registry could not be read for a service (its set turned stale). */
  | { type: 'registry-error'; service: string; backend: string; reason: string; at: number }
  /** A registry snapshot reached the client `lagMs` after the backend built it. */
  | { type: 'watch-lag'; service: string; lagMs: number; at: number }
  /** The app's own registration changed state. */
  | { type: 'registration'; service: string; instance: string; state: string; reason?: string; at: number };

/** The kinds of {@link DiscoveryEvent}, e.g. `'ejected'` (for filtering `events$`). */
export type DiscoveryEventType = DiscoveryEvent['type'];
