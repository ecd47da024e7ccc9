import { DiscoveryError } from '../core/errors.js';

/** Exit codes of the `switchyard` command. */
export const EXIT_OK = 0;
/** The command ran but what it asked failed (registry unreachable, instance not found, refused). */
export const EXIT_FAILURE = 1;
/** The command line or the configuration is wrong; nothing was attempted. */
export const EXIT_USAGE = 2;
/** A second Ctrl-C while cleaning up: the shell convention for "interrupted". */
export const EXIT_INTERRUPTED = 130;

/**
 * The command line cannot be run as given (unknown command or option,
 * missing argument, config file not found). The CLI prints the message and
 * the usage text on stderr and exits with {@link EXIT_USAGE}.
 *
 * @example
 * throw new UsageError("unknown command 'lsit'");
 */
export class UsageError extends DiscoveryError {}

/**
 * What the user asked could not be done; the message says why. Exits with
 * {@link EXIT_FAILURE} (or `exitCode` when given).
 *
 * @example
 * throw new CommandFailure("no instance 'orders-1' in etcd at http://127.0.0.1:2379");
 */
export class CommandFailure extends DiscoveryError {
  constructor(
    message: string,
    readonly exitCode: number = EXIT_FAILURE,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/**
 * Rejects with {@link CommandFailure} when `work` does not settle within
 * `timeoutMs` (a hung registry must not hang the command).
 *
 * @example
 * const keys = await withDeadline(client.getAll().prefix(p).keys(), 5_000, 'etcd list keys');
 */
export async function withDeadline<T>(work: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new CommandFailure(`${what}: no answer within ${formatSeconds(timeoutMs)}`)),
      timeoutMs,
    );
  });
  try {
    return await Promise.race([work, expired]);
  } finally {
    clearTimeout(timer);
  }
}

/** `1.5 s`, `2 s`. */
export function formatSeconds(ms: number): string {
  return `${Number((ms / 1000).toFixed(3))} s`;
}
