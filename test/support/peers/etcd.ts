import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { canConnect, findFreePort } from '../../../lib/core/tcp.js';
import { PeerProcess } from './peer-process.js';

/**
 * The etcd versions the suite runs against, chosen with
 * SWITCHYARD_ETCD_VERSION (default 3.4): 3.4.23 is Debian 12's etcd-server
 * (scripts/peers/install-etcd.sh), 3.5.16 Debian 13's, unpacked into
 * .peers/etcd-3.5 (scripts/peers/install-etcd-3.5.sh). etcdctl is the 3.4
 * one for both: the v3 API the tests use is the same.
 */
const ETCD_VERSIONS = {
  '3.4': { binary: '/usr/bin/etcd', installScript: 'install-etcd.sh' },
  '3.5': {
    binary: join(import.meta.dirname, '../../../.peers/etcd-3.5/usr/bin/etcd'),
    installScript: 'install-etcd-3.5.sh',
  },
} as const;

function selectedVersion(): keyof typeof ETCD_VERSIONS {
  const asked = process.env.SWITCHYARD_ETCD_VERSION ?? '3.4';
  if (asked === '3.4' || asked === '3.5') return asked;
  throw new Error(
    `SWITCHYARD_ETCD_VERSION='${asked}': expected '3.4' or '3.5' (the etcd versions scripts/peers installs)`,
  );
}

/** The etcd version tests start (`3.4` or `3.5`). */
export const ETCD_VERSION = selectedVersion();
export const ETCD_BINARY = ETCD_VERSIONS[ETCD_VERSION].binary;
export const ETCDCTL_BINARY = '/usr/bin/etcdctl';

let ensured = false;

/** Runs one of scripts/peers/install-*.sh. */
function runInstallScript(script: string): void {
  execFileSync('bash', [join(import.meta.dirname, '../../../scripts/peers', script)], { stdio: 'inherit' });
}

/**
 * Makes sure the selected etcd (and etcdctl) is installed. Outside CI a
 * missing binary is installed with its scripts/peers script; in CI (CI=true)
 * it must already be there (the CI entry point installs peers) and a missing
 * one fails loudly.
 */
export function ensureEtcdInstalled(): void {
  if (ensured) return;
  if (existsSync(ETCD_BINARY) && existsSync(ETCDCTL_BINARY)) {
    checkVersion();
    ensured = true;
    return;
  }
  const scripts = [...new Set(['install-etcd.sh', ETCD_VERSIONS[ETCD_VERSION].installScript])];
  if (process.env.CI === 'true') {
    throw new Error(
      `etcd ${ETCD_VERSION} is not installed (${existsSync(ETCD_BINARY) ? ETCDCTL_BINARY : ETCD_BINARY} missing) and CI=true: run ${scripts.map((s) => `scripts/peers/${s}`).join(' and ')} before the tests`,
    );
  }
  for (const script of scripts) runInstallScript(script);
  if (!existsSync(ETCD_BINARY)) throw new Error(`the install scripts ran but ${ETCD_BINARY} is still missing`);
  checkVersion();
  ensured = true;
}

/** A run that says it tests etcd 3.5 must start 3.5: the binary is asked. */
function checkVersion(): void {
  const firstLine = execFileSync(ETCD_BINARY, ['--version'], { encoding: 'utf8', timeout: 10_000 }).split('\n')[0];
  if (!firstLine.startsWith(`etcd Version: ${ETCD_VERSION}.`))
    throw new Error(`${ETCD_BINARY} is not etcd ${ETCD_VERSION}: it says '${firstLine}'`);
}

/** TLS material for a server started with client certificate authentication. */
export interface EtcdTlsFiles {
  ca: string;
  cert: string;
  key: string;
}

interface MemberPorts {
  name: string;
  clientPort: number;
  peerPort: number;
}

/**
 * One etcd member on free loopback ports with its own temporary data dir,
 * started through PeerProcess. `restart()` keeps the data dir and ports.
 */
export class EtcdMember {
  private peer: PeerProcess | undefined;

  constructor(
    readonly name: string,
    readonly clientPort: number,
    readonly peerPort: number,
    readonly dataDir: string,
    private readonly args: string[],
    private readonly tls: EtcdTlsFiles | undefined,
  ) {}

  get clientUrl(): string {
    return `${this.tls ? 'https' : 'http'}://127.0.0.1:${this.clientPort}`;
  }

  get pid(): number | undefined {
    return this.peer?.pid;
  }

  get running(): boolean {
    return this.peer !== undefined;
  }

  get log(): string {
    return this.peer?.log ?? '';
  }

  /** Starts the member; resolves once it serves requests (has a leader), or once it listens when `listenOnly`. */
  async start(options: { listenOnly?: boolean } = {}): Promise<void> {
    const peer = new PeerProcess({
      name: `etcd ${ETCD_VERSION} ${this.name} (client port ${this.clientPort})`,
      command: ETCD_BINARY,
      args: this.args,
      readyTimeoutMs: 30_000,
      ready: async () => {
        if (!(await canConnect('127.0.0.1', this.clientPort, 500))) return false;
        if (options.listenOnly || this.tls) return true;
        // /health answers true only once the member has a leader.
        const response = await fetch(`${this.clientUrl}/health`, { signal: AbortSignal.timeout(1_000) });
        const body = (await response.json()) as { health?: string };
        return body.health === 'true';
      },
    });
    this.peer = peer;
    await peer.start();
  }

  /** Stops by pid (SIGTERM, then SIGKILL). The data dir is kept for a restart. */
  async stop(): Promise<void> {
    const peer = this.peer;
    this.peer = undefined;
    await peer?.stop();
  }

  /** SIGKILL, as a crash: waits until the process is gone. */
  async kill(): Promise<void> {
    const peer = this.peer;
    this.peer = undefined;
    await peer?.kill();
  }

  /** SIGSTOP/SIGCONT: freeze and resume without closing any connection. */
  signal(signal: NodeJS.Signals): void {
    this.peer?.signal(signal);
  }

  /** Starts again on the same data dir and ports. */
  async restart(): Promise<void> {
    await this.kill();
    await this.start();
  }
}

/**
 * A single etcd or a cluster of members on loopback. Always `stop()` it in
 * afterAll: it kills every member by pid and removes the data dirs.
 *
 * @example
 * const etcd = await EtcdPeer.start(); // etcd.endpoints -> ['http://127.0.0.1:PORT']
 */
export class EtcdPeer {
  private constructor(
    readonly members: EtcdMember[],
    private readonly baseDir: string,
  ) {}

  /** The client URLs of every member. */
  get endpoints(): string[] {
    return this.members.map((m) => m.clientUrl);
  }

  get endpoint(): string {
    return this.members[0].clientUrl;
  }

  /** Starts one member (`size` 1) or a cluster (`size` 3 for leader-loss tests). */
  static async start(options: { size?: number; tls?: EtcdTlsFiles; extraArgs?: string[] } = {}): Promise<EtcdPeer> {
    ensureEtcdInstalled();
    const size = options.size ?? 1;
    const baseDir = await mkdtemp(join(tmpdir(), 'switchyard-etcd-'));
    const ports: MemberPorts[] = [];
    const taken = new Set<number>();
    const freshPort = async () => {
      for (;;) {
        const port = await findFreePort();
        if (!taken.has(port)) {
          taken.add(port);
          return port;
        }
      }
    };
    for (let i = 0; i < size; i++)
      ports.push({ name: `m${i}`, clientPort: await freshPort(), peerPort: await freshPort() });
    const initialCluster = ports.map((p) => `${p.name}=http://127.0.0.1:${p.peerPort}`).join(',');
    const tls = options.tls;
    const scheme = tls ? 'https' : 'http';
    const members = ports.map((p) => {
      const args = [
        '--name',
        p.name,
        '--data-dir',
        join(baseDir, p.name),
        '--listen-client-urls',
        `${scheme}://127.0.0.1:${p.clientPort}`,
        '--advertise-client-urls',
        `${scheme}://127.0.0.1:${p.clientPort}`,
        '--listen-peer-urls',
        `http://127.0.0.1:${p.peerPort}`,
        '--initial-advertise-peer-urls',
        `http://127.0.0.1:${p.peerPort}`,
        '--initial-cluster',
        initialCluster,
        '--initial-cluster-token',
        `switchyard-${process.pid}-${ports[0].clientPort}`,
        '--initial-cluster-state',
        'new',
        '--logger',
        'zap',
        '--log-outputs',
        'stderr',
        '--log-level',
        'warn',
        ...(tls
          ? ['--cert-file', tls.cert, '--key-file', tls.key, '--trusted-ca-file', tls.ca, '--client-cert-auth']
          : []),
        ...(options.extraArgs ?? []),
      ];
      return new EtcdMember(p.name, p.clientPort, p.peerPort, join(baseDir, p.name), args, tls);
    });
    const peer = new EtcdPeer(members, baseDir);
    try {
      // Members of a new cluster wait for each other: start them together.
      await Promise.all(members.map((m) => m.start()));
    } catch (error) {
      await peer.stop();
      throw error;
    }
    return peer;
  }

  /** Runs etcdctl against this peer (v3 API), returning stdout. */
  etcdctl(args: string[], extraFlags: string[] = []): string {
    return execFileSync(ETCDCTL_BINARY, [`--endpoints=${this.endpoints.join(',')}`, ...extraFlags, ...args], {
      env: { ...process.env, ETCDCTL_API: '3' },
      encoding: 'utf8',
      timeout: 10_000,
    });
  }

  /** The index of the current leader, asked of each running member with etcdctl. */
  leaderIndex(): number {
    for (const member of this.members) {
      if (!member.running) continue;
      try {
        const out = execFileSync(
          ETCDCTL_BINARY,
          [`--endpoints=${member.clientUrl}`, 'endpoint', 'status', '-w', 'json'],
          {
            env: { ...process.env, ETCDCTL_API: '3' },
            encoding: 'utf8',
            timeout: 5_000,
          },
        );
        // Member ids are uint64: compare the digits, JSON numbers would round them.
        const memberId = /"member_id":(\d+)/.exec(out)?.[1];
        const leader = /"leader":(\d+)/.exec(out)?.[1];
        if (memberId && memberId === leader) return this.members.indexOf(member);
      } catch {
        // a member without a leader or being restarted: ask the next
      }
    }
    return -1;
  }

  /** Kills every member by pid (SIGKILL: the data is thrown away) and removes the data dirs. Safe to call twice. */
  async stop(): Promise<void> {
    await Promise.all(this.members.map((m) => m.kill()));
    await rm(this.baseDir, { recursive: true, force: true });
  }
}
