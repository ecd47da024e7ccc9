import { EXIT_INTERRUPTED } from './cli-errors.js';

/** A pending Ctrl-C (or SIGTERM), and the way to stop listening for it. */
export interface Interrupt {
  /** Resolves with the signal's name at the first SIGINT or SIGTERM. */
  readonly signalled: Promise<NodeJS.Signals>;
  dispose(): void;
}

/**
 * Waits for Ctrl-C or SIGTERM so long-running commands can clean up
 * (deregister, close streams) and exit 0. A second signal while cleaning
 * up exits at once with 130.
 *
 * @example
 * const interrupt = onInterrupt(); await interrupt.signalled; await cleanUp(); interrupt.dispose();
 */
export function onInterrupt(): Interrupt {
  let seen = false;
  let resolve!: (signal: NodeJS.Signals) => void;
  const signalled = new Promise<NodeJS.Signals>((r) => (resolve = r));
  const handler = (signal: NodeJS.Signals) => {
    if (seen) process.exit(EXIT_INTERRUPTED);
    seen = true;
    resolve(signal);
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  // Signal listeners do not keep Node running, and backends unref their
  // heartbeat timers: without this the command would end by itself.
  const keepAlive = setInterval(() => undefined, 1 << 30);
  return {
    signalled,
    dispose: () => {
      clearInterval(keepAlive);
      process.off('SIGINT', handler);
      process.off('SIGTERM', handler);
    },
  };
}
