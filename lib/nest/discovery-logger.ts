import { Logger } from '@nestjs/common';
import type { DiscoveryLogger } from '../registry/registry.interface.js';

/** Routes switchyard's log lines through Nest's Logger (context `Discovery`). */
export function nestDiscoveryLogger(context = 'Discovery'): DiscoveryLogger {
  const logger = new Logger(context);
  return {
    log: (m) => logger.log(m),
    warn: (m) => logger.warn(m),
    error: (m) => logger.error(m),
    debug: (m) => logger.debug(m),
  };
}
