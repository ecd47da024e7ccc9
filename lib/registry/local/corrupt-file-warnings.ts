import type { DiscoveryLogger } from '../registry.interface.js';

/**
 * Remembers which version of which file was already reported as unusable,
 * so a corrupt file is warned about once, not on every rescan. Shared by
 * the watches of one registry.
 *
 * @example
 * warnings.warn(file, `${ino}:${size}:${mtimeMs}`, `skipping instance file '${file}'`);
 */
export class CorruptFileWarnings {
  private readonly reported = new Map<string, string>();

  constructor(private readonly logger: DiscoveryLogger) {}

  warn(file: string, version: string, message: string): void {
    if (this.reported.get(file) === version) return;
    this.reported.set(file, version);
    this.logger.warn(message);
  }

  forget(file: string): void {
    this.reported.delete(file);
  }
}
