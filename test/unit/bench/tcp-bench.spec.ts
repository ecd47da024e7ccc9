import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { TcpServers } from '../../integration/tcp/support/tcp-kit.js';

/*
 * The TCP part of `npm run bench` says how its figures were taken, as the
 * gRPC part does: alternated rounds, and the load beside every figure.
 */
const ROOT = join(import.meta.dirname, '../../..');
const run = promisify(execFile);
const scratch = mkdtempSync(join(tmpdir(), 'sy-tcp-bench-'));
let servers: TcpServers | undefined;
afterAll(async () => {
  await servers?.stop();
  rmSync(scratch, { recursive: true, force: true });
});

describe('bench tcp', () => {
  it('alternates DiscoveryClientProxy and the ClientTCPs, with no error, recording the load of every run', async () => {
    servers = await TcpServers.create();
    const started = await Promise.all(['a', 'b', 'c'].map((id) => servers!.start(`bench-${id}`, { register: false })));
    const spec = {
      addresses: started.map((s) => s.address),
      rounds: 2,
      durationMs: 200,
      warmupMs: 100,
      concurrency: 4,
    };
    const { stdout } = await run(process.execPath, [join(ROOT, 'bench/tcp.worker.mjs'), JSON.stringify(spec)], {
      cwd: ROOT,
      timeout: 60_000,
    });
    const result = JSON.parse(stdout.trim().split('\n').at(-1)!) as {
      order: string[][];
      summary: Record<string, { errors: number }>;
      runs: Record<string, Array<{ position: number; calls: number; load_1m: number[] }>>;
    };
    expect(result.order).toEqual([
      ['switchyard_tcp', 'clienttcp_rr'],
      ['clienttcp_rr', 'switchyard_tcp'],
    ]);
    for (const [mode, runs] of Object.entries(result.runs)) {
      expect(result.summary[mode].errors, mode).toBe(0);
      expect(runs.map((r) => r.position).sort()).toEqual([0, 1]);
      for (const r of runs) {
        expect(r.calls).toBeGreaterThan(0);
        expect(r.load_1m).toHaveLength(2);
      }
    }
  }, 90_000);

  it('prints the TCP figures on the Performance page with their load', async () => {
    const load = [1.25, 1.5];
    const both = (a: number, b: number) => ({ switchyard_tcp: a, clienttcp_rr: b });
    const file = join(scratch, 'results.json');
    writeFileSync(
      file,
      JSON.stringify({
        machine: {
          node: 'v20',
          cpus: 2,
          cpu_model: 'x',
          grpc_js: '1',
          switchyard_commit: 'abc',
          loadavg_start: [1, 1, 1],
          loadavg_end: [1, 1, 1],
          date: '2026-01-01T00:00:00Z',
        },
        tcp: {
          concurrency: 64,
          rounds: 5,
          seconds_per_run: 5,
          rps: both(40_000, 38_000),
          p50_ms: both(1, 1.2),
          p99_ms: both(9, 9.5),
          cpu_us_per_call: both(10, 12),
          paired_medians: { rps: 1.05, cpu: 0.83, p99: 0.95 },
          load_1m: { switchyard_tcp: load, clienttcp_rr: load },
        },
      }),
    );
    const { stdout } = await run(process.execPath, [join(ROOT, 'bench/markdown.mjs'), file]);
    const rows = stdout.split('\n').filter((l) => /^\| (switchyard `DiscoveryClientProxy`|three `ClientTCP`s)/.test(l));
    expect(rows).toHaveLength(2);
    for (const row of rows) expect(row).toContain('1.25–1.50');
    expect(stdout).toMatch(/client CPU per call 0\.830, p99 0\.950/);
  });
});
