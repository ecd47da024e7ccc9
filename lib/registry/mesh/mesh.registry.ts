import { NotSupportedError } from '../../core/errors.js';
import type { BackendFactory } from '../backend-context.js';

/** Placeholder until the mesh backend lands. */
export const createRegistry: BackendFactory = () => {
  throw new NotSupportedError("The 'mesh' backend is not available in this version of switchyard");
};
