import { execFileSync } from 'node:child_process';
import { get } from 'node:http';
import { accessSync, constants } from 'node:fs';
import { join } from 'node:path';
import { findFreePort } from '../../../lib/core/tcp.js';
import { PeerProcess } from './peer-process.js';

/**
 * A real Consul agent (Debian 11's consul 1.8.7, unpacked by
 * scripts/peers/install-consul.sh into the git-ignored .peers/consul) in
 * dev mode on free loopback ports, started through {@link PeerProcess}.
 */
const ROOT = join(import.meta.dirname, '../../..');
const CACHED_BINARY = join(ROOT, '.peers/consul/usr/bin/consul');
const INSTALL_SCRIPT = join(ROOT, 'scripts/peers/install-consul.sh');

export interface ConsulAgentOptions {
  /** ACLs on with default deny; this token is the bootstrap (master) token and the agent's own. */
  aclMasterToken?: string;
  /** Extra HCL appended to the generated configuration. */
  extraHcl?: string;
  /** A fixed HTTP port (e.g. one a registry already points at); others are picked free. */
  httpPort?: number;
  /** Also serve HTTPS with these PEM files; client certificates signed by `caFile` are required. */
  tls?: { certFile: string; keyFile: string; caFile: string };
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

let binaryLookup: { path?: string; problem?: string } | undefined;

/**
 * The consul binary, installed by the peer script when missing. Returns
 * undefined (with the reason printed) when it cannot be had; with `CI=true`
 * it throws instead, so a CI run never skips the Consul suites.
 */
export function consulBinary(): string | undefined {
  if (!binaryLookup) {
    if (!isExecutable(CACHED_BINARY)) {
      try {
        execFileSync('bash', [INSTALL_SCRIPT], { stdio: ['ignore', 'pipe', 'pipe'], timeout: 180_000 });
      } catch (error) {
        const output = (error as { stderr?: Buffer }).stderr?.toString().slice(-2_000) ?? '';
        binaryLookup = { problem: `scripts/peers/install-consul.sh failed: ${(error as Error).message}\n${output}` };
      }
    }
    if (!binaryLookup) {
      binaryLookup = isExecutable(CACHED_BINARY)
        ? { path: CACHED_BINARY }
        : { problem: `no executable at ${CACHED_BINARY} after running the install script` };
    }
  }
  if (binaryLookup.path) return binaryLookup.path;
  const message = `Consul peer unavailable: ${binaryLookup.problem}`;
  if (process.env.CI === 'true') throw new Error(message);
  console.warn(`[switchyard tests] ${message} -- Consul suites are skipped (they fail under CI=true)`);
  return undefined;
}

async function distinctFreePorts(count: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < count) ports.add(await findFreePort());
  return [...ports];
}

/**
 * One dev-mode agent. Dev mode keeps everything in memory, so `restart()`
 * gives an agent with no registrations and a fresh (lower) index on the
 * same ports.
 *
 * @example
 * const agent = await ConsulAgent.start(); // ... agent.url ...; afterAll(() => agent.stop());
 */
export class ConsulAgent {
  private peer: PeerProcess | undefined;

  private constructor(
    readonly binary: string,
    readonly ports: { http: number; dns: number; server: number; serfLan: number; https: number },
    readonly options: ConsulAgentOptions,
  ) {}

  /** Picks free ports and starts the agent; resolves once it has elected itself leader. */
  static async start(options: ConsulAgentOptions = {}, binary = consulBinary()): Promise<ConsulAgent> {
    if (!binary) throw new Error('consul binary unavailable (see the warning above)');
    const [http, dns, server, serfLan, https] = (await distinctFreePorts(6)).filter((p) => p !== options.httpPort);
    const ports = {
      http: options.httpPort ?? http,
      dns: dns,
      server: server,
      serfLan: serfLan,
      https: options.tls ? https : -1,
    };
    const agent = new ConsulAgent(binary, ports, options);
    await agent.launch();
    return agent;
  }

  get url(): string {
    return `http://127.0.0.1:${this.ports.http}`;
  }

  /** The HTTPS address (with `tls` only). */
  get httpsUrl(): string {
    return `https://127.0.0.1:${this.ports.https}`;
  }

  get pid(): number | undefined {
    return this.peer?.pid;
  }

  /** The agent's recent output (for assertions and failure messages). */
  get log(): string {
    return this.peer?.log ?? '';
  }

  /** Stops the agent by pid and starts a new one on the same ports (state is lost: dev mode). */
  async restart(): Promise<void> {
    await this.stop();
    await this.launch();
  }

  /** Stops the agent (SIGTERM, then SIGKILL). Idempotent. */
  async stop(): Promise<void> {
    const peer = this.peer;
    this.peer = undefined;
    await peer?.stop(3_000);
  }

  /** SIGSTOP / SIGCONT the agent process. */
  signal(signal: NodeJS.Signals): void {
    this.peer?.signal(signal);
  }

  private hcl(): string {
    const { http, dns, server, serfLan, https } = this.ports;
    const lines = [
      `ports { http = ${http}, dns = ${dns}, server = ${server}, serf_lan = ${serfLan}, serf_wan = -1, grpc = -1, https = ${https} }`,
    ];
    const tls = this.options.tls;
    if (tls) {
      lines.push(
        `cert_file = ${JSON.stringify(tls.certFile)}`,
        `key_file = ${JSON.stringify(tls.keyFile)}`,
        `ca_file = ${JSON.stringify(tls.caFile)}`,
        'verify_incoming_https = true',
      );
    }
    if (this.options.aclMasterToken) {
      lines.push(
        `acl { enabled = true, default_policy = "deny", down_policy = "extend-cache", enable_token_persistence = false, tokens { master = ${JSON.stringify(this.options.aclMasterToken)}, agent = ${JSON.stringify(this.options.aclMasterToken)} } }`,
      );
    }
    if (this.options.extraHcl) lines.push(this.options.extraHcl);
    return lines.join('\n');
  }

  private async launch(): Promise<void> {
    const url = this.url;
    const peer = new PeerProcess({
      name: `consul agent :${this.ports.http}`,
      command: this.binary,
      args: ['agent', '-dev', '-bind', '127.0.0.1', '-client', '127.0.0.1', '-log-level', 'warn', '-hcl', this.hcl()],
      // Ready once a leader is elected: before that, health queries answer 500.
      ready: async () => {
        const { status, body } = await httpGet(`${url}/v1/status/leader`);
        return status === 200 && JSON.parse(body).length > 0;
      },
      readyTimeoutMs: 30_000,
    });
    await peer.start();
    this.peer = peer;
  }
}

/** A one-off GET without connection reuse (no pooled socket outlives the test). */
export function httpGet(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const request = get(url, { agent: false, headers, timeout: 2_000 }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
      response.on('error', reject);
    });
    request.on('timeout', () => request.destroy(new Error(`GET ${url} timed out`)));
    request.on('error', reject);
  });
}
