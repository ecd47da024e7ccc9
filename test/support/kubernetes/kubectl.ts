import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { join } from 'node:path';

const ROOT = join(import.meta.dirname, '../../..');
const CACHED_BINARY = join(ROOT, '.peers/kubernetes-client/usr/bin/kubectl');
const INSTALL_SCRIPT = join(ROOT, 'scripts/peers/install-kubectl.sh');

let lookup: { path?: string; problem?: string } | undefined;

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * Debian's kubectl (package kubernetes-client, unpacked by
 * scripts/peers/install-kubectl.sh into the git-ignored .peers folder),
 * installed when missing. Undefined (with the reason printed) when it cannot
 * be had; with `CI=true` it throws, so CI never skips the proof.
 *
 * @example
 * describe.skipIf(!kubectlBinary())('the test API server, checked with kubectl', ...)
 */
export function kubectlBinary(): string | undefined {
  if (!lookup) {
    if (!isExecutable(CACHED_BINARY)) {
      try {
        execFileSync('bash', [INSTALL_SCRIPT], { stdio: ['ignore', 'pipe', 'pipe'], timeout: 300_000 });
      } catch (error) {
        const output = (error as { stderr?: Buffer }).stderr?.toString().slice(-2_000) ?? '';
        lookup = { problem: `scripts/peers/install-kubectl.sh failed: ${(error as Error).message}\n${output}` };
      }
    }
    lookup ??= isExecutable(CACHED_BINARY)
      ? { path: CACHED_BINARY }
      : { problem: `no executable at ${CACHED_BINARY} after running the install script` };
  }
  if (lookup.path) return lookup.path;
  if (process.env.CI === 'true') throw new Error(`CI=true and kubectl cannot run: ${lookup.problem}`);
  console.warn(`[switchyard tests] SKIPPING the kubectl proof: ${lookup.problem}`);
  return undefined;
}

/** Runs kubectl once with `kubeconfig`; resolves with its exit code and output (never rejects on a non-zero exit). */
export function kubectl(kubeconfig: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      kubectlBinary()!,
      ['--kubeconfig', kubeconfig, '--request-timeout=10s', ...args],
      { timeout: 30_000, env: { ...process.env, HOME: join(kubeconfig, '..') } },
      (error, stdout, stderr) =>
        resolve({ code: error ? Number((error as { code?: unknown }).code ?? 1) || 1 : 0, stdout, stderr }),
    );
  });
}

/**
 * `kubectl get ... -w --output-watch-events -o json` as a child process:
 * every event it prints, parsed. Stop it with `stop()`.
 */
export class KubectlWatch {
  readonly events: Array<{ type: string; object: { metadata: { name: string } } & Record<string, unknown> }> = [];
  stderr = '';
  private readonly child: ChildProcess;
  private pending = '';
  private readonly exited: Promise<void>;

  constructor(kubeconfig: string, args: string[]) {
    this.child = spawn(
      kubectlBinary()!,
      ['--kubeconfig', kubeconfig, 'get', ...args, '-w', '--output-watch-events', '-o', 'json'],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, HOME: join(kubeconfig, '..') } },
    );
    this.exited = new Promise((resolve) => this.child.once('exit', () => resolve()));
    this.child.stdout!.on('data', (chunk: Buffer) => {
      this.pending += chunk.toString('utf8');
      this.drain();
    });
    this.child.stderr!.on('data', (chunk: Buffer) => (this.stderr += chunk.toString('utf8')));
  }

  /** kubectl prints pretty JSON documents back to back: cut them at each balanced closing brace. */
  private drain(): void {
    let depth = 0;
    let inString = false;
    let start = -1;
    let consumed = 0;
    for (let i = 0; i < this.pending.length; i++) {
      const c = this.pending[i];
      if (inString) {
        if (c === '\\') i++;
        else if (c === '"') inString = false;
        continue;
      }
      if (c === '"') inString = true;
      else if (c === '{') {
        if (depth === 0) start = i;
        depth++;
      } else if (c === '}') {
        depth--;
        if (depth === 0 && start >= 0) {
          this.events.push(JSON.parse(this.pending.slice(start, i + 1)) as (typeof this.events)[number]);
          consumed = i + 1;
        }
      }
    }
    this.pending = this.pending.slice(consumed);
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGTERM');
    await this.exited;
  }
}
