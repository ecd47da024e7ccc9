import { Inject } from '@nestjs/common';
import { getServiceClientToken } from '../utils/get-service-client-token.util.js';
import { recordRequestedClient } from '../utils/requested-clients.js';

/**
 * Injects the ServiceClient of a service.
 *
 * @example
 * constructor(@InjectServiceClient('orders') private readonly orders: ServiceClient) {}
 */
export const InjectServiceClient = (service: string): PropertyDecorator & ParameterDecorator => {
  if (typeof service !== 'string' || service.length === 0) {
    throw new TypeError(`@InjectServiceClient needs a service name (got ${JSON.stringify(service)})`);
  }
  recordRequestedClient(service);
  return Inject(getServiceClientToken(service));
};
