import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { startGreeterProcess } from '../../support/grpc/greeter.js';
import type { PeerProcess } from '../../support/peers/peer-process.js';

/*
 * What the benchmark prints must say how the figures were taken: the load
 * average with every figure (a busy machine is visible), and end-to-end
 * rounds that do not always run the same side first.
 */
const ROOT = join(import.meta.dirname, '../../..');
const run = promisify(execFile);
const scratch = mkdtempSync(join(tmpdir(), 'sy-bench-evidence-'));
const peers: PeerProcess[] = [];
afterAll(async () => {
  await Promise.all(peers.map((p) => p.stop()));
  rmSync(scratch, { recursive: true, force: true });
});

const load = [2.5, 2.75];
/** A results file as bench/run.mjs writes it, one figure of each kind. */
const results = {
  machine: {
    node: 'v20',
    cpus: 2,
    cpu_model: 'x',
    grpc_js: '1',
    switchyard_commit: 'abc',
    loadavg_start: [2.5, 2, 1],
    loadavg_end: [2.75, 2.1, 1],
    date: '2026-01-01T00:00:00Z',
    quick: false,
  },
  pick: [{ strategy: 'round_robin', endpoints: 3, ns_median: 2.5, bytes_per_pick: 0, peer: null, load_1m: load }],
  rebuild: [
    { strategy: 'round_robin', ms_median: 1, ms_join_median: 1, ms_leave_median: 1, peer: null, load_1m: load },
  ],
  snapshot_update: { ms_median: 10, load_1m: load },
  e2e: {
    concurrency: 64,
    rounds: 3,
    seconds_per_run: 5,
    switchyard_rps: 5000,
    grpcjs_rr_rps: 5000,
    direct_rps: 4000,
    ratio_vs_grpcjs_rr: 1,
    ratio_vs_direct: 1.2,
    p50_ms: { switchyard: 10, grpcjs_rr: 10, direct: 12 },
    p99_ms: { switchyard: 30, grpcjs_rr: 30, direct: 30 },
    cpu_us_per_call: { switchyard: 200, grpcjs_rr: 200, direct: 190 },
    paired_medians: { rps_vs_grpcjs_rr: 1, rps_vs_direct: 1.2, cpu_vs_grpcjs_rr: 1, cpu_vs_direct: 1.05 },
    order_per_round: [['switchyard', 'grpcjs_rr', 'direct']],
    load_1m: { switchyard: load, grpcjs_rr: load, direct: load },
  },
  convergence: [{ backend: 'etcd', p50_ms: 4, p99_ms: 9, samples: 50, load_1m: load, note: 'n' }],
  memory: {
    endpoints: 10_000,
    bytes_per_endpoint: 800,
    bytes_per_endpoint_max: 800,
    parts: { instances: 1, endpoint_set: 1, load_records: 1, picker: { consistent_hash: 1 } },
    load_1m: load,
  },
};

describe('bench report', () => {
  it('prints the load average beside every figure, and at the start and end of the run', async () => {
    const file = join(scratch, 'results.json');
    writeFileSync(file, JSON.stringify(results));
    const { stdout } = await run(process.execPath, [join(ROOT, 'bench/markdown.mjs'), file]);
    expect(stdout).toMatch(
      /load average \(1 \/ 5 \/ 15 min\) 2\.5 \/ 2 \/ 1 at the start and 2\.75 \/ 2\.1 \/ 1 at the end/,
    );
    // Every table row of a figure carries the load it was measured under.
    const figureRows = stdout.split('\n').filter((l) => /^\| (`|switchyard|grpc-js|one direct)/.test(l));
    expect(figureRows.length).toBeGreaterThanOrEqual(6);
    for (const row of figureRows) expect(row, row).toContain('2.50–2.75');
    expect(stdout).toMatch(/took 10\.00 ms at 10,000 endpoints \(load 2\.50–2\.75\)/);
    expect(stdout).toMatch(/\(Load 2\.50–2\.75\.\)/);
    expect(stdout).not.toMatch(/quiet/i);
  });
});

describe('bench end to end', () => {
  it('starts each round with the next client, so none always runs first, and records the load of every run', async () => {
    const servers = await Promise.all(['a', 'b', 'c'].map((id) => startGreeterProcess(`bench-${id}`)));
    peers.push(...servers.map((s) => s.peer));
    const spec = {
      addresses: servers.map((s) => s.address),
      rounds: 3,
      durationMs: 200,
      warmupMs: 100,
      concurrency: 4,
    };
    const { stdout } = await run(process.execPath, [join(ROOT, 'bench/e2e.worker.mjs'), JSON.stringify(spec)], {
      cwd: ROOT,
      timeout: 60_000,
    });
    const result = JSON.parse(stdout.trim().split('\n').at(-1)!) as {
      order: string[][];
      runs: Record<string, Array<{ position: number; load_1m: number[] }>>;
    };
    expect(result.order.map((round) => round[0])).toEqual(['switchyard', 'grpcjs_rr', 'direct']);
    for (const runs of Object.values(result.runs)) {
      expect(runs.map((r) => r.position).sort()).toEqual([0, 1, 2]);
      for (const r of runs) expect(r.load_1m).toHaveLength(2);
    }
  }, 90_000);
});
