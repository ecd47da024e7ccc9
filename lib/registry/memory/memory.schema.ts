import { z } from 'zod';
import type { BackendSchemaContext } from '../../core/config/backend-schema.js';
import { commonBackendFields, nonEmpty } from '../../core/config/config-fields.js';

// Loaded by core's configuration loader, so it imports only zod and core:
// core/config may import each registry/<backend>/<backend>.schema.ts and
// nothing else from registry/.

/**
 * `backend = "memory"`: `store`, the name of the process-wide
 * {@link MemoryStore} shared with other registries (default `default`).
 *
 * @example
 * memoryConfigSchema(context).parse({ store: 'test-a' });
 */
export const memoryConfigSchema = (_context: BackendSchemaContext) =>
  z.strictObject({ ...commonBackendFields, store: nonEmpty.optional() });

/** The `memory` backend's settings. */
export type MemorySettings = z.output<ReturnType<typeof memoryConfigSchema>>;
