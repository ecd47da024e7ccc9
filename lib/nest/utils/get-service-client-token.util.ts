import { SERVICE_CLIENT_PREFIX } from '../discovery.constants.js';

/** The injection token of the ServiceClient for `service`. */
export function getServiceClientToken(service: string): string {
  return `${SERVICE_CLIENT_PREFIX}${service}`;
}
