/** Internal injection tokens (namespaced strings, as in @nestjs/terminus). */
export const DISCOVERY_MODULE_OPTIONS = 'SWITCHYARD:MODULE_OPTIONS';
export const DISCOVERY_INSTANCE = 'SWITCHYARD:DISCOVERY';
export const SERVICE_REGISTRY = 'SWITCHYARD:SERVICE_REGISTRY';
export const SERVICE_CLIENT_PREFIX = 'SWITCHYARD:CLIENT:';
