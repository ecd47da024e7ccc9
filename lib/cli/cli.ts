import { ConfigurationError, InvalidAddressError } from '../core/errors.js';
import { InvalidInstanceError } from '../core/service-instance.js';
import { parseCliArguments, type CommandName } from './cli-arguments.js';
import { CommandFailure, EXIT_FAILURE, EXIT_OK, EXIT_USAGE, UsageError } from './cli-errors.js';
import { CliOutput, processStreams, type CliStreams } from './cli-output.js';
import type { CliSession } from './cli-session.js';
import { USAGE } from './cli-usage.js';

type Handler = (session: CliSession) => Promise<number>;

// Loaded on use: `help` and usage errors answer without loading the
// configuration schema, rxjs or any backend.
const HANDLERS: Record<Exclude<CommandName, 'help'>, () => Promise<Handler>> = {
  ls: async () => (await import('./commands/ls.command.js')).listCommand,
  watch: async () => (await import('./commands/watch.command.js')).watchCommand,
  register: async () => (await import('./commands/register.command.js')).registerCommand,
  deregister: async () => (await import('./commands/deregister.command.js')).deregisterCommand,
  check: async () => (await import('./commands/check.command.js')).checkCommand,
};

/**
 * Runs the `switchyard` command line and resolves with its exit code: 0
 * done, 1 the registry failed or refused, 2 bad command line or
 * configuration (with the usage text). Everything printed is redacted of
 * the configured secrets.
 *
 * @example
 * process.exitCode = await runCli(['--backend', 'etcd', '--endpoints', 'http://127.0.0.1:2379', 'ls']);
 */
export async function runCli(
  argv: readonly string[],
  streams: CliStreams = processStreams,
  env: NodeJS.ProcessEnv = process.env,
): Promise<number> {
  // Secrets given as flags are redacted even from errors raised before the configuration is read.
  const out = new CliOutput(streams, {
    json: argv.includes('--json'),
    verbose: argv.includes('--verbose') || argv.includes('-v'),
  });
  out.addSecrets(flagSecrets(argv, env));
  // A client library failing outside any await must not print an unredacted stack.
  let crashed: ((code: number) => void) | undefined;
  const crash = (error: unknown) => {
    out.error(`switchyard: unexpected error: ${error instanceof Error ? error.message : String(error)}`);
    crashed?.(EXIT_FAILURE);
  };
  process.on('uncaughtException', crash);
  process.on('unhandledRejection', crash);
  const crashedCode = new Promise<number>((resolve) => (crashed = resolve));
  try {
    return await Promise.race([run(argv, out, streams, env), crashedCode]);
  } finally {
    process.off('uncaughtException', crash);
    process.off('unhandledRejection', crash);
  }
}

async function run(
  argv: readonly string[],
  out: CliOutput,
  streams: CliStreams,
  env: NodeJS.ProcessEnv,
): Promise<number> {
  try {
    const invocation = parseCliArguments(argv);
    if (invocation.command === 'help') {
      streams.stdout(USAGE);
      return EXIT_OK;
    }
    const [{ CliSession }, handler] = await Promise.all([import('./cli-session.js'), HANDLERS[invocation.command]()]);
    const session = await CliSession.open(invocation, out, env);
    try {
      return await handler(session);
    } finally {
      await session.close();
    }
  } catch (error) {
    return report(error, out);
  }
}

function report(error: unknown, out: CliOutput): number {
  const message = error instanceof Error ? error.message : String(error);
  if (error instanceof UsageError) {
    out.error(`switchyard: ${message}\n\n${USAGE}`);
    return EXIT_USAGE;
  }
  if (
    error instanceof ConfigurationError ||
    error instanceof InvalidAddressError ||
    error instanceof InvalidInstanceError
  ) {
    out.error(`switchyard: ${message}\n(switchyard help shows the usage)`);
    return EXIT_USAGE;
  }
  if (error instanceof CommandFailure) {
    out.error(`switchyard: ${message}`);
    return error.exitCode;
  }
  out.error(`switchyard: ${message}`);
  return EXIT_FAILURE;
}

/** Values of --token / --password (both `--token x` and `--token=x`) and of the secret environment variables. */
function flagSecrets(argv: readonly string[], env: NodeJS.ProcessEnv): string[] {
  const secrets: string[] = [];
  argv.forEach((arg, i) => {
    for (const flag of ['--token', '--password']) {
      if (arg === flag && argv[i + 1] !== undefined) secrets.push(argv[i + 1]);
      else if (arg.startsWith(`${flag}=`)) secrets.push(arg.slice(flag.length + 1));
    }
  });
  for (const name of ['SWITCHYARD_TOKEN', 'CONSUL_HTTP_TOKEN', 'SWITCHYARD_PASSWORD']) {
    if (env[name]) secrets.push(env[name]);
  }
  return secrets;
}
