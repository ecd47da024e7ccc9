import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '../..');
const main = join(root, 'dist-sample/02-http/main.js');

describe('sample/02-http (what `npm run start:http` runs)', () => {
  it('calls 3 Express instances with client.fetch, the dispatcher and @nestjs/axios, survives a SIGTERM midway with zero failed requests, and exits 0', async () => {
    expect(existsSync(main), 'run `npm run build && npm run build:sample` first (npm test does)').toBe(true);
    const child = spawn(process.execPath, [main], {
      cwd: root,
      env: { ...process.env, SAMPLE_RUN_MS: '4000' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    const killer = setTimeout(() => child.kill('SIGKILL'), 50_000);
    const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
    clearTimeout(killer);
    expect(code, output).toBe(0);
    const summary = JSON.parse(/^SUMMARY (.*)$/m.exec(output)?.[1] ?? 'null') as {
      calls: number;
      failed: number;
      served: Record<string, number>;
      ways: Record<string, number>;
    };
    expect(summary.failed).toBe(0);
    expect(Object.keys(summary.served).sort()).toEqual(['orders-1', 'orders-2', 'orders-3']);
    for (const count of Object.values(summary.served)) expect(count).toBeGreaterThan(0);
    expect(Object.keys(summary.ways).sort()).toEqual(['@nestjs/axios', 'client.fetch', 'fetch + dispatcher (POST)']);
    for (const count of Object.values(summary.ways)) expect(count).toBeGreaterThan(0);
    // The deregistration of the terminated instance reached the caller before it exited.
    expect(output).toMatch(/\[-orders-1\]/);
    expect(output.indexOf('[-orders-1]')).toBeLessThan(output.indexOf('orders-1 exited'));
  }, 60_000);
});
