import { z } from 'zod';
import type { BackendSchemaContext } from './backend-schema.js';
// The one place core imports from registry/: each backend's schema file,
// which itself imports only zod and core. Nothing else from registry/ may
// be imported by core.
import { consulConfigSchema } from '../../registry/consul/consul.schema.js';
import { dnsConfigSchema } from '../../registry/dns/dns.schema.js';
import { etcdConfigSchema } from '../../registry/etcd/etcd.schema.js';
import { kubernetesConfigSchema } from '../../registry/kubernetes/kubernetes.schema.js';
import { localConfigSchema } from '../../registry/local/local.schema.js';
import { memoryConfigSchema } from '../../registry/memory/memory.schema.js';
import { meshConfigSchema } from '../../registry/mesh/mesh.schema.js';
import { staticConfigSchema } from '../../registry/static/static.schema.js';

/** Each backend's schema, by backend name (`xds` is resolved to `mesh` before this). */
export const BACKEND_SCHEMAS = {
  local: localConfigSchema,
  memory: memoryConfigSchema,
  static: staticConfigSchema,
  etcd: etcdConfigSchema,
  consul: consulConfigSchema,
  dns: dnsConfigSchema,
  kubernetes: kubernetesConfigSchema,
  mesh: meshConfigSchema,
} as const;

/** A backend as resolved: `xds` has become `mesh`. */
export type ResolvedBackendName = keyof typeof BACKEND_SCHEMAS;

/** The settings a backend's schema produces from its `backend_config`. */
export type BackendSettings<B extends ResolvedBackendName> = z.output<ReturnType<(typeof BACKEND_SCHEMAS)[B]>>;

/** `backend_config` in camelCase, for whichever backend is chosen. */
export type BackendConfigInput = {
  [B in ResolvedBackendName]: z.input<ReturnType<(typeof BACKEND_SCHEMAS)[B]>>;
}[ResolvedBackendName];

const member = <B extends ResolvedBackendName, S extends z.ZodType>(backend: B, schema: S) =>
  z.strictObject({ backend: z.literal(backend), backendConfig: schema.prefault({} as z.input<S>) });

/**
 * `backend` with its `backend_config`, as a union discriminated on
 * `backend`: each member validates and transforms its backend's
 * `backend_config` into that backend's settings.
 *
 * @example
 * backendSelectionSchema(context).parse({ backend: 'static', backendConfig: { addresses: ['127.0.0.1:1'] } });
 */
export function backendSelectionSchema(context: BackendSchemaContext) {
  return z.discriminatedUnion('backend', [
    member('local', localConfigSchema(context)),
    member('memory', memoryConfigSchema(context)),
    member('static', staticConfigSchema(context)),
    member('etcd', etcdConfigSchema(context)),
    member('consul', consulConfigSchema(context)),
    member('dns', dnsConfigSchema(context)),
    member('kubernetes', kubernetesConfigSchema(context)),
    member('mesh', meshConfigSchema(context)),
  ]);
}

/** One member of the union: a backend name and that backend's settings. */
export type BackendSelection = z.output<ReturnType<typeof backendSelectionSchema>>;
