import { Inject } from '@nestjs/common';
import { SERVICE_REGISTRY } from '../discovery.constants.js';

/**
 * Injects the ServiceRegistry of this app's own instance.
 *
 * @example
 * constructor(@InjectServiceRegistry() private readonly self: ServiceRegistry) {}
 */
export const InjectServiceRegistry = (): PropertyDecorator & ParameterDecorator => Inject(SERVICE_REGISTRY);
