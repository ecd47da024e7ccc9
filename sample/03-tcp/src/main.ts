import 'reflect-metadata';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NestFactory } from '@nestjs/core';
import type { EndpointSet } from 'switchyard';
import { freePort } from './free-port.js';
import { CallerModule } from './caller/caller.module.js';
import { OrdersCaller } from './caller/orders-caller.service.js';

/**
 * `npm run start:tcp`: three `orders` instances (Nest TCP microservices) and
 * one caller using ClientsModule with DiscoveryClientProxy, on the embedded
 * `local` backend. Midway, one instance gets SIGTERM: it deregisters,
 * drains and exits, and the caller keeps going with zero failed sends.
 */
const INSTANCES = 3;
const RUN_MS = Number(process.env.SAMPLE_RUN_MS ?? 6_000);
const CONCURRENCY = 8;

const dir = await mkdtemp(join(tmpdir(), 'switchyard-sample-tcp-'));
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

process.env.DISCOVERY_DIR = dir;
const app = await NestFactory.createApplicationContext(CallerModule, { logger: ['error', 'warn', 'log'] });
const caller = app.get(OrdersCaller);
const log = (m: string) => console.log(`[sample +${((Date.now() - started) / 1000).toFixed(1)}s] ${m}`);

caller.client.endpoints$.subscribe((set: EndpointSet) => {
  const change = [
    ...set.diff.added.map((e) => `+${e.instance.id}`),
    ...set.diff.removed.map((e) => `-${e.instance.id}`),
  ].join(' ');
  log(
    `endpoints of 'orders' (${set.state}, rev ${set.revision}): ${set.endpoints.map((e) => e.instance.id).join(', ') || 'none'}${change ? `  [${change}]` : ''}`,
  );
});

let exitCode = 1;
const served = new Map<string, number>();
let failed = 0;
let sends = 0;
let events = 0;
try {
  await caller.client.ready({ minEndpoints: INSTANCES, timeoutMs: 30_000 });
  log(
    `all ${INSTANCES} orders instances discovered; sending for ${RUN_MS / 1000}s with ${CONCURRENCY} concurrent callers`,
  );
  const deadline = Date.now() + RUN_MS;
  let terminated = false;
  const victim = children[0];
  const victimExited = new Promise<void>((resolve) => victim.once('exit', () => resolve()));
  const worker = async (w: number) => {
    while (Date.now() < deadline) {
      if (!terminated && Date.now() > deadline - RUN_MS / 2) {
        terminated = true;
        log('sending SIGTERM to orders-1');
        victim.kill('SIGTERM');
      }
      const n = sends++;
      try {
        const order = await caller.getOrder(`${w}-${n}`);
        served.set(order.instance, (served.get(order.instance) ?? 0) + 1);
        if (n % 10 === 0) {
          events++;
          await caller.orderViewed(order.id);
        }
      } catch (error) {
        failed++;
        log(`send failed: ${(error as Error).message}`);
      }
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, (_, w) => worker(w)));
  await victimExited;
  log(`orders-1 exited (${victim.signalCode ?? `code ${victim.exitCode}`}) after deregistering and draining`);
  const summary = { sends, events, failed, served: Object.fromEntries([...served].sort()), instances: served.size };
  console.log('\nSends answered per instance:');
  for (const [id, count] of [...served].sort()) console.log(`  ${id.padEnd(12)} ${String(count).padStart(6)}`);
  console.log(`  ${'total'.padEnd(12)} ${String(sends).padStart(6)}   failed: ${failed}   events emitted: ${events}`);
  console.log(`SUMMARY ${JSON.stringify(summary)}`);
  exitCode = failed === 0 && served.size === INSTANCES ? 0 : 1;
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
