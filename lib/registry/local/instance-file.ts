import { hostname } from 'node:os';
import {
  fromSeedRecord,
  toSeedRecord,
  type SeedInstanceRecord,
  type ServiceInstance,
} from '../../core/service-instance.js';

/** Who wrote an instance file: lets a registration tell its own file from another's. */
export interface InstanceFileOwner {
  /** Random per registration; the only field used for decisions. */
  token: string;
  /** For operators reading the file. */
  pid: number;
  hostname: string;
}

/**
 * What one instance file holds: the seed's JSON record plus the liveness
 * fields of the `local` backend. Readers tolerate extra fields.
 */
export interface InstanceFileRecord extends SeedInstanceRecord {
  /** How long after `heartbeat_at` the instance stops being served. */
  ttl_ms: number;
  /** Last heartbeat, epoch milliseconds. */
  heartbeat_at: number;
  registered_at: number;
  owner: InstanceFileOwner;
}

/** A decoded instance file. */
export interface InstanceFileEntry {
  instance: ServiceInstance;
  heartbeatAt: number;
  ttlMs: number;
  /** Undefined for files written by hand (no owner block). */
  ownerToken: string | undefined;
  ownerPid: number | undefined;
  /** Moment the instance stops being served. */
  expiresAt: number;
}

/** Creates the owner block of a new registration. */
export function newOwner(token: string): InstanceFileOwner {
  return { token, pid: process.pid, hostname: hostname() };
}

/**
 * Serialises an instance file (pretty, so people can read and edit it).
 *
 * @example
 * encodeInstanceFile(me, { ttlMs: 90_000, heartbeatAt: Date.now(), registeredAt: Date.now(), owner: newOwner(randomUUID()) });
 */
export function encodeInstanceFile(
  instance: ServiceInstance,
  liveness: { ttlMs: number; heartbeatAt: number; registeredAt: number; owner: InstanceFileOwner },
): string {
  const record: InstanceFileRecord = {
    ...toSeedRecord(instance),
    ttl_ms: liveness.ttlMs,
    heartbeat_at: liveness.heartbeatAt,
    registered_at: liveness.registeredAt,
    owner: liveness.owner,
  };
  return `${JSON.stringify(record, null, 2)}\n`;
}

/**
 * Decodes an instance file. Throws (with the reason) when the file cannot
 * be used: bad JSON, or a seed record `fromSeedRecord` rejects. Files
 * written by hand may omit the liveness fields: `heartbeat_at` defaults to
 * the file's modification time and `ttl_ms` to `defaultTtlMs`.
 *
 * @example
 * const { instance, expiresAt } = decodeInstanceFile(text, { mtimeMs: stats.mtimeMs, defaultTtlMs: 90_000 });
 */
export function decodeInstanceFile(
  text: string,
  fallback: { mtimeMs: number; defaultTtlMs: number },
): InstanceFileEntry {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new Error(`not valid JSON (${(error as Error).message})`, { cause: error });
  }
  const instance = fromSeedRecord(parsed);
  const record = parsed as Partial<InstanceFileRecord>;
  const ttlMs = positiveNumber(record.ttl_ms) ?? fallback.defaultTtlMs;
  const heartbeatAt = positiveNumber(record.heartbeat_at) ?? fallback.mtimeMs;
  const owner = record.owner && typeof record.owner === 'object' ? record.owner : undefined;
  return {
    instance,
    heartbeatAt,
    ttlMs,
    ownerToken: typeof owner?.token === 'string' ? owner.token : undefined,
    ownerPid: typeof owner?.pid === 'number' ? owner.pid : undefined,
    expiresAt: heartbeatAt + ttlMs,
  };
}

function positiveNumber(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) && value > 0 ? value : undefined;
}
