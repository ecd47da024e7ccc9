import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { PeerProcess } from '../../support/peers/peer-process.js';
import { waitFor } from '../../support/wait-for.js';

const ROOT = join(import.meta.dirname, '../../..');
/** The compiled command, as `npm test` builds it (`npx tsc -p tsconfig.build.json`). */
export const CLI_ENTRY = join(ROOT, 'dist/cli/main.js');

/** Fails with a clear message when the CLI was not built. */
export function assertCliBuilt(): void {
  if (!existsSync(CLI_ENTRY)) {
    throw new Error(`${CLI_ENTRY} is missing: run \`npx tsc -p tsconfig.build.json\` (npm test builds before running)`);
  }
}

/** How a `switchyard` process ended, with its two streams kept apart. */
export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

const running = new Set<CliRun>();

/**
 * One `switchyard` process spawned with child_process (the tests assert its
 * exit code and parse its stdout apart from its stderr). It is SIGKILLed
 * when it outlives `maxLifetimeMs`, and {@link killAllCli} (afterEach)
 * kills whatever a failed test left running.
 *
 * @example
 * const watch = CliRun.start(['--dir', dir, 'watch', 'orders']); await watch.waitForStdout(/added/); watch.signal('SIGINT'); expect((await watch.result).code).toBe(0);
 */
export class CliRun {
  stdout = '';
  stderr = '';
  readonly result: Promise<CliResult>;
  private exited = false;

  private constructor(
    readonly args: readonly string[],
    options: { env?: NodeJS.ProcessEnv; maxLifetimeMs?: number },
  ) {
    assertCliBuilt();
    const child = spawn(process.execPath, [CLI_ENTRY, ...args], {
      cwd: ROOT,
      env: { ...process.env, ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (this.stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (this.stderr += chunk));
    const killer = setTimeout(() => child.kill('SIGKILL'), options.maxLifetimeMs ?? 20_000);
    this.result = new Promise<CliResult>((resolve, reject) => {
      child.once('error', reject);
      child.once('close', (code, signal) => {
        clearTimeout(killer);
        this.exited = true;
        running.delete(this);
        resolve({ code, signal, stdout: this.stdout, stderr: this.stderr });
      });
    });
    this.kill = async () => {
      if (!this.exited) child.kill('SIGKILL');
      await this.result.catch(() => undefined);
    };
    this.signal = (signal) => {
      if (!this.exited) child.kill(signal);
    };
    running.add(this);
  }

  /** Starts `switchyard <args>`. */
  static start(args: readonly string[], options: { env?: NodeJS.ProcessEnv; maxLifetimeMs?: number } = {}): CliRun {
    return new CliRun(args, options);
  }

  readonly kill: () => Promise<void>;
  readonly signal: (signal: NodeJS.Signals) => void;

  /** Waits until stdout matches (a failed wait shows both streams). */
  async waitForStdout(pattern: RegExp, timeoutMs = 15_000): Promise<void> {
    const printed = () => pattern.test(this.stdout) || this.exited;
    await waitFor(printed, { timeoutMs, what: `switchyard ${this.args.join(' ')} to print ${pattern}` }).catch(
      (error: Error) => {
        throw new Error(`${error.message}\nstdout: ${this.stdout}\nstderr: ${this.stderr}`);
      },
    );
    if (!pattern.test(this.stdout)) {
      throw new Error(
        `switchyard ${this.args.join(' ')} exited before printing ${pattern}:\nstdout: ${this.stdout}\nstderr: ${this.stderr}`,
      );
    }
  }

  /** The JSON objects printed one per line so far (`--json` of watch / register). */
  jsonLines(): Array<Record<string, unknown>> {
    return this.stdout
      .split('\n')
      .filter((line) => line.trim() !== '')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
  }
}

/** Runs a short command to its end (SIGKILLed after `timeoutMs`). */
export function runCli(
  args: readonly string[],
  options: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<CliResult> {
  return CliRun.start(args, { env: options.env, maxLifetimeMs: options.timeoutMs ?? 20_000 }).result;
}

/** Kills every CLI process still running (afterEach / afterAll). */
export async function killAllCli(): Promise<void> {
  await Promise.all([...running].map((run) => run.kill()));
}

/**
 * A `switchyard register` held in the background through the peer launcher
 * (pid recorded, stopped by pid); ready once it printed `registered`.
 * `stop()` sends SIGTERM: the command deregisters, then exits.
 */
export async function startHeldRegistration(
  args: readonly string[],
  env: NodeJS.ProcessEnv = {},
): Promise<PeerProcess> {
  assertCliBuilt();
  const peer: PeerProcess = new PeerProcess({
    name: `switchyard ${args.join(' ')}`,
    command: process.execPath,
    args: [CLI_ENTRY, ...args],
    cwd: ROOT,
    env,
    ready: async () => /^registered /m.test(peer.log) || /"event":"registered"/.test(peer.log),
    readyTimeoutMs: 15_000,
  });
  return peer.start();
}

/** Asserts that no secret appears anywhere in a command's output. */
export function expectNoSecret(output: CliResult | CliRun | string, ...secrets: string[]): void {
  const text = typeof output === 'string' ? output : `${output.stdout}\n${output.stderr}`;
  for (const secret of secrets) expect(text).not.toContain(secret);
}

/** Asserts an exit code, showing both streams when it differs. */
export function expectExit(result: CliResult, code: number): void {
  expect({ code: result.code, stdout: result.stdout, stderr: result.stderr }).toMatchObject({ code });
}
