// Bench part `echo`: end to end on a raw-bytes Echo service (no protobuf),
// where a call costs ~100 µs of client CPU and balancing overhead cannot
// hide: switchyard's discovery:/// channel vs grpc-js round_robin, each with
// and without gRPC's retry policy (switchyard's default has it on), rounds
// rotating which client goes first. Client CPU per call and calls/s as
// paired medians (each round's ratio, then the median of the ratios).
import { startEcho } from '../support/peers.mjs';
import { median, round } from '../support/stats.mjs';

export const ECHO_TARGETS = { cpuAboveGrpcjs: 1.03, rpsVsGrpcjs: 0.97 };

export async function echoPart({ measure, log, profile }) {
  const servers = [];
  try {
    for (const id of ['echo-1', 'echo-2', 'echo-3']) servers.push(await startEcho(id));
    const modes = ['switchyard', 'switchyard_no_retry', 'grpcjs_rr', 'grpcjs_rr_retry'];
    log(
      `  echo: ${profile.rounds} rounds x ${modes.join(', ')}, ${profile.durationMs / 1000} s each, concurrency ${profile.concurrency}`,
    );
    const result = await measure(
      'echo.worker.mjs',
      { addresses: servers.map((s) => s.address), modes, ...profile },
      { execArgv: ['--expose-gc'], timeoutMs: 900_000 },
    );
    const paired = (mode, base, key) =>
      round(median(result.runs[mode].map((run, i) => run[key] / result.runs[base][i][key])), 3);
    return {
      load_1m: result.load_1m,
      concurrency: profile.concurrency,
      rounds: profile.rounds,
      seconds_per_run: profile.durationMs / 1000,
      cpu_us_per_call: Object.fromEntries(modes.map((m) => [m, round(result.summary[m].cpu_us_per_call, 1)])),
      rps: Object.fromEntries(modes.map((m) => [m, round(result.summary[m].rps, 0)])),
      p99_ms: Object.fromEntries(modes.map((m) => [m, round(result.summary[m].p99_ms, 2)])),
      paired_medians: {
        // switchyard's defaults (retry policy on) against plain grpc-js round_robin, as users compare them,
        cpu_vs_grpcjs_rr: paired('switchyard', 'grpcjs_rr', 'cpu_us_per_call'),
        rps_vs_grpcjs_rr: paired('switchyard', 'grpcjs_rr', 'rps'),
        // and like for like: both with the same retry policy, both without.
        cpu_vs_grpcjs_rr_same_retry: paired('switchyard', 'grpcjs_rr_retry', 'cpu_us_per_call'),
        cpu_no_retry_vs_grpcjs_rr: paired('switchyard_no_retry', 'grpcjs_rr', 'cpu_us_per_call'),
        rps_no_retry_vs_grpcjs_rr: paired('switchyard_no_retry', 'grpcjs_rr', 'rps'),
      },
      errors: Object.fromEntries(modes.map((m) => [m, result.summary[m].errors])),
    };
  } finally {
    await Promise.all(servers.map((s) => s.server.stop()));
  }
}

/** Adds the echo part's targets (`add(what, measured, target, met)`). */
export function echoTargets(echo, add) {
  if (!echo || echo.error) return;
  const p = echo.paired_medians;
  add(
    'echo: client CPU per call vs grpc-js round_robin (paired median)',
    p.cpu_vs_grpcjs_rr,
    `<= ${ECHO_TARGETS.cpuAboveGrpcjs}`,
    p.cpu_vs_grpcjs_rr <= ECHO_TARGETS.cpuAboveGrpcjs,
  );
  add(
    'echo: calls/s vs grpc-js round_robin (paired median)',
    p.rps_vs_grpcjs_rr,
    `>= ${ECHO_TARGETS.rpsVsGrpcjs}`,
    p.rps_vs_grpcjs_rr >= ECHO_TARGETS.rpsVsGrpcjs,
  );
}

/** The echo part's table lines. */
export function echoReport(echo, { table, loadText }) {
  if (!echo) return [];
  if (echo.error) return ['', `Echo (raw bytes) end to end: failed: ${echo.error}`];
  const modes = Object.keys(echo.cpu_us_per_call);
  return [
    '',
    `Echo (raw bytes) end to end: concurrency ${echo.concurrency}, ${echo.rounds} rounds x ${echo.seconds_per_run} s, load ${loadText(echo.load_1m)}`,
    table(
      ['client', 'CPU us/call', 'calls/s', 'p99 ms', 'errors'],
      modes.map((m) => [m, echo.cpu_us_per_call[m], echo.rps[m], echo.p99_ms[m], echo.errors[m]]),
    ),
    `   paired medians: CPU/call ${echo.paired_medians.cpu_vs_grpcjs_rr}x and calls/s ${echo.paired_medians.rps_vs_grpcjs_rr}x grpc-js round_robin; same retry policy on both: CPU ${echo.paired_medians.cpu_vs_grpcjs_rr_same_retry}x; both without: CPU ${echo.paired_medians.cpu_no_retry_vs_grpcjs_rr}x`,
  ];
}
