// Child processes of a benchmark run: short-lived workers that print one
// JSON line, and long-lived servers (greeters, etcd, Consul, dnsmasq),
// stopped by pid when the run ends, also when it is interrupted. Their pids
// are deliberately not written to .peers/pids: the test suite's teardown
// kills everything recorded there, and a test run finishing on the same
// machine would kill the benchmark's servers mid-measurement.
import { spawn } from 'node:child_process';
import { join } from 'node:path';

export const ROOT = join(import.meta.dirname, '../..');

/** Every server started by this run and not yet stopped. */
const running = new Set();

/**
 * Runs `node <script> <json>` and resolves with the JSON object its last
 * stdout line holds. Rejects with the worker's stderr when it fails or
 * outlives `timeoutMs`.
 */
export function runWorker(script, input, { execArgv = [], timeoutMs = 300_000, env = {} } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...execArgv, join(ROOT, 'bench', script), JSON.stringify(input)], {
      cwd: ROOT,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const handle = { name: `${script} worker`, child };
    running.add(handle);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr = (stderr + chunk).slice(-8_000)));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      running.delete(handle);
      reject(error);
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      running.delete(handle);
      const last = stdout.trim().split('\n').pop() ?? '';
      if (code === 0) {
        try {
          resolve(JSON.parse(last));
          return;
        } catch {
          // fall through to the error below
        }
      }
      reject(
        new Error(
          `${script} ${JSON.stringify(input)} failed (${signal ?? `exit ${code}`}):\n${stderr || stdout}`.slice(
            0,
            6_000,
          ),
        ),
      );
    });
  });
}

/**
 * Starts a long-lived server and resolves once `ready()` resolves true
 * (polled every 50 ms until `readyTimeoutMs`). `stop()` ends it by pid.
 */
export async function startServer({ name, command, args, env = {}, ready, readyTimeoutMs = 20_000 }) {
  const child = spawn(command, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const append = (chunk) => (output = (output + chunk).slice(-16_000));
  child.stdout.on('data', append);
  child.stderr.on('data', append);
  let exited = false;
  const exit = new Promise((resolve) =>
    child.once('exit', () => {
      exited = true;
      resolve();
    }),
  );
  await new Promise((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', (error) => reject(new Error(`${name}: cannot start ${command}: ${error.message}`)));
  });
  const server = {
    name,
    child,
    get pid() {
      return child.pid;
    },
    get log() {
      return output;
    },
    async stop(graceMs = 3_000) {
      running.delete(server);
      if (exited) return;
      child.kill('SIGCONT');
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exit;
      clearTimeout(timer);
    },
  };
  running.add(server);
  const deadline = Date.now() + readyTimeoutMs;
  while (Date.now() < deadline) {
    if (exited) throw new Error(`${name} exited during start-up:\n${output.slice(-3_000)}`);
    if (await ready().catch(() => false)) return server;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  await server.stop();
  throw new Error(`${name} was not ready within ${readyTimeoutMs} ms:\n${output.slice(-3_000)}`);
}

/** Stops every server and worker this run started (by pid). */
export async function stopAll() {
  await Promise.all(
    [...running].map((entry) => {
      if (typeof entry.stop === 'function') return entry.stop();
      entry.child.kill('SIGKILL');
      running.delete(entry);
      return undefined;
    }),
  );
}

/**
 * Stops everything on Ctrl-C or SIGTERM before exiting, and kills whatever
 * is still running if the runner exits any other way (an uncaught error).
 */
export function stopAllOnSignals() {
  process.once('exit', () => {
    for (const entry of running) entry.child.kill('SIGKILL');
  });
  for (const signal of ['SIGINT', 'SIGTERM']) {
    process.once(signal, () => {
      process.stderr.write(`\n${signal}: stopping the servers this run started...\n`);
      stopAll().finally(() => process.exit(130));
    });
  }
}
