import 'reflect-metadata';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NestFactory } from '@nestjs/core';
import { freePort } from './free-port.js';
import { CallerModule } from './caller/caller.module.js';
import { OrdersCaller, type OrderReply } from './caller/orders-caller.service.js';

/**
 * `npm run start:http`: three `orders` instances (Nest on Express) and one
 * caller on the embedded `local` backend. The caller calls `orders` three
 * ways — `client.fetch`, the platform's fetch with the discovery dispatcher,
 * and @nestjs/axios — and midway one instance gets SIGTERM: it deregisters,
 * drains (answering with `Connection: close`) and exits, and the caller
 * keeps going with zero failed requests.
 */
const INSTANCES = 3;
const RUN_MS = Number(process.env.SAMPLE_RUN_MS ?? 6_000);
const CONCURRENCY = 6;

const dir = await mkdtemp(join(tmpdir(), 'switchyard-sample-http-'));
process.env.DISCOVERY_DIR = dir;
const children: ChildProcess[] = [];
const stopAll = () => children.forEach((c) => c.exitCode === null && c.kill('SIGTERM'));
process.once('SIGINT', () => {
  stopAll();
  process.exit(130);
});

function startOrders(index: number, port: number): ChildProcess {
  const child = spawn(process.execPath, ['--enable-source-maps', join(import.meta.dirname, 'orders', 'main.js')], {
    env: { ...process.env, PORT: String(port), INSTANCE_ID: `orders-${index}`, DISCOVERY_DIR: dir },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  children.push(child);
  return child;
}

const started = Date.now();
const ports = await Promise.all(Array.from({ length: INSTANCES }, () => freePort()));
ports.forEach((port, i) => startOrders(i + 1, port));

const app = await NestFactory.createApplicationContext(CallerModule, { logger: ['error', 'warn', 'log'] });
const caller = app.get(OrdersCaller);
const log = (m: string) => console.log(`[sample +${((Date.now() - started) / 1000).toFixed(1)}s] ${m}`);

caller.orders.endpoints$.subscribe((set) => {
  const change = [
    ...set.diff.added.map((e) => `+${e.instance.id}`),
    ...set.diff.removed.map((e) => `-${e.instance.id}`),
  ].join(' ');
  log(
    `endpoints of 'orders' (${set.state}, rev ${set.revision}): ${set.endpoints.map((e) => e.instance.id).join(', ') || 'none'}${change ? `  [${change}]` : ''}`,
  );
});

const ways: Array<[string, (id: string) => Promise<OrderReply>]> = [
  ['client.fetch', (id) => caller.viaClientFetch(id)],
  ['fetch + dispatcher (POST)', (id) => caller.viaDispatcher(id)],
  ['@nestjs/axios', (id) => caller.viaAxios(id)],
];

let exitCode = 1;
const served = new Map<string, number>();
const byWay = new Map<string, number>();
let failed = 0;
let calls = 0;
try {
  await caller.orders.ready({ minEndpoints: INSTANCES, timeoutMs: 30_000 });
  log(
    `all ${INSTANCES} orders instances discovered; calling for ${RUN_MS / 1000}s with ${CONCURRENCY} concurrent callers`,
  );
  const deadline = Date.now() + RUN_MS;
  let terminated = false;
  const victim = children[0];
  const victimExited = new Promise<void>((resolve) => victim.once('exit', () => resolve()));
  const worker = async (w: number) => {
    for (let n = 0; Date.now() < deadline; n++) {
      if (!terminated && Date.now() > deadline - RUN_MS / 2) {
        terminated = true;
        log('sending SIGTERM to orders-1');
        victim.kill('SIGTERM');
      }
      const [way, call] = ways[(w + n) % ways.length];
      calls++;
      try {
        const reply = await call(`${w}-${n}`);
        served.set(reply.instance, (served.get(reply.instance) ?? 0) + 1);
        byWay.set(way, (byWay.get(way) ?? 0) + 1);
      } catch (error) {
        failed++;
        const cause = (error as Error & { cause?: Error }).cause;
        log(`${way} failed: ${(error as Error).message}${cause ? ` (${cause.message})` : ''}`);
      }
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, (_, w) => worker(w)));
  await victimExited;
  log(`orders-1 exited (${victim.signalCode ?? `code ${victim.exitCode}`}) after deregistering and draining`);
  const summary = {
    calls,
    failed,
    served: Object.fromEntries([...served].sort()),
    ways: Object.fromEntries([...byWay].sort()),
    instances: served.size,
  };
  console.log('\nRequests answered per instance:');
  for (const [id, count] of [...served].sort()) console.log(`  ${id.padEnd(28)} ${String(count).padStart(6)}`);
  console.log('Requests answered per way of calling:');
  for (const [way, count] of [...byWay].sort()) console.log(`  ${way.padEnd(28)} ${String(count).padStart(6)}`);
  console.log(`  ${'total'.padEnd(28)} ${String(calls).padStart(6)}   failed: ${failed}`);
  console.log(`SUMMARY ${JSON.stringify(summary)}`);
  exitCode = failed === 0 && served.size === INSTANCES && byWay.size === ways.length ? 0 : 1;
} catch (error) {
  console.error(`sample failed: ${(error as Error).message}`);
} finally {
  await app.close();
  stopAll();
  await Promise.all(
    children.map((c) =>
      c.exitCode === null && c.signalCode === null ? new Promise((r) => c.once('exit', r)) : Promise.resolve(),
    ),
  );
  await rm(dir, { recursive: true, force: true });
  log(`done (${exitCode === 0 ? 'ok' : 'FAILED'})`);
}
process.exit(exitCode);
