import { z } from 'zod';
import type { BackendSchemaContext } from '../../core/config/backend-schema.js';
import { commonBackendFields, hostPortList } from '../../core/config/config-fields.js';

// Loaded by core's configuration loader, so it imports only zod and core:
// core/config may import each registry/<backend>/<backend>.schema.ts and
// nothing else from registry/.

/**
 * `backend = "static"`: `addresses`, a fixed list of `host:port`
 * (normalised, duplicates dropped; each bad entry named by its index).
 *
 * @example
 * staticConfigSchema(context).parse({ addresses: ['127.0.0.1:50051'] }); // { addresses: ['127.0.0.1:50051'] }
 */
export const staticConfigSchema = (_context: BackendSchemaContext) =>
  z.strictObject({ ...commonBackendFields, addresses: hostPortList.default([]) });

/** The `static` backend's settings. */
export type StaticSettings = z.output<ReturnType<typeof staticConfigSchema>>;
