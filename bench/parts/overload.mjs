// Bench part `overload`: what overload protection costs and buys.
//   tail:       p99 of ServiceClient.call() with one of three Echo servers 50 ms
//               slower, hedging off and on (two fixed delays), beside the run
//               with no slow server (goal: hedged p99 within 1.2x of it);
//   subsetting: 300 clients x 300 servers, subsets of 20, computed with the
//               library's own function (goal: max/min clients per server <= 1.1),
//               and how much a client's subset changes when one server joins;
//   idle:       client CPU per call with each feature on but idle vs all off
//               (goal: <= 2 % each).
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ROOT } from '../support/processes.mjs';
import { startEcho } from '../support/peers.mjs';
import { median, round } from '../support/stats.mjs';

export const OVERLOAD_TARGETS = { hedgedP99VsHealthy: 1.2, subsetSpread: 1.1, idleCpu: 1.02 };

const HEDGE_DELAYS_MS = [1, 3];

export async function overloadPart({ measure, log, profile }) {
  const out = {};
  const fast = [];
  let slow;
  try {
    for (const id of ['fast-1', 'fast-2', 'fast-3']) fast.push(await startEcho(id));
    slow = await startEcho('slow', 50);
    const common = { concurrency: 16, rounds: profile.rounds, durationMs: profile.durationMs };
    log(`  overload tail: ${common.rounds} rounds, hedging delays ${HEDGE_DELAYS_MS.join(', ')} ms`);
    const tail = await measure(
      'overload.worker.mjs',
      { part: 'tail', fast: fast.map((s) => s.address), slow: slow.address, hedgeDelaysMs: HEDGE_DELAYS_MS, ...common },
      { execArgv: ['--expose-gc'], timeoutMs: 900_000 },
    );
    const p99 = (mode) => round(tail.summary[mode].p99_ms, 2);
    const vsHealthy = (mode) =>
      round(median(tail.runs[mode].map((r, i) => r.p99_ms / tail.runs.no_slow_server[i].p99_ms)), 2);
    out.tail = {
      load_1m: tail.load_1m,
      p99_ms: Object.fromEntries(Object.keys(tail.summary).map((m) => [m, p99(m)])),
      p99_vs_no_slow_server: Object.fromEntries(Object.keys(tail.summary).map((m) => [m, vsHealthy(m)])),
      attempts_per_call: Object.fromEntries(
        Object.entries(tail.summary).map(([m, s]) => [m, round(s.attempts_per_call, 3)]),
      ),
      errors: Object.fromEntries(Object.entries(tail.summary).map(([m, s]) => [m, s.errors])),
    };
    log('  overload idle: each feature on but idle vs all off');
    const idle = await measure(
      'overload.worker.mjs',
      {
        part: 'idle',
        fast: fast.map((s) => s.address),
        concurrency: 64,
        rounds: profile.rounds,
        durationMs: profile.durationMs,
      },
      { execArgv: ['--expose-gc'], timeoutMs: 900_000 },
    );
    out.idle = {
      load_1m: idle.load_1m,
      cpu_us_per_call: Object.fromEntries(
        Object.entries(idle.summary).map(([m, s]) => [m, round(s.cpu_us_per_call, 1)]),
      ),
      cpu_vs_all_off: Object.fromEntries(
        Object.keys(idle.summary)
          .filter((m) => m !== 'all_off')
          .map((m) => [
            m,
            round(median(idle.runs[m].map((r, i) => r.cpu_us_per_call / idle.runs.all_off[i].cpu_us_per_call)), 3),
          ]),
      ),
    };
  } finally {
    await Promise.all([...fast, slow].filter(Boolean).map((s) => s.server.stop()));
  }
  out.subsetting = await subsettingSimulation();
  return out;
}

async function subsettingSimulation() {
  const { deterministicSubset } = await import(pathToFileURL(join(ROOT, 'dist/client/subsetting.js')).href);
  const { EndpointSet } = await import(pathToFileURL(join(ROOT, 'dist/core/endpoint-set.js')).href);
  const { createServiceInstance } = await import(pathToFileURL(join(ROOT, 'dist/core/service-instance.js')).href);
  const servers = (n) =>
    EndpointSet.of(
      'svc',
      Array.from({ length: n }, (_, i) =>
        createServiceInstance({ service: 'svc', id: `s${i}`, address: `10.1.${i >> 8}.${i & 255}:1` }),
      ),
    );
  const clients = 300;
  const size = 20;
  const set = servers(300);
  const perServer = new Map();
  const subsets = [];
  for (let c = 0; c < clients; c++) {
    const subset = deterministicSubset(set, size, c);
    subsets.push(new Set(subset.endpoints.map((e) => e.key)));
    for (const e of subset.endpoints) perServer.set(e.key, (perServer.get(e.key) ?? 0) + 1);
  }
  const counts = [...perServer.values()];
  const joined = servers(301);
  let changed = 0;
  for (let c = 0; c < clients; c++) {
    for (const e of deterministicSubset(joined, size, c).endpoints) if (!subsets[c].has(e.key)) changed++;
  }
  return {
    clients,
    servers: 300,
    subset_size: size,
    servers_used: perServer.size,
    clients_per_server_min: Math.min(...counts),
    clients_per_server_max: Math.max(...counts),
    spread: round(Math.max(...counts) / Math.min(...counts), 3),
    servers_changed_per_client_when_one_joins: round(changed / clients, 2),
  };
}

/** Adds the overload part's targets (`add(what, measured, target, met)`). */
export function overloadTargets(overload, add) {
  if (!overload || overload.error) return;
  const hedged = Object.entries(overload.tail?.p99_vs_no_slow_server ?? {}).filter(
    ([m]) => m.startsWith('slow_hedging_') && m !== 'slow_hedging_off',
  );
  const best = hedged.reduce((a, b) => (b[1] < a[1] ? b : a), hedged[0] ?? ['none', Infinity]);
  add(
    `overload: p99 with a 50 ms slower server, hedged (${best[0]}) vs no slow server`,
    best[1],
    `<= ${OVERLOAD_TARGETS.hedgedP99VsHealthy}`,
    best[1] <= OVERLOAD_TARGETS.hedgedP99VsHealthy,
  );
  const s = overload.subsetting;
  add(
    'overload: subsetting 300 clients x 300 servers x 20, max/min clients per server',
    s.spread,
    `<= ${OVERLOAD_TARGETS.subsetSpread}`,
    s.spread <= OVERLOAD_TARGETS.subsetSpread,
  );
  for (const [feature, ratio] of Object.entries(overload.idle?.cpu_vs_all_off ?? {})) {
    add(
      `overload: CPU per call with ${feature} on but idle vs all off`,
      ratio,
      `<= ${OVERLOAD_TARGETS.idleCpu}`,
      ratio <= OVERLOAD_TARGETS.idleCpu,
    );
  }
}

/** The overload part's table lines. */
export function overloadReport(overload, { table, loadText }) {
  if (!overload) return [];
  if (overload.error) return ['', `Overload protection: failed: ${overload.error}`];
  const out = [
    '',
    `Overload protection: tail latency with one server 50 ms slower (concurrency 16), load ${loadText(overload.tail.load_1m)}`,
  ];
  out.push(
    table(
      ['client', 'p99 ms', 'p99 vs no slow server', 'attempts/call', 'errors'],
      Object.keys(overload.tail.p99_ms).map((m) => [
        m,
        overload.tail.p99_ms[m],
        overload.tail.p99_vs_no_slow_server[m],
        overload.tail.attempts_per_call[m],
        overload.tail.errors[m],
      ]),
    ),
  );
  out.push('', `   features on but idle (concurrency 64), load ${loadText(overload.idle.load_1m)}`);
  out.push(
    table(
      ['features', 'CPU us/call', 'vs all off'],
      Object.keys(overload.idle.cpu_us_per_call).map((m) => [
        m,
        overload.idle.cpu_us_per_call[m],
        overload.idle.cpu_vs_all_off[m] ?? '1',
      ]),
    ),
  );
  const s = overload.subsetting;
  out.push(
    '',
    `   subsetting: ${s.clients} clients x ${s.servers} servers, subsets of ${s.subset_size}: ${s.clients_per_server_min}-${s.clients_per_server_max} clients per server (spread ${s.spread}); one server joining changes ${s.servers_changed_per_client_when_one_joins} servers per client`,
  );
  return out;
}
