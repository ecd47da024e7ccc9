import { spawnSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { promises as dns } from 'node:dns';
import { existsSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findFreePort } from '../../../lib/core/tcp.js';
import { PeerProcess } from './peer-process.js';

const INSTALL_SCRIPT = join(import.meta.dirname, '../../../scripts/peers/install-dnsmasq.sh');
const CANDIDATES = ['/usr/sbin/dnsmasq', '/usr/local/sbin/dnsmasq', '/usr/bin/dnsmasq'];

let binaryCheck: { binary?: string; reason?: string } | undefined;

/**
 * Finds dnsmasq, installing it with scripts/peers/install-dnsmasq.sh when
 * missing. With CI=true a dnsmasq that cannot be found or installed throws;
 * elsewhere it returns a reason so the suite can skip loudly.
 *
 * @example
 * const { binary, reason } = ensureDnsmasq(); // describe.skipIf(!binary)
 */
export function ensureDnsmasq(): { binary?: string; reason?: string } {
  if (binaryCheck) return binaryCheck;
  const found = () => CANDIDATES.find((path) => existsSync(path));
  let binary = found();
  let reason: string | undefined;
  if (!binary) {
    const run = spawnSync('bash', [INSTALL_SCRIPT], { encoding: 'utf8', timeout: 300_000 });
    binary = found();
    if (!binary)
      reason = `dnsmasq is not installed and ${INSTALL_SCRIPT} failed (exit ${run.status}):\n${(run.stderr || run.stdout || '').slice(-2_000)}`;
  }
  if (!binary && process.env.CI === 'true') throw new Error(`CI=true and the DNS peer cannot run: ${reason}`);
  if (!binary) console.warn(`[switchyard tests] SKIPPING DNS integration tests: ${reason}`);
  binaryCheck = { binary, reason };
  return binaryCheck;
}

/** Records dnsmasq serves, as its own command-line values. */
export interface DnsmasqRecords {
  /** `--srv-host` values: `_grpc._tcp.api.svc.test,node1.svc.test,50051,PRIORITY,WEIGHT`. */
  srvHosts?: string[];
  /** `--host-record` values: `node1.svc.test,127.0.0.1[,::1]`. */
  hostRecords?: string[];
}

export interface DnsmasqOptions extends DnsmasqRecords {
  /** Zones answered locally (NXDOMAIN for unknown names, never forwarded). Default `['svc.test']`. */
  localDomains?: string[];
  /** TTL of every local record, seconds. Default 1. */
  localTtl?: number;
  /** Log each query to the peer's output (see {@link DnsmasqPeer.queryCount}). */
  logQueries?: boolean;
}

/**
 * A real dnsmasq on a free 127.0.0.1 port (UDP and TCP), with a temporary
 * `--hostsdir` (reloaded by inotify) for records tests add and remove, and
 * `--srv-host` / `--host-record` records from the command line (changed by
 * {@link restart}). Stopped by pid.
 *
 * @example
 * const dnsmasq = await DnsmasqPeer.start({ srvHosts: ['_grpc._tcp.api.svc.test,node1.svc.test,50051,0,10'] });
 */
export class DnsmasqPeer {
  private peer: PeerProcess | undefined;
  private options: DnsmasqOptions;

  private constructor(
    private readonly binary: string,
    readonly port: number,
    readonly hostsDir: string,
    options: DnsmasqOptions,
  ) {
    this.options = options;
  }

  /** Starts dnsmasq; retries on another port when the chosen one was taken meanwhile. */
  static async start(options: DnsmasqOptions = {}): Promise<DnsmasqPeer> {
    const { binary, reason } = ensureDnsmasq();
    if (!binary) throw new Error(`dnsmasq unavailable: ${reason}`);
    const hostsDir = mkdtempSync(join(tmpdir(), 'switchyard-dnsmasq-'));
    let lastError: unknown;
    for (let attempt = 0; attempt < 5; attempt++) {
      const port = await findFreeUdpAndTcpPort();
      const peer = new DnsmasqPeer(binary, port, hostsDir, options);
      try {
        await peer.launch();
        return peer;
      } catch (error) {
        lastError = error;
        if (!/address already in use/i.test(String((error as Error).message))) break;
      }
    }
    rmSync(hostsDir, { recursive: true, force: true });
    throw lastError;
  }

  /** `127.0.0.1:port`, for `backend_config.nameservers`. */
  get nameserver(): string {
    return `127.0.0.1:${this.port}`;
  }

  get pid(): number | undefined {
    return this.peer?.pid;
  }

  /** dnsmasq's own output (with `logQueries`, one line per query). */
  get log(): string {
    return this.peer?.log ?? '';
  }

  /** How many queries of `type` (A, AAAA, SRV) for `name` dnsmasq has logged (needs `logQueries`). */
  queryCount(type: string, name: string): number {
    const needle = `query[${type}] ${name} from`;
    return this.log.split('\n').filter((line) => line.includes(needle)).length;
  }

  /** Writes (replaces) a hosts file in the hosts dir: `{ '127.0.0.5': ['web.svc.test'] }`. */
  writeHosts(file: string, entries: Record<string, string[]>): void {
    const text = Object.entries(entries)
      .map(([ip, names]) => `${ip} ${names.join(' ')}`)
      .join('\n');
    // Write then rename, so inotify never shows dnsmasq a half-written file
    // (dnsmasq ignores dotfiles in a hosts dir).
    const tmp = join(this.hostsDir, `.${file}.tmp`);
    writeFileSync(tmp, `${text}\n`);
    renameSync(tmp, join(this.hostsDir, file));
  }

  removeHosts(file: string): void {
    rmSync(join(this.hostsDir, file), { force: true });
  }

  /** Sends a signal to dnsmasq (SIGSTOP makes queries time out, SIGCONT resumes). */
  signal(signal: NodeJS.Signals): void {
    this.peer?.signal(signal);
  }

  /** Stops dnsmasq and starts it again on the same port, with new command-line records when given. */
  async restart(records?: DnsmasqRecords): Promise<void> {
    await this.stopProcess();
    if (records) this.options = { ...this.options, ...records };
    await this.launch();
  }

  /** Stops dnsmasq by pid (the port and hosts dir stay, so {@link restart} can bring it back). */
  async stopProcess(): Promise<void> {
    await this.peer?.stop();
  }

  /** Stops dnsmasq and removes its hosts dir. */
  async stop(): Promise<void> {
    await this.stopProcess();
    rmSync(this.hostsDir, { recursive: true, force: true });
  }

  private async launch(): Promise<void> {
    const o = this.options;
    const args = [
      '--keep-in-foreground',
      '--conf-file=/dev/null',
      `--port=${this.port}`,
      '--listen-address=127.0.0.1',
      '--bind-interfaces',
      '--no-resolv',
      '--no-hosts',
      '--no-negcache',
      `--local-ttl=${o.localTtl ?? 1}`,
      '--pid-file=',
      '--log-facility=-',
      ...(process.getuid?.() === 0 ? ['--user=root'] : []),
      ...(o.logQueries ? ['--log-queries'] : []),
      ...(o.localDomains ?? ['svc.test']).map((d) => `--local=/${d}/`),
      ...(o.srvHosts ?? []).map((s) => `--srv-host=${s}`),
      ...(o.hostRecords ?? []).map((h) => `--host-record=${h}`),
      `--hostsdir=${this.hostsDir}`,
    ];
    const probe = new dns.Resolver({ timeout: 200, tries: 1 });
    probe.setServers([this.nameserver]);
    const probeName = `ready-probe.${(o.localDomains ?? ['svc.test'])[0]}`;
    this.peer = new PeerProcess({
      name: `dnsmasq:${this.port}`,
      command: this.binary,
      args,
      readyTimeoutMs: 10_000,
      // Ready when it answers at all: NXDOMAIN for the probe name is an answer.
      ready: () =>
        probe.resolve4(probeName).then(
          () => true,
          (e: NodeJS.ErrnoException) => e.code === 'ENOTFOUND' || e.code === 'ENODATA',
        ),
    });
    try {
      await this.peer.start();
    } finally {
      probe.cancel();
    }
  }
}

/** A port free for both UDP and TCP on 127.0.0.1 (dnsmasq binds both). */
async function findFreeUdpAndTcpPort(): Promise<number> {
  for (let i = 0; i < 20; i++) {
    const port = await findFreePort();
    const udpFree = await new Promise<boolean>((resolve) => {
      const socket = createSocket('udp4');
      socket.once('error', () => {
        socket.close();
        resolve(false);
      });
      socket.bind(port, '127.0.0.1', () => socket.close(() => resolve(true)));
    });
    if (udpFree) return port;
  }
  throw new Error('no port free for both UDP and TCP on 127.0.0.1');
}
