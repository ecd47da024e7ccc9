import { NotSupportedError } from '../../core/errors.js';
import type { BackendFactory } from '../backend-context.js';

/** Placeholder until the local backend lands. */
export const createRegistry: BackendFactory = () => {
  throw new NotSupportedError("The 'local' backend is not available in this version of switchyard");
};
