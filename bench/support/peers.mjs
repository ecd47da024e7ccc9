// Real servers for the end-to-end and convergence benchmarks, started on
// free loopback ports the way the test suite's launchers
// (test/support/peers/*.ts) start them: same binaries, same install
// scripts, same flags. The launchers are TypeScript and the benchmark is
// plain JavaScript over dist/, hence this small copy.
import { spawnSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { promises as dns } from 'node:dns';
import { accessSync, constants, mkdtempSync, rmSync } from 'node:fs';
import { get } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { canConnect, findFreePort } from '../../dist/core/index.js';
import { ROOT, startServer } from './processes.mjs';

const GREETER_SCRIPT = join(ROOT, 'test/support/grpc/greeter-process.mjs');

function executable(path) {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * The first executable of `candidates`; when none exists, runs the peer's
 * install script once and looks again. Returns `{ binary }` or `{ problem }`.
 */
function ensureBinary(candidates, installScript) {
  let binary = candidates.find(executable);
  if (binary) return { binary };
  const run = spawnSync('bash', [join(ROOT, 'scripts/peers', installScript)], { encoding: 'utf8', timeout: 300_000 });
  binary = candidates.find(executable);
  if (binary) return { binary };
  return {
    problem: `not installed, and scripts/peers/${installScript} failed (exit ${run.status}): ${(run.stderr || run.stdout || '').trim().split('\n').slice(-3).join(' | ')}`,
  };
}

/** The first line a binary prints for its version flag, e.g. "etcd Version: 3.4.23". */
function versionOf(binary, args) {
  const run = spawnSync(binary, args, { encoding: 'utf8', timeout: 10_000 });
  return (
    (run.stdout || run.stderr || '')
      .trim()
      .split('\n')[0]
      .split(/\s{2,}/)[0] || binary
  );
}

async function distinctFreePorts(count) {
  const ports = new Set();
  while (ports.size < count) ports.add(await findFreePort());
  return [...ports];
}

/** A Greeter server (test/support/grpc/greeter-process.mjs) in its own process. */
export async function startGreeter(id) {
  for (let attempt = 1; ; attempt++) {
    const port = await findFreePort();
    try {
      const server = await startServer({
        name: `greeter ${id}`,
        command: process.execPath,
        args: [GREETER_SCRIPT],
        env: { PORT: String(port), ID: id, DELAY_MS: '0' },
        ready: () => canConnect('127.0.0.1', port, 200),
        readyTimeoutMs: 15_000,
      });
      return { server, address: `127.0.0.1:${port}`, port };
    } catch (error) {
      // Another process may have taken the free port first.
      if (attempt >= 3) throw error;
    }
  }
}

/** A raw-bytes Echo server (bench/echo-server.mjs) in its own process, answering after `delayMs`. */
export async function startEcho(id, delayMs = 0) {
  for (let attempt = 1; ; attempt++) {
    const port = await findFreePort();
    try {
      const server = await startServer({
        name: `echo ${id}`,
        command: process.execPath,
        args: [join(ROOT, 'bench/echo-server.mjs'), String(port), String(delayMs)],
        ready: () => canConnect('127.0.0.1', port, 200),
        readyTimeoutMs: 15_000,
      });
      return { server, address: `127.0.0.1:${port}`, port };
    } catch (error) {
      // Another process may have taken the free port first.
      if (attempt >= 3) throw error;
    }
  }
}

/** One etcd member with a temporary data dir. `{ url, stop() }`, or `{ problem }`. */
export async function startEtcd() {
  const found = ensureBinary(['/usr/bin/etcd'], 'install-etcd.sh');
  if (!found.binary) return { problem: `etcd ${found.problem}` };
  const [clientPort, peerPort] = await distinctFreePorts(2);
  const dataDir = mkdtempSync(join(tmpdir(), 'switchyard-bench-etcd-'));
  const url = `http://127.0.0.1:${clientPort}`;
  const server = await startServer({
    name: `etcd :${clientPort}`,
    command: found.binary,
    args: [
      '--name',
      'bench',
      '--data-dir',
      dataDir,
      '--listen-client-urls',
      url,
      '--advertise-client-urls',
      url,
      '--listen-peer-urls',
      `http://127.0.0.1:${peerPort}`,
      '--initial-advertise-peer-urls',
      `http://127.0.0.1:${peerPort}`,
      '--initial-cluster',
      `bench=http://127.0.0.1:${peerPort}`,
      '--initial-cluster-state',
      'new',
      '--logger',
      'zap',
      '--log-outputs',
      'stderr',
      '--log-level',
      'warn',
    ],
    ready: async () => {
      const { status, body } = await httpGet(`${url}/health`);
      return status === 200 && JSON.parse(body).health === 'true';
    },
    readyTimeoutMs: 30_000,
  });
  return {
    url,
    version: versionOf(found.binary, ['--version']),
    async stop() {
      await server.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** A dev-mode Consul agent. `{ url, stop() }`, or `{ problem }`. */
export async function startConsul() {
  const found = ensureBinary([join(ROOT, '.peers/consul/usr/bin/consul')], 'install-consul.sh');
  if (!found.binary) return { problem: `consul ${found.problem}` };
  const [http, dnsPort, server, serfLan] = await distinctFreePorts(4);
  const url = `http://127.0.0.1:${http}`;
  const agent = await startServer({
    name: `consul agent :${http}`,
    command: found.binary,
    args: [
      'agent',
      '-dev',
      '-bind',
      '127.0.0.1',
      '-client',
      '127.0.0.1',
      '-log-level',
      'warn',
      '-hcl',
      `ports { http = ${http}, dns = ${dnsPort}, server = ${server}, serf_lan = ${serfLan}, serf_wan = -1, grpc = -1, https = -1 }`,
    ],
    // Ready once it elected itself leader: before that, health queries answer 500.
    ready: async () => {
      const { status, body } = await httpGet(`${url}/v1/status/leader`);
      return status === 200 && JSON.parse(body).length > 0;
    },
    readyTimeoutMs: 30_000,
  });
  return { url, version: versionOf(found.binary, ['version']), stop: () => agent.stop() };
}

/**
 * dnsmasq answering for `svc.test` with a hosts dir it reloads by inotify.
 * `{ nameserver, hostsDir, stop() }`, or `{ problem }`; the convergence worker writes the records.
 */
export async function startDnsmasq({ localTtl = 1 } = {}) {
  const found = ensureBinary(
    ['/usr/sbin/dnsmasq', '/usr/local/sbin/dnsmasq', '/usr/bin/dnsmasq'],
    'install-dnsmasq.sh',
  );
  if (!found.binary) return { problem: `dnsmasq ${found.problem}` };
  const hostsDir = mkdtempSync(join(tmpdir(), 'switchyard-bench-dnsmasq-'));
  for (let attempt = 1; ; attempt++) {
    const port = await freeUdpAndTcpPort();
    const probe = new dns.Resolver({ timeout: 200, tries: 1 });
    probe.setServers([`127.0.0.1:${port}`]);
    try {
      const server = await startServer({
        name: `dnsmasq :${port}`,
        command: found.binary,
        args: [
          '--keep-in-foreground',
          '--conf-file=/dev/null',
          `--port=${port}`,
          '--listen-address=127.0.0.1',
          '--bind-interfaces',
          '--no-resolv',
          '--no-hosts',
          '--no-negcache',
          `--local-ttl=${localTtl}`,
          '--pid-file=',
          '--log-facility=-',
          ...(process.getuid?.() === 0 ? ['--user=root'] : []),
          '--local=/svc.test/',
          `--hostsdir=${hostsDir}`,
        ],
        // Ready when it answers at all: NXDOMAIN for the probe name is an answer.
        ready: () =>
          probe.resolve4('ready-probe.svc.test').then(
            () => true,
            (e) => e.code === 'ENOTFOUND' || e.code === 'ENODATA',
          ),
        readyTimeoutMs: 10_000,
      });
      return {
        nameserver: `127.0.0.1:${port}`,
        hostsDir,
        version: versionOf(found.binary, ['--version']),
        async stop() {
          await server.stop();
          rmSync(hostsDir, { recursive: true, force: true });
        },
      };
    } catch (error) {
      if (attempt >= 3 || !/address already in use/i.test(String(error.message))) {
        rmSync(hostsDir, { recursive: true, force: true });
        throw error;
      }
    } finally {
      probe.cancel();
    }
  }
}

/** A port free for both UDP and TCP on 127.0.0.1 (dnsmasq binds both). */
async function freeUdpAndTcpPort() {
  for (let i = 0; i < 20; i++) {
    const port = await findFreePort();
    const udpFree = await new Promise((resolve) => {
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

/** A one-off GET without connection reuse. */
export function httpGet(url) {
  return new Promise((resolve, reject) => {
    const request = get(url, { agent: false, timeout: 2_000 }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
      response.on('error', reject);
    });
    request.on('timeout', () => request.destroy(new Error(`GET ${url} timed out`)));
    request.on('error', reject);
  });
}
