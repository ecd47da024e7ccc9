import { execFile } from 'node:child_process';
import { cpSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import { canConnect } from '../../../lib/core/tcp.js';
import { PeerProcess } from '../../support/peers/peer-process.js';
import type { QuickStart } from './readme-quick-start.js';

const ROOT = join(import.meta.dirname, '../../..');
const TEMPLATES = join(ROOT, 'test/consumer/apps');
const HARNESS = join(ROOT, 'test/consumer/harness');
/** npm's cache for the consumer installs (git-ignored): a second run downloads nothing. */
export const NPM_CACHE = join(ROOT, '.peers/npm-cache');

/** One of the apps in test/consumer/apps. */
export interface ConsumerAppSpec {
  /** Its folder under test/consumer/apps. */
  template: string;
  nestMajor: 11 | 12;
  /** What its package.json makes of .js files. */
  moduleSystem: 'CommonJS' | 'ESM';
}

export interface CommandResult {
  stdout: string;
  stderr: string;
}

/**
 * The environment of everything the test starts: the Node.js under test
 * first on PATH (npm and npx then run on it, as a user's would), and none
 * of the npm_* variables of an enclosing `npm test`, which npm would read
 * as its own configuration.
 */
function childEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) if (!/^npm_/i.test(key)) env[key] = value;
  env.PATH = [dirname(process.execPath), process.env.PATH ?? ''].join(delimiter);
  env.NO_UPDATE_NOTIFIER = '1';
  return { ...env, ...extra };
}

/** Runs a command; rejects with its output when it fails or outlives `timeoutMs`. */
export function run(
  command: string,
  args: string[],
  options: { cwd: string; env?: NodeJS.ProcessEnv; timeoutMs: number },
): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    execFile(
      command,
      args,
      { cwd: options.cwd, env: childEnv(options.env), timeout: options.timeoutMs, maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) => {
        if (!error) return resolve({ stdout, stderr });
        const output = `${stdout}\n${stderr}`.trim().slice(-6_000);
        reject(new Error(`${command} ${args.join(' ')} failed in ${options.cwd}: ${error.message}\n${output}`));
      },
    );
  });
}

/**
 * A fresh app made from a template and the README's quick start, in its own
 * folder outside the repository (so nothing resolves from the repository's
 * node_modules), with its own folder for the embedded registry.
 */
export class ConsumerApp {
  private readonly processes: PeerProcess[] = [];

  private constructor(
    readonly spec: ConsumerAppSpec,
    readonly dir: string,
    /** TMPDIR of the app's processes: the `local` backend keeps its files in <registryTmp>/switchyard. */
    readonly registryTmp: string,
  ) {}

  /** Copies the template, writes the quick start's files into it and the test's harness into src/consumer-test/. */
  static create(spec: ConsumerAppSpec, workDir: string, quickStart: QuickStart): ConsumerApp {
    const dir = join(workDir, spec.template);
    cpSync(join(TEMPLATES, spec.template), dir, { recursive: true });
    for (const [path, text] of quickStart.files) {
      mkdirSync(dirname(join(dir, path)), { recursive: true });
      writeFileSync(join(dir, path), text);
    }
    mkdirSync(join(dir, 'src/consumer-test'), { recursive: true });
    for (const file of readdirSync(HARNESS)) cpSync(join(HARNESS, file), join(dir, 'src/consumer-test', file));
    const registryTmp = join(workDir, `${spec.template}-tmp`);
    mkdirSync(registryTmp, { recursive: true });
    return new ConsumerApp(spec, dir, registryTmp);
  }

  /** The README's install line, the tarball for 'switchyard' and, in a Nest 11 app, the versions the README names. */
  installArguments(quickStart: QuickStart, tarball: string): string[] {
    const nameOf = (spec: string) => spec.replace(/(?<=.)@.*$/, '');
    const pinned = new Map(this.spec.nestMajor === 11 ? quickStart.nest11Versions.map((v) => [nameOf(v), v]) : []);
    return quickStart.packages.map((spec) => (spec === 'switchyard' ? tarball : (pinned.get(nameOf(spec)) ?? spec)));
  }

  /** `npm install` from the registry through the cache; the template's package.json brings Nest and TypeScript. */
  install(packages: string[]): Promise<CommandResult> {
    return run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--cache', NPM_CACHE, ...packages], {
      cwd: this.dir,
      timeoutMs: 600_000,
    });
  }

  /** A command line from the README, run in the app's folder. */
  shell(commandLine: string, timeoutMs = 300_000): Promise<CommandResult> {
    return run('bash', ['-c', commandLine], { cwd: this.dir, timeoutMs });
  }

  /** Runs one of the harness scripts (dist/consumer-test/<name>.js) to completion. */
  harness(name: string): Promise<CommandResult> {
    return run(process.execPath, [join('dist/consumer-test', `${name}.js`)], {
      cwd: this.dir,
      env: { TMPDIR: this.registryTmp },
      timeoutMs: 60_000,
    });
  }

  /** Starts dist/<app>/main.js on `port`; resolves once the port accepts connections. */
  async start(app: 'orders' | 'checkout', port: number): Promise<PeerProcess> {
    const peer = new PeerProcess({
      name: `${this.spec.template} ${app} (port ${port})`,
      command: process.execPath,
      args: [join('dist', app, 'main.js')],
      cwd: this.dir,
      env: childEnv({ PORT: String(port), TMPDIR: this.registryTmp }),
      ready: () => canConnect('127.0.0.1', port, 500),
      readyTimeoutMs: 60_000,
    });
    this.processes.push(peer);
    await peer.start();
    return peer;
  }

  /** Stops what is still running (by pid). */
  async stop(): Promise<void> {
    await Promise.all(this.processes.map((p) => p.stop()));
  }
}
