import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { formatAddress, parseAddress } from '../address.js';
import { InvalidAddressError } from '../errors.js';

// The zod pieces shared by core's schema and every backend's schema
// (registry/<backend>/<backend>.schema.ts), so a kind of value is checked
// and described the same way wherever it appears.

/**
 * Durations in seconds: above 0.01 s (timers below that spin) and at most a
 * week (setTimeout overflows past 24.8 days and would fire at once).
 */
export const seconds = z.number().min(0.01).max(604_800);

export const nonEmpty = z.string().min(1);

/** A server URL; credentials never go in it (they would end up in logs): use token / auth. */
export const serverUrl = nonEmpty.refine((v) => !/^[a-z][a-z0-9+.-]*:\/\/[^/]*@/i.test(v), {
  message: 'a URL without user:password@ (put credentials in backend_config.token or backend_config.auth)',
});

/** The `tls` table of a backend: each entry inline PEM text or a file path. */
export const tlsFilesSchema = z.strictObject({
  ca: nonEmpty.optional(),
  cert: nonEmpty.optional(),
  key: nonEmpty.optional(),
  insecureSkipVerify: z.boolean().optional(),
});

/** Keys every backend_config may hold. */
export const commonBackendFields = {
  /** The service this configuration discovers, and registers as (the seed's `service_type`). */
  serviceType: nonEmpty.optional(),
};

/** Seconds (as configured) to whole milliseconds. */
export function toMs(valueSeconds: number): number {
  return Math.round(valueSeconds * 1000);
}

/** Issue parameter naming a path outside the configuration (a bootstrap file, an environment variable), shown as is. */
export const DISPLAY_PATH_PARAM = 'displayPath';
/**
 * Issue parameter holding the value a schema's own check quotes, or none
 * (zod would otherwise quote the whole object being checked).
 */
export const QUOTED_VALUE_PARAM = 'quotedValue';

/**
 * Reports a problem found by a schema's own check, at `path` below the
 * value being checked, quoting `input` when given (core names the field as
 * the user wrote it).
 *
 * @example
 * reportIssue(ctx, ['endpoints', 1], 'an http:// or https:// URL', 'ftp://x:1');
 */
export function reportIssue(
  ctx: z.RefinementCtx,
  path: readonly PropertyKey[],
  message: string,
  input?: unknown,
): void {
  ctx.addIssue({
    code: 'custom',
    message,
    path: [...path],
    params: { [QUOTED_VALUE_PARAM]: input },
  });
}

/** Reports a problem at a path outside the configuration, shown exactly as `displayPath`. */
export function reportIssueAt(ctx: z.RefinementCtx, displayPath: string, message: string, input?: unknown): void {
  ctx.addIssue({
    code: 'custom',
    message,
    params: { [DISPLAY_PATH_PARAM]: displayPath, [QUOTED_VALUE_PARAM]: input },
  });
}

/** What a bad `host:port` list entry is expected to be. */
export const HOST_PORT_EXPECTATION = 'a "host:port" address (IPv6 in brackets, e.g. "[::1]:50051")';

/**
 * Normalises `host:port` addresses (IPv6 in brackets) and drops
 * duplicates; each bad entry is returned with its index.
 *
 * @example
 * normalizeHostPorts(['localhost:8080', 'x']); // { addresses: ['localhost:8080'], invalid: [{ index: 1, value: 'x' }] }
 */
export function normalizeHostPorts(values: readonly unknown[]): {
  addresses: string[];
  invalid: Array<{ index: number; value: unknown }>;
} {
  const seen = new Set<string>();
  const addresses: string[] = [];
  const invalid: Array<{ index: number; value: unknown }> = [];
  values.forEach((value, index) => {
    let address: string;
    try {
      const { host, port } = parseAddress(value);
      address = formatAddress(host, port);
    } catch (error) {
      if (!(error instanceof InvalidAddressError)) throw error;
      invalid.push({ index, value });
      return;
    }
    if (!seen.has(address)) {
      seen.add(address);
      addresses.push(address);
    }
  });
  return { addresses, invalid };
}

/** A list of `host:port` addresses, normalised and de-duplicated. */
export const hostPortList = z.array(z.unknown()).transform((values, ctx) => {
  const { addresses, invalid } = normalizeHostPorts(values);
  for (const { index, value } of invalid) reportIssue(ctx, [index], HOST_PORT_EXPECTATION, value);
  return addresses;
});

/** PEM bytes of the CA, client certificate and key (undefined where not given or unreadable). */
export interface TlsMaterial {
  ca: Buffer | undefined;
  cert: Buffer | undefined;
  key: Buffer | undefined;
}

/**
 * Reads a backend's TLS files (or inline PEM, both common in deployment
 * tooling), reporting each problem below the `tls` field: a certificate
 * without its key (or the reverse), an unreadable file. Shared by the etcd
 * and Consul schemas.
 *
 * @example
 * const material = loadTlsMaterial(raw.tls, ctx);
 */
export function loadTlsMaterial(tls: z.output<typeof tlsFilesSchema>, ctx: z.RefinementCtx): TlsMaterial {
  if ((tls.cert === undefined) !== (tls.key === undefined)) {
    const missing = tls.cert === undefined ? 'cert' : 'key';
    reportIssue(ctx, ['tls', missing], 'a client certificate and its key are given together (one of them is missing)');
  }
  const load = (name: 'ca' | 'cert' | 'key'): Buffer | undefined => {
    const value = tls[name];
    if (value === undefined) return undefined;
    if (value.includes('-----BEGIN')) return Buffer.from(value);
    try {
      return readFileSync(value);
    } catch (error) {
      reportIssue(
        ctx,
        ['tls', name],
        `a readable PEM file (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`,
        value,
      );
      return undefined;
    }
  };
  return { ca: load('ca'), cert: load('cert'), key: load('key') };
}
