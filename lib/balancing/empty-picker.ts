import type { Endpoint } from '../core/endpoint.js';
import type { Picker } from './picker.js';

/** The picker of an empty snapshot: always `undefined`, so the caller reports why there is nothing. */
class EmptyPicker implements Picker {
  pick(): Endpoint | undefined {
    return undefined;
  }
}

/**
 * Shared picker for zero endpoints.
 *
 * @example
 * if (endpoints.length === 0) return EMPTY_PICKER;
 */
export const EMPTY_PICKER: Picker = Object.freeze(new EmptyPicker());
