import type { z } from 'zod';

/**
 * What a backend's schema may read besides its own `backend_config`:
 * the sections core resolves first (durations in ms), so a backend can
 * derive its own defaults from them (an etcd request deadline from the
 * heartbeat, a DNS TTL ceiling from `refresh_interval`).
 */
export interface BackendSchemaContext {
  readonly registration: { readonly ttlMs: number; readonly heartbeatMs: number };
  readonly refreshIntervalMs: number;
  readonly healthCheck: {
    readonly path: string;
    readonly intervalMs: number;
    readonly timeoutMs: number;
    readonly service: string;
  };
  readonly namespace: { readonly separator: string };
  /** Environment variables a backend honours as its client library does (mesh: GRPC_XDS_BOOTSTRAP). */
  readonly env: NodeJS.ProcessEnv;
}

/**
 * A backend's configuration schema: given the context, a zod schema that
 * validates the backend's `backend_config` (camelCase) and transforms it
 * into that backend's settings. Each lives beside its backend
 * (`registry/<backend>/<backend>.schema.ts`) and imports only zod and core.
 *
 * @example
 * export const staticConfigSchema = (_context: BackendSchemaContext) => z.strictObject({ addresses: hostPortList.default([]) });
 */
export type BackendSchema = (context: BackendSchemaContext) => z.ZodType;
