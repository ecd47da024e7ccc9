import 'reflect-metadata';
import { HttpService } from '@nestjs/axios';
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { firstValueFrom } from 'rxjs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import axios from 'axios';
import {
  Discovery,
  DiscoveryHttpModule,
  DiscoveryModule,
  discoveryAxiosConfig,
  type HttpFetchInit,
  type ServiceClient,
} from '../../../../lib/index.js';
import { startHttpApp, type HttpApp, type HttpPlatform } from '../../../support/http/http-apps.js';
import { waitFor } from '../../../support/wait-for.js';
import { startLoad } from './http-load.js';

/** A backend the apps and the test's own Discovery share. */
export interface HttpBackend {
  name: string;
  /** DiscoveryModule options for the apps and the caller: backend and backendConfig. */
  options: Record<string, unknown>;
}

/** Retries "on", as the fault scenarios have them: a budget that the burst of one crash under load cannot exhaust. */
const RETRIES_ON = { maxAttempts: 3, budget: { maxTokens: 100, tokenRatio: 1 } };

const quiet = { log: () => undefined, warn: () => undefined, error: () => undefined };
const DRAIN_MS = 1_000;

async function whoami(client: ServiceClient, init?: HttpFetchInit): Promise<string> {
  const response = await client.fetch('/api/whoami', init);
  expect(response.status).toBe(200);
  return ((await response.json()) as { instance: string }).instance;
}

/**
 * The HTTP transport against three Nest apps of one platform in their own
 * processes, registered on `backend`: spreading per strategy, axios and the
 * dispatcher, 429 avoidance, the drain, SIGKILL and a rolling restart under
 * load. `backend()` is read in beforeAll (its server starts there).
 */
export function describeHttpApps(platform: HttpPlatform, backend: () => HttpBackend): void {
  describe(`HTTP services on ${platform} apps`, () => {
    const apps: HttpApp[] = [];
    let discovery: Discovery;
    let dir: string;
    let seenFile: string;
    let options: Record<string, unknown>;

    const appOptions = (id: string) => ({
      id,
      platform,
      seenFile,
      discovery: { ...options, registration: { ttl: 6, drainMs: DRAIN_MS }, logger: undefined },
    });

    // Loads still running when a test failed are stopped before the next test (and before close).
    const loads: Array<ReturnType<typeof startLoad>> = [];
    const load$ = (...args: Parameters<typeof startLoad>) => {
      const load = startLoad(...args);
      loads.push(load);
      return load;
    };
    afterEach(async () => {
      await Promise.all(loads.splice(0).map((l) => l.stop()));
    });

    // A restarted instance gets a new id, as a new pod does: a SIGKILLed one's record may outlive it until its TTL.
    let restarts = 0;
    const successorOf = (app: HttpApp) => appOptions(`${app.id.replace(/-r\d+$/, '')}-r${++restarts}`);

    const client = (name: string, extra: Record<string, unknown> = {}): ServiceClient =>
      discovery.client({ name, ...extra });

    /** Waits until `c` serves exactly these instance ids. */
    const servedIds = (c: ServiceClient, ids: string[]) =>
      waitFor(
        () =>
          JSON.stringify(
            c
              .snapshot()
              .endpoints.map((e) => e.instance.id)
              .sort(),
          ) === JSON.stringify([...ids].sort()),
        { timeoutMs: 30_000, what: `served instances ${ids.join(', ')}` },
      );

    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), `switchyard-http-${platform}-`));
      seenFile = join(dir, 'posts-seen.txt');
      options = backend().options;
      apps.push(...(await Promise.all([1, 2, 3].map((n) => startHttpApp(appOptions(`${platform}-${n}`))))));
      discovery = await Discovery.create(options, { logger: quiet });
    });

    afterAll(async () => {
      await discovery?.close();
      await Promise.all(apps.map((app) => app.peer.stop()));
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    it('registers each app once its HTTP port listens; round_robin spreads requests evenly', async () => {
      const orders = client('orders', { loadBalance: 'round_robin' });
      await orders.ready({ minEndpoints: 3, timeoutMs: 30_000 });
      expect(
        orders
          .snapshot()
          .endpoints.map((e) => e.address)
          .sort(),
      ).toEqual(apps.map((a) => a.address).sort());
      const seen = new Map<string, number>();
      for (let i = 0; i < 30; i++) {
        const id = await whoami(orders);
        seen.set(id, (seen.get(id) ?? 0) + 1);
      }
      expect(Object.fromEntries(seen)).toEqual(Object.fromEntries(apps.map((a) => [a.id, 10])));
    });

    it('consistent_hash keeps a key on one instance (x-hash-key header or { key }) and spreads keys', async () => {
      const orders = client('orders', { loadBalance: 'consistent_hash' });
      await orders.ready({ minEndpoints: 3, timeoutMs: 30_000 });
      const owners = new Set<string>();
      for (let k = 0; k < 24; k++) {
        const headers = { 'x-hash-key': `customer-${k}` };
        const first = await whoami(orders, { headers });
        for (let i = 0; i < 3; i++) expect(await whoami(orders, { headers })).toBe(first);
        owners.add(first);
      }
      expect(owners.size).toBe(3);
      // `{ key }` on client.fetch is the same key as the header.
      const viaKey = await whoami(orders, { key: 'customer-0' });
      expect(viaKey).toBe(await whoami(orders, { headers: { 'x-hash-key': 'customer-0' } }));
    });

    it('least_connections counts requests in flight until the body ends: a slow instance gets fewer', async () => {
      const orders = client('orders', { loadBalance: 'least_connections' });
      await orders.ready({ minEndpoints: 3, timeoutMs: 30_000 });
      const seen = new Map<string, number>();
      const worker = async () => {
        for (let i = 0; i < 15; i++) {
          const id = await whoami(orders);
          seen.set(id, (seen.get(id) ?? 0) + 1);
        }
      };
      await Promise.all(Array.from({ length: 6 }, worker));
      expect([...seen.keys()].sort()).toEqual(apps.map((a) => a.id).sort());
      // In flight ended with each body: nothing is left counted.
      expect(orders.describeEndpoints().map((e) => e.inFlight)).toEqual([0, 0, 0]);
    });

    it('@nestjs/axios HttpService, plain axios and fetch with the dispatcher reach the same servers', async () => {
      @Module({
        imports: [
          DiscoveryModule.forRoot({ ...(options as object), clients: ['orders'], logger: quiet }),
          DiscoveryHttpModule.register({ timeout: 10_000 }),
        ],
      })
      class CallerModule {}
      const app = await NestFactory.createApplicationContext(CallerModule, { logger: false });
      try {
        const http = app.get(HttpService);
        // The default strategy (consistent_hash without a key) picks at random: ask until all three answered.
        const everyone = apps.length;
        const viaAxios = new Set<string>();
        for (let i = 0; i < 60 && viaAxios.size < everyone; i++) {
          const response = await firstValueFrom(http.get<{ instance: string }>('http://orders/api/whoami'));
          viaAxios.add(response.data.instance);
        }
        expect([...viaAxios].sort()).toEqual(apps.map((a) => a.id).sort());
        const posted = await firstValueFrom(http.post<{ id: string }>('http://orders/api/orders', { id: 'axios-1' }));
        expect(posted.status).toBe(201);
        expect(posted.data.id).toBe('axios-1');

        const dispatcher = discovery.httpDispatcher({ services: ['orders'] });
        const viaDispatcher = new Set<string>();
        for (let i = 0; i < 60 && viaDispatcher.size < everyone; i++) {
          const response = await fetch('http://orders/api/whoami', { dispatcher });
          viaDispatcher.add(((await response.json()) as { instance: string }).instance);
        }
        expect([...viaDispatcher].sort()).toEqual(apps.map((a) => a.id).sort());

        // Plain axios, without Nest: the config discoveryAxiosConfig() makes.
        const plainAxios = axios.create(
          discoveryAxiosConfig(dispatcher, { baseURL: 'http://orders', timeout: 10_000 }),
        );
        const viaPlainAxios = new Set<string>();
        for (let i = 0; i < 60 && viaPlainAxios.size < everyone; i++)
          viaPlainAxios.add((await plainAxios.get<{ instance: string }>('/api/whoami')).data.instance);
        expect([...viaPlainAxios].sort()).toEqual(apps.map((a) => a.id).sort());
      } finally {
        await app.close();
      }
    });

    it('429 with Retry-After moves traffic away from that instance for that long, without ejecting it', async () => {
      const orders = client('orders', { loadBalance: 'round_robin', retry: RETRIES_ON });
      await orders.ready({ minEndpoints: 3, timeoutMs: 30_000 });
      const busy = apps[0];
      await busy.overload(3);
      const before = (await busy.stats()).gets;
      const seen = new Set<string>();
      for (let i = 0; i < 12; i++) seen.add(await whoami(orders));
      // One request met the 429 and was retried elsewhere; the rest went around it.
      expect((await busy.stats()).gets - before).toBe(1);
      expect(seen.has(busy.id)).toBe(false);
      const report = orders.describeEndpoints().find((e) => e.endpoint.instance.id === busy.id);
      expect(report?.health).toBe('healthy');
      expect(report?.served).toBe(true);
      // Once Retry-After has passed, it is picked again.
      await waitFor(async () => (await whoami(orders)) === busy.id, { timeoutMs: 15_000, what: 'the busy one back' });
    });

    it(
      'SIGTERM under load: the app deregisters, answers with Connection: close while draining, exits; zero failed requests',
      { timeout: 90_000 },
      async () => {
        const orders = client('orders', { loadBalance: 'round_robin' });
        await orders.ready({ minEndpoints: 3, timeoutMs: 30_000 });
        const load = load$(orders, { concurrency: 8, postEvery: 4, prefix: `term-${platform}` });
        await waitFor(() => load.report.byInstance.size === 3, { what: 'load on every instance' });
        const leaving = apps[2];
        leaving.peer.signal('SIGTERM');
        // Keep-alive clients are told to go: a request on a kept-alive connection gets Connection: close.
        const keepAlive = await waitFor(
          async () => {
            const response = await fetch(`${leaving.url}/api/stats`, { signal: AbortSignal.timeout(2_000) });
            const stats = (await response.json()) as { draining: boolean };
            return stats.draining && response.headers.get('connection') === 'close' ? response : undefined;
          },
          { timeoutMs: 10_000, what: 'Connection: close from the draining app' },
        );
        expect(keepAlive.headers.get('connection')).toBe('close');
        await servedIds(orders, [apps[0].id, apps[1].id]);
        await leaving.peer.waitForExit();
        const report = await load.stop();
        // The successor first, so a failed assertion below does not leave the next tests two instances.
        apps[2] = await startHttpApp(successorOf(leaving));
        expect(report.getFailures).toEqual([]);
        expect(report.postFailures).toEqual([]);
        await servedIds(
          orders,
          apps.map((a) => a.id),
        );
      },
    );

    it(
      'SIGKILL under load: zero failed GETs; a POST that reached the killed server is never sent twice',
      { timeout: 90_000 },
      async () => {
        const orders = client('orders', { loadBalance: 'round_robin', retry: RETRIES_ON });
        await orders.ready({ minEndpoints: 3, timeoutMs: 30_000 });
        const load = load$(orders, { concurrency: 8, postEvery: 3, prefix: `kill-${platform}` });
        await waitFor(() => load.report.byInstance.size === 3, { what: 'load on every instance' });
        const victim = apps[1];
        await victim.peer.kill();
        const postsAtKill = load.report.posts;
        // Keep going until the client has stopped sending there (ejection, or the registration's TTL), and
        // long enough after the kill for POSTs to meet the survivors.
        await waitFor(() => !orders.snapshot().endpoints.some((e) => e.instance.id === victim.id), {
          timeoutMs: 30_000,
          what: 'the killed instance out of the served set',
        });
        await waitFor(() => load.report.posts >= postsAtKill + 20, { what: '20 POSTs after the kill' });
        const report = await load.stop();
        // The successor first, so a failed assertion below does not leave the next tests two instances.
        apps[1] = await startHttpApp(successorOf(victim));
        expect(report.getFailures).toEqual([]);
        const seen = (await readFile(seenFile, 'utf8')).split('\n').filter((l) => l.startsWith(`kill-${platform}`));
        const counts = new Map<string, number>();
        for (const id of seen) counts.set(id, (counts.get(id) ?? 0) + 1);
        expect([...counts].filter(([, n]) => n > 1)).toEqual([]);
        // Every answered POST was seen exactly once; a failed one at most once (it may have reached the victim).
        for (const id of report.postsAnswered) expect(counts.get(id)).toBe(1);
        expect(report.postsAnswered.length).toBeGreaterThanOrEqual(20);
        await servedIds(
          orders,
          apps.map((a) => a.id),
        );
      },
    );

    it('rolling restart under load: zero failed requests', { timeout: 180_000 }, async () => {
      const orders = client('orders', { loadBalance: 'least_connections', retry: RETRIES_ON });
      await orders.ready({ minEndpoints: 3, timeoutMs: 30_000 });
      const load = load$(orders, { concurrency: 8, postEvery: 4, prefix: `roll-${platform}` });
      try {
        for (let i = 0; i < apps.length; i++) {
          const old = apps[i];
          await old.peer.stop(15_000);
          apps[i] = await startHttpApp(successorOf(old));
          await servedIds(
            orders,
            apps.map((a) => a.id),
          );
          const restarted = apps[i].id;
          const before = load.report.byInstance.get(restarted) ?? 0;
          await waitFor(() => (load.report.byInstance.get(restarted) ?? 0) > before, {
            what: `traffic on the restarted ${restarted}`,
          });
        }
      } finally {
        await load.stop();
      }
      const report = load.report;
      expect(report.getFailures).toEqual([]);
      expect(report.postFailures).toEqual([]);
      expect(report.gets).toBeGreaterThan(50);
    });
  });
}
