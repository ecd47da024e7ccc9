import { parseArgs } from 'node:util';
import { UsageError } from './cli-errors.js';

/** The commands `switchyard` knows. */
export const COMMANDS = ['ls', 'watch', 'register', 'deregister', 'check', 'help'] as const;
export type CommandName = (typeof COMMANDS)[number];

/** Every option, as typed on the command line (values are raw strings). */
export interface CliOptions {
  config?: string;
  backend?: string;
  endpoints?: string[];
  url?: string;
  dir?: string;
  addresses?: string[];
  namespace?: string;
  token?: string;
  user?: string;
  password?: string;
  json: boolean;
  timeout?: string;
  verbose: boolean;
  help: boolean;
  name?: string;
  address?: string;
  ttl?: string;
  id?: string;
  tag: string[];
  version?: string;
  zone?: string;
  region?: string;
  weight?: string;
}

/** A parsed command line. */
export interface CliInvocation {
  command: CommandName;
  /** Positional arguments after the command. */
  args: string[];
  options: CliOptions;
}

const OPTION_SPEC = {
  config: { type: 'string', short: 'c' },
  backend: { type: 'string', short: 'b' },
  endpoints: { type: 'string', multiple: true },
  url: { type: 'string' },
  dir: { type: 'string' },
  addresses: { type: 'string', multiple: true },
  namespace: { type: 'string', short: 'n' },
  token: { type: 'string' },
  user: { type: 'string' },
  password: { type: 'string' },
  json: { type: 'boolean', default: false },
  timeout: { type: 'string', short: 't' },
  verbose: { type: 'boolean', short: 'v', default: false },
  help: { type: 'boolean', short: 'h', default: false },
  name: { type: 'string' },
  address: { type: 'string' },
  ttl: { type: 'string' },
  id: { type: 'string' },
  tag: { type: 'string', multiple: true },
  version: { type: 'string' },
  zone: { type: 'string' },
  region: { type: 'string' },
  weight: { type: 'string' },
} as const;

/** Options that only make sense for some commands (the rest apply to all). */
const COMMAND_OPTIONS: Partial<Record<keyof CliOptions, readonly CommandName[]>> = {
  name: ['register', 'deregister'],
  address: ['register'],
  ttl: ['register'],
  id: ['register'],
  zone: ['register'],
  region: ['register'],
  weight: ['register'],
  tag: ['register', 'ls', 'watch'],
  version: ['register', 'ls', 'watch'],
};

/** How many positional arguments each command takes: [min, max, what they are]. */
const ARITY: Record<CommandName, [number, number, string]> = {
  ls: [0, 1, '[service]'],
  watch: [1, 1, '<service>'],
  register: [0, 0, ''],
  deregister: [1, 1, '<instance-id>'],
  check: [0, 1, '[service]'],
  help: [0, 1, '[command]'],
};

/**
 * Parses `switchyard` arguments (options may come before or after the
 * command). Throws {@link UsageError} for an unknown command or option, a
 * missing value, or arguments the command does not take.
 *
 * @example
 * parseCliArguments(['-c', 'discovery.toml', 'ls', 'orders', '--json']);
 */
export function parseCliArguments(argv: readonly string[]): CliInvocation {
  let parsed: { values: Record<string, unknown>; positionals: string[] };
  try {
    parsed = parseArgs({ args: [...argv], options: OPTION_SPEC, allowPositionals: true, strict: true });
  } catch (error) {
    // Node's parser messages name the option, never its value.
    throw new UsageError((error as Error).message.split('. To specify a positional')[0]);
  }
  const options = { ...parsed.values, tag: parsed.values.tag ?? [] } as unknown as CliOptions;
  const [first, ...args] = parsed.positionals;
  if (first === undefined) {
    if (options.help) return { command: 'help', args: [], options };
    throw new UsageError('no command given');
  }
  if (!(COMMANDS as readonly string[]).includes(first)) throw new UsageError(`unknown command '${first}'`);
  const command = first as CommandName;
  if (options.help) return { command: 'help', args: [command], options };
  const [min, max, shape] = ARITY[command];
  if (args.length < min) throw new UsageError(`'${command}' needs ${shape}`);
  if (args.length > max) {
    throw new UsageError(`'${command}' takes ${max === 0 ? 'no arguments' : shape} (got unexpected '${args[max]}')`);
  }
  for (const [option, commands] of Object.entries(COMMAND_OPTIONS) as Array<
    [keyof CliOptions, readonly CommandName[]]
  >) {
    const value = options[option];
    const given = Array.isArray(value) ? value.length > 0 : value !== undefined;
    if (given && !commands.includes(command)) {
      throw new UsageError(`--${option} applies to ${commands.map((c) => `'${c}'`).join(', ')}, not '${command}'`);
    }
  }
  return { command, args, options };
}

/** Parses a number option (`--ttl 6`), or throws UsageError naming it. */
export function numberOption(
  value: string | undefined,
  option: string,
  check: { min?: number; integer?: boolean } = {},
): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  const min = check.min ?? 0;
  if (value.trim() === '' || !Number.isFinite(n) || n <= min || (check.integer && !Number.isInteger(n))) {
    throw new UsageError(
      `--${option} ${JSON.stringify(value)}: expected ${check.integer ? 'an integer' : 'a number'} greater than ${min}`,
    );
  }
  return n;
}

/** Parses repeated `--tag key=value` options into a record. */
export function tagOptions(values: readonly string[]): Record<string, string> {
  const tags: Record<string, string> = {};
  for (const entry of values) {
    const eq = entry.indexOf('=');
    if (eq <= 0) throw new UsageError(`--tag ${JSON.stringify(entry)}: expected key=value`);
    tags[entry.slice(0, eq)] = entry.slice(eq + 1);
  }
  return tags;
}
