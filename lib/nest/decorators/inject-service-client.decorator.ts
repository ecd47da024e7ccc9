import { Inject } from '@nestjs/common';
import { getServiceClientToken } from '../utils/get-service-client-token.util.js';
import { recordRequestedClient } from '../utils/requested-clients.js';

/**
 * Injects the ServiceClient of a service. The client gets the options
 * declared for that service (`forFeature` or `forRoot({ clients })`), else
 * the module's defaults.
 *
 * @example
 * constructor(@InjectServiceClient('orders') private readonly orders: ServiceClient) {}
 */
export const InjectServiceClient = (service: string): PropertyDecorator & ParameterDecorator => {
  if (typeof service !== 'string' || service.length === 0) {
    throw new TypeError(`@InjectServiceClient needs a service name (got ${JSON.stringify(service)})`);
  }
  const inject = Inject(getServiceClientToken(service));
  return (target: object, key: string | symbol | undefined, index?: number) => {
    recordRequestedClient(target, service);
    (inject as (target: object, key: string | symbol | undefined, index?: number) => void)(target, key, index);
  };
};
