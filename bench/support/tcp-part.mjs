// Part `tcp` of `npm run bench`: request/response over three Nest TCP
// microservices (test/support/tcp/tcp-server-process.mjs, one process each),
// DiscoveryClientProxy against three ClientTCPs in a hand-written round
// robin, measured side by side in one worker (bench/tcp.worker.mjs). Kept
// here so bench/run.mjs only calls it: measure, judge, print.
import { join } from 'node:path';
import { canConnect, findFreePort } from '../../dist/core/index.js';
import { ROOT, startServer } from './processes.mjs';
import { median, round } from './stats.mjs';

const TCP_SERVER_SCRIPT = join(ROOT, 'test/support/tcp/tcp-server-process.mjs');

/** The targets of issue 17: DiscoveryClientProxy vs three ClientTCPs in round robin. */
export const TCP_TARGETS = { cpuAboveClientTcp: 1.05, p99AboveClientTcp: 1.1 };

async function startTcpServer(id) {
  for (let attempt = 1; ; attempt++) {
    const port = await findFreePort();
    try {
      const server = await startServer({
        name: `tcp server ${id}`,
        command: process.execPath,
        args: [TCP_SERVER_SCRIPT],
        env: { PORT: String(port), ID: id },
        ready: () => canConnect('127.0.0.1', port, 200),
        readyTimeoutMs: 20_000,
      });
      return { server, address: `127.0.0.1:${port}` };
    } catch (error) {
      // Another process may have taken the free port first.
      if (attempt >= 3) throw error;
    }
  }
}

/**
 * Runs the TCP worker over three fresh servers and summarises it: medians
 * per client, and the medians of per-round ratios (both clients ran back to
 * back in each round, so drift cancels), each figure with its load.
 */
export async function tcpEndToEnd({ profile, measure, loadRange, log }) {
  const servers = [];
  try {
    for (const id of ['tcp-1', 'tcp-2', 'tcp-3']) servers.push(await startTcpServer(id));
    log(
      `  tcp: ${profile.rounds} rounds x DiscoveryClientProxy, 3 ClientTCPs round robin, ${profile.durationMs / 1000} s each, concurrency ${profile.concurrency}`,
    );
    const result = await measure(
      'tcp.worker.mjs',
      { addresses: servers.map((s) => s.address), ...profile },
      { execArgv: ['--expose-gc'], timeoutMs: 900_000 },
    );
    const s = result.summary;
    const paired = (key) =>
      median(result.runs.switchyard_tcp.map((run, i) => run[key] / result.runs.clienttcp_rr[i][key]));
    const pick = (key, digits) => ({
      switchyard_tcp: round(s.switchyard_tcp[key], digits),
      clienttcp_rr: round(s.clienttcp_rr[key], digits),
    });
    return {
      concurrency: profile.concurrency,
      rounds: profile.rounds,
      seconds_per_run: profile.durationMs / 1000,
      rps: pick('rps', 0),
      p50_ms: pick('p50_ms', 2),
      p99_ms: pick('p99_ms', 2),
      cpu_us_per_call: pick('cpu_us_per_call', 1),
      paired_medians: {
        rps: round(paired('rps'), 3),
        cpu: round(paired('cpu_us_per_call'), 3),
        p99: round(paired('p99_ms'), 3),
      },
      order_per_round: result.order,
      load_1m: Object.fromEntries(
        Object.entries(result.runs).map(([mode, runs]) => [mode, loadRange(...runs.map((r) => r.load_1m))]),
      ),
      errors: Object.fromEntries(Object.entries(s).map(([mode, v]) => [mode, v.errors])),
      servers: 'test/support/tcp/tcp-server-process.mjs x3 (Nest TCP microservices), one process each, 127.0.0.1',
      runs: result.runs,
    };
  } finally {
    await Promise.all(servers.map((s) => s.server.stop()));
  }
}

/** Adds the TCP targets to the run's checks. */
export function tcpTargetChecks(tcp, add) {
  if (!tcp?.paired_medians) return;
  const ofMedians = (key) => round(tcp[key].switchyard_tcp / tcp[key].clienttcp_rr, 3);
  add(
    'tcp client CPU per call vs 3 ClientTCPs round robin',
    `${tcp.paired_medians.cpu} (of medians ${ofMedians('cpu_us_per_call')})`,
    `<= ${TCP_TARGETS.cpuAboveClientTcp}`,
    tcp.paired_medians.cpu <= TCP_TARGETS.cpuAboveClientTcp,
  );
  add(
    'tcp p99 vs 3 ClientTCPs round robin',
    `${tcp.paired_medians.p99} (of medians ${ofMedians('p99_ms')})`,
    `<= ${TCP_TARGETS.p99AboveClientTcp}`,
    tcp.paired_medians.p99 <= TCP_TARGETS.p99AboveClientTcp,
  );
}

/** The TCP table of the printed report. */
export function tcpReport(tcp, { table, fmt, loadText }) {
  if (!tcp?.paired_medians) return tcp?.error ? ['', `6. TCP end to end: failed: ${tcp.error}`] : [];
  const rows = [
    ['DiscoveryClientProxy, round_robin', 'switchyard_tcp'],
    ['3 ClientTCPs, hand-written round robin', 'clienttcp_rr'],
  ].map(([label, key]) => [
    label,
    fmt(tcp.rps[key], 0),
    fmt(tcp.p50_ms[key], 2),
    fmt(tcp.p99_ms[key], 2),
    fmt(tcp.cpu_us_per_call[key], 1),
    loadText(tcp.load_1m?.[key]),
  ]);
  return [
    '',
    `6. TCP end to end: request/response, 3 Nest TCP microservices, concurrency ${tcp.concurrency}, medians of ${tcp.rounds} alternated rounds of ${tcp.seconds_per_run} s`,
    table(['client', 'calls/s', 'p50 ms', 'p99 ms', 'client CPU µs/call', 'load 1m'], rows),
    `   per-round medians, DiscoveryClientProxy ÷ ClientTCPs: calls/s ${fmt(tcp.paired_medians.rps, 3)}, CPU/call ${fmt(tcp.paired_medians.cpu, 3)}, p99 ${fmt(tcp.paired_medians.p99, 3)}`,
  ];
}
