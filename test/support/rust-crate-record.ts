import { isIP } from 'node:net';
import { expect } from 'vitest';

/*
 * The Rust crate's instance record (flare-server-core, src/discovery/instance.rs),
 * as serde_json writes it: a struct with derive(Serialize, Deserialize), no
 * rename attributes, fields in declaration order, `Option` as `null`,
 * `SocketAddr` as "ip:port" / "[ipv6]:port", `u32` weight. Tests hold what
 * switchyard writes in the `seed` layout against it field by field.
 */

/** The crate's `ServiceInstance` fields, in declaration order. */
export const CRATE_FIELDS = [
  'service_type',
  'instance_id',
  'address',
  'namespace',
  'version',
  'tags',
  'metadata',
  'healthy',
  'weight',
] as const;

/** The crate's `InstanceMetadata` fields, in declaration order. */
export const CRATE_METADATA_FIELDS = ['region', 'zone', 'environment', 'custom'] as const;

const U32_MAX = 4_294_967_295;

/** True for what Rust's `SocketAddr::from_str` accepts: `a.b.c.d:port` or `[ipv6]:port`. */
export function isSocketAddr(text: unknown): boolean {
  if (typeof text !== 'string') return false;
  const v6 = /^\[([^\]]+)\]:(\d{1,5})$/.exec(text);
  const v4 = /^(\d{1,3}(?:\.\d{1,3}){3}):(\d{1,5})$/.exec(text);
  const match = v6 ?? v4;
  if (!match) return false;
  const port = Number(match[2]);
  return isIP(match[1]) === (v6 ? 6 : 4) && port <= 65535;
}

const isStringMap = (value: unknown) =>
  value !== null &&
  typeof value === 'object' &&
  !Array.isArray(value) &&
  Object.values(value).every((v) => typeof v === 'string');

const isOptionString = (value: unknown) => value === null || typeof value === 'string';

/**
 * Asserts that `text` is a record the crate's serde derive would parse, in
 * the order it writes fields: names, types, `null`s, SocketAddr, u32 weight,
 * no extra field.
 */
export function expectCrateRecord(text: string): Record<string, unknown> {
  const record = JSON.parse(text) as Record<string, unknown>;
  expect(Object.keys(record)).toEqual([...CRATE_FIELDS]);
  expect(typeof record.service_type).toBe('string');
  expect(typeof record.instance_id).toBe('string');
  expect(isSocketAddr(record.address), `address ${JSON.stringify(record.address)} is a SocketAddr`).toBe(true);
  expect(isOptionString(record.namespace)).toBe(true);
  expect(isOptionString(record.version)).toBe(true);
  expect(isStringMap(record.tags)).toBe(true);
  const metadata = record.metadata as Record<string, unknown>;
  expect(Object.keys(metadata)).toEqual([...CRATE_METADATA_FIELDS]);
  for (const field of ['region', 'zone', 'environment'] as const) expect(isOptionString(metadata[field])).toBe(true);
  expect(isStringMap(metadata.custom)).toBe(true);
  expect(typeof record.healthy).toBe('boolean');
  expect(
    Number.isInteger(record.weight) && (record.weight as number) >= 0 && (record.weight as number) <= U32_MAX,
  ).toBe(true);
  // serde_json::to_vec writes compact JSON: no space anywhere outside strings.
  expect(JSON.stringify(record)).toBe(text);
  return record;
}
