import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync, readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';

/**
 * The one launcher every integration test uses for real servers (etcd,
 * Consul, dnsmasq, test gRPC servers in child processes): it spawns, waits
 * for readiness with a deadline, records the pid so a crashed run's leftovers
 * are killed by the global teardown, and stops by pid.
 */
export const PID_DIR = join(import.meta.dirname, '../../../.peers/pids');

export interface PeerSpec {
  /** Shown in errors and logs. */
  name: string;
  command: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Resolves true once the peer serves; polled until `readyTimeoutMs`. */
  ready: () => Promise<boolean>;
  readyTimeoutMs?: number;
}

export class PeerProcess {
  private child: ChildProcess | undefined;
  private output = '';
  private exited: Promise<void> = Promise.resolve();

  constructor(readonly spec: PeerSpec) {}

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Last lines printed by the peer, for error messages. */
  get log(): string {
    return this.output.slice(-4_000);
  }

  async start(): Promise<this> {
    if (this.child && this.child.exitCode === null) throw new Error(`${this.spec.name} already running`);
    const child = spawn(this.spec.command, this.spec.args, {
      cwd: this.spec.cwd,
      env: { ...process.env, ...this.spec.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    const append = (chunk: Buffer) => {
      this.output = (this.output + chunk.toString()).slice(-64_000);
    };
    child.stdout?.on('data', append);
    child.stderr?.on('data', append);
    let exitedEarly = false;
    this.exited = new Promise((resolve) =>
      child.once('exit', () => {
        exitedEarly = true;
        if (child.pid) rmSync(join(PID_DIR, String(child.pid)), { force: true });
        resolve();
      }),
    );
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', (e) =>
        reject(new Error(`${this.spec.name}: cannot start ${this.spec.command}: ${e.message}`)),
      );
    });
    mkdirSync(PID_DIR, { recursive: true });
    // The owner is the vitest run (set by the global setup): concurrent runs never kill each other's peers.
    writeFileSync(
      join(PID_DIR, String(child.pid)),
      `${this.spec.name}\n${process.env.SWITCHYARD_TEST_RUN_PID ?? process.pid}\n${basename(this.spec.command)}`,
    );
    const deadline = Date.now() + (this.spec.readyTimeoutMs ?? 20_000);
    while (Date.now() < deadline) {
      if (exitedEarly) throw new Error(`${this.spec.name} exited during start-up:\n${this.log}`);
      if (await this.spec.ready().catch(() => false)) return this;
      await new Promise((r) => setTimeout(r, 50));
    }
    await this.stop();
    throw new Error(`${this.spec.name} did not become ready in ${this.spec.readyTimeoutMs ?? 20_000} ms:\n${this.log}`);
  }

  /** Sends a signal (SIGSTOP/SIGCONT for stalls, SIGKILL for crashes). */
  signal(signal: NodeJS.Signals): void {
    if (this.child && this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
  }

  /** Stops the peer by pid: SIGTERM, then SIGKILL after `graceMs`. Resolves when it exited. */
  async stop(graceMs = 5_000): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return this.exited;
    child.kill('SIGCONT');
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }

  /** SIGKILL, as a crash (nothing is cleaned up by the peer); resolves once it exited. */
  async kill(): Promise<void> {
    this.signal('SIGKILL');
    await this.exited;
  }

  /** Waits until the process exited (after a SIGKILL sent by a test). */
  waitForExit(): Promise<void> {
    return this.exited;
  }
}

function commandOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return '';
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Kills recorded peers owned by `owner` (this run's teardown) or by a run
 * that no longer exists (leftovers of a crashed run). Peers of other live
 * runs are left alone.
 */
export function killRecordedPeers(owner?: number): string[] {
  const killed: string[] = [];
  let entries: string[];
  try {
    entries = readdirSync(PID_DIR);
  } catch {
    return killed;
  }
  for (const entry of entries) {
    const pid = Number(entry);
    if (!Number.isInteger(pid)) continue;
    try {
      const [name = '?', ownerText, command] = readFileSync(join(PID_DIR, entry), 'utf8').split('\n');
      const ownerPid = Number(ownerText);
      if (ownerPid !== owner && Number.isInteger(ownerPid) && ownerPid > 0 && isAlive(ownerPid)) continue;
      // Pids are reused: only kill a process still running the recorded command.
      if (command && !commandOf(pid).includes(command)) throw new Error('pid reused');
      process.kill(pid, 'SIGCONT');
      process.kill(pid, 'SIGKILL');
      killed.push(`${name} (${pid})`);
    } catch {
      // already gone
    }
    rmSync(join(PID_DIR, entry), { force: true });
  }
  return killed;
}
