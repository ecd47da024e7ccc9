// Part 6 of `npm run bench`: HTTP end to end. Three HTTP servers in their
// own processes (bench/http-server.mjs); bench/http.worker.mjs drives
// client.fetch, fetch with discovery.httpDispatcher(), a hand-written round
// robin over three undici Pools and axios with a keep-alive agent, side by
// side in alternated rounds; a second worker run measures bytes per pick on
// the dispatcher's path. Kept here so bench/run.mjs only calls it.
import { canConnect, findFreePort } from '../../dist/core/index.js';
import { startServer, ROOT } from './processes.mjs';
import { median, round } from './stats.mjs';
import { fmt, table } from './table.mjs';
import { join } from 'node:path';

export const HTTP_TARGETS = { cpuAboveUndici: 1.05, p99AboveUndici: 1.1 };

const MODES = [
  ['switchyard_fetch', 'switchyard client.fetch'],
  ['switchyard_dispatcher', 'switchyard fetch + httpDispatcher()'],
  ['undici_rr', 'hand-written round robin, 3 undici Pools'],
  ['axios_keepalive', 'axios, keep-alive agent'],
];

async function startHttpServer(id) {
  for (let attempt = 1; ; attempt++) {
    const port = await findFreePort();
    try {
      const server = await startServer({
        name: `http server ${id}`,
        command: process.execPath,
        args: [join(ROOT, 'bench/http-server.mjs'), String(port)],
        env: { ID: id },
        ready: () => canConnect('127.0.0.1', port, 200),
        readyTimeoutMs: 15_000,
      });
      return { server, address: `127.0.0.1:${port}` };
    } catch (error) {
      if (attempt >= 3) throw error;
    }
  }
}

/** Runs the part; `measure(script, input, options)` is run.mjs's worker runner (it notes the load). */
export async function runHttpPart(profile, measure, log) {
  const servers = [];
  try {
    for (const id of ['http-1', 'http-2', 'http-3']) servers.push(await startHttpServer(id));
    const addresses = servers.map((s) => s.address);
    // A whole number of rotations: each client runs first, second, ... equally often (the first run of a
    // round measured dearer for every client, so a client that got it more often would look worse).
    const rounds = Math.ceil(profile.rounds / MODES.length) * MODES.length;
    log(
      `  http: ${rounds} rounds x ${MODES.length} clients, ${profile.durationMs / 1000} s each, concurrency ${profile.concurrency}`,
    );
    const result = await measure(
      'http.worker.mjs',
      { addresses, modes: MODES.map(([m]) => m), ...profile, rounds },
      { execArgv: ['--expose-gc'], timeoutMs: 900_000 },
    );
    log('  http: bytes per pick on the dispatcher path');
    const alloc = await measure(
      'http.worker.mjs',
      { addresses, mode: 'alloc' },
      { execArgv: ['--expose-gc', '--min-semi-space-size=64', '--max-semi-space-size=64'] },
    );
    log('  http: switchyard CPU per request on stub pools');
    const overhead = await measure('http.worker.mjs', { addresses, mode: 'overhead' }, { execArgv: ['--expose-gc'] });
    const s = result.summary;
    const paired = (mode, key) => median(result.runs[mode].map((run, i) => run[key] / result.runs.undici_rr[i][key]));
    const row = (mode) => ({
      rps: round(s[mode].rps, 0),
      p50_ms: round(s[mode].p50_ms, 2),
      p99_ms: round(s[mode].p99_ms, 2),
      cpu_us_per_call: round(s[mode].cpu_us_per_call, 1),
      errors: s[mode].errors,
      ...(s[mode].first_error ? { first_error: s[mode].first_error } : {}),
      cpu_vs_undici_rr: round(paired(mode, 'cpu_us_per_call'), 3),
      p99_vs_undici_rr: round(paired(mode, 'p99_ms'), 3),
      load_1m: loadRangeOf(result.runs[mode]),
    });
    return {
      concurrency: profile.concurrency,
      rounds,
      seconds_per_run: profile.durationMs / 1000,
      order_per_round: result.order,
      clients: Object.fromEntries(MODES.map(([mode]) => [mode, row(mode)])),
      own_cpu_us_per_request: round(overhead.us_per_request, 2),
      own_cpu_share_of_undici_rr: round(overhead.us_per_request / s.undici_rr.cpu_us_per_call, 4),
      own_cpu_load_1m: overhead.load_1m,
      bytes_per_pick: alloc.bytes_per_pick === null ? null : round(alloc.bytes_per_pick, 3),
      picks_measured: alloc.picks_measured,
      alloc_load_1m: alloc.load_1m,
      servers: 'bench/http-server.mjs x3, one process each, 127.0.0.1, keep-alive',
      runs: result.runs,
    };
  } finally {
    await Promise.all(servers.map((s) => s.server.stop()));
  }
}

function loadRangeOf(runs) {
  const values = runs.flatMap((r) => r.load_1m ?? []);
  return values.length ? [Math.min(...values), Math.max(...values)] : null;
}

/** Target checks for run.mjs's table: CPU and p99 of both switchyard clients vs the hand-written round robin, bytes per pick. */
export function httpTargetChecks(h) {
  if (!h?.clients) return [];
  const checks = [];
  for (const mode of ['switchyard_fetch', 'switchyard_dispatcher']) {
    const c = h.clients[mode];
    checks.push({
      what: `http ${mode} client CPU per request vs undici round robin (paired median)`,
      measured: c.cpu_vs_undici_rr,
      target: `<= ${HTTP_TARGETS.cpuAboveUndici}`,
      met: c.cpu_vs_undici_rr <= HTTP_TARGETS.cpuAboveUndici,
    });
    checks.push({
      what: `http ${mode} p99 vs undici round robin (paired median)`,
      measured: c.p99_vs_undici_rr,
      target: `<= ${HTTP_TARGETS.p99AboveUndici}`,
      met: c.p99_vs_undici_rr <= HTTP_TARGETS.p99AboveUndici,
    });
  }
  // The same target decomposed: switchyard's own layer, measured alone, against the round robin's whole request.
  if (typeof h.own_cpu_share_of_undici_rr === 'number')
    checks.push({
      what: "http switchyard's own CPU per request (stub pools) / undici round robin's CPU per request",
      measured: h.own_cpu_share_of_undici_rr,
      target: `<= ${round(HTTP_TARGETS.cpuAboveUndici - 1, 2)}`,
      met: h.own_cpu_share_of_undici_rr <= HTTP_TARGETS.cpuAboveUndici - 1,
    });
  checks.push({
    what: 'http bytes allocated per pick (host -> client, pick, pool)',
    measured: h.bytes_per_pick ?? 'not measured',
    target: '0 (< 0.5 measured)',
    met: h.bytes_per_pick === null ? null : h.bytes_per_pick < 0.5,
  });
  return checks;
}

/** The part's table, each figure with the load it was measured under. */
export function httpReport(h, loadText) {
  if (!h?.clients) return h?.error ? ['', `6. HTTP end to end: failed: ${h.error}`] : [];
  const rows = MODES.map(([mode, label]) => {
    const c = h.clients[mode];
    return [
      label,
      fmt(c.rps, 0),
      fmt(c.p50_ms, 2),
      fmt(c.p99_ms, 2),
      fmt(c.cpu_us_per_call, 1),
      fmt(c.cpu_vs_undici_rr, 3),
      fmt(c.p99_vs_undici_rr, 3),
      loadText(c.load_1m),
    ];
  });
  return [
    '',
    `6. HTTP end to end: GET, 3 server processes, concurrency ${h.concurrency}, medians of ${h.rounds} alternated rounds of ${h.seconds_per_run} s`,
    table(
      ['client', 'req/s', 'p50 ms', 'p99 ms', 'client CPU µs/req', 'CPU vs undici', 'p99 vs undici', 'load 1m'],
      rows,
    ),
    `   bytes per pick on the dispatcher path: ${h.bytes_per_pick === null ? 'not measured' : fmt(h.bytes_per_pick, 3)} (load 1m ${loadText(h.alloc_load_1m)})`,
    `   switchyard's own CPU per request (dispatcher over stub pools): ${fmt(h.own_cpu_us_per_request, 2)} µs, ${fmt(h.own_cpu_share_of_undici_rr * 100, 2)} % of the round robin's per request (load 1m ${loadText(h.own_cpu_load_1m)})`,
  ];
}
