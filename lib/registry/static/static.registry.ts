import { NotSupportedError } from '../../core/errors.js';
import type { BackendFactory } from '../backend-context.js';

/** Placeholder until the static backend lands. */
export const createRegistry: BackendFactory = () => {
  throw new NotSupportedError("The 'static' backend is not available in this version of switchyard");
};
