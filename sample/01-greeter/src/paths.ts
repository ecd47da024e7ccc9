import { join } from 'node:path';

/** The proto is read from the sample folder, so the build needs no copy step. */
export const GREETER_PROTO = join(import.meta.dirname, '..', '..', 'sample', '01-greeter', 'protos', 'greeter.proto');
