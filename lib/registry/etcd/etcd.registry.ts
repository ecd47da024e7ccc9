import { NotSupportedError } from '../../core/errors.js';
import type { BackendFactory } from '../backend-context.js';

/** Placeholder until the etcd backend lands. */
export const createRegistry: BackendFactory = () => {
  throw new NotSupportedError("The 'etcd' backend is not available in this version of switchyard");
};
