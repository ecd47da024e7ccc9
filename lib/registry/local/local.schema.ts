import { z } from 'zod';
import type { BackendSchemaContext } from '../../core/config/backend-schema.js';
import { commonBackendFields, nonEmpty } from '../../core/config/config-fields.js';

// Loaded by core's configuration loader, so it imports only zod and core:
// core/config may import each registry/<backend>/<backend>.schema.ts and
// nothing else from registry/.

/**
 * `backend = "local"`: `dir`, the shared folder (default
 * `<os tmpdir>/switchyard`, chosen by {@link RegistryDirectory}).
 *
 * @example
 * localConfigSchema(context).parse({ dir: '/var/run/myapp/discovery' });
 */
export const localConfigSchema = (_context: BackendSchemaContext) =>
  z.strictObject({ ...commonBackendFields, dir: nonEmpty.optional() });

/** The `local` backend's settings. */
export type LocalSettings = z.output<ReturnType<typeof localConfigSchema>>;
