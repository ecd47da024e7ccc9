import 'reflect-metadata';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { Controller, Get, Injectable, Module, type INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createServiceInstance,
  DiscoveryModule,
  InjectServiceClient,
  resolveDiscoveryConfig,
  type Registration,
  type Registry,
  type ServiceClient,
} from '../../../lib/index.js';
import { createRegistry } from '../../../lib/registry/create-registry.js';
import { findFreePort } from '../../../lib/core/tcp.js';
import { type AdminState } from '../../../lib/admin/admin-state.js';
import { GreeterServer, greeterPackage, type GreeterStub } from '../../support/grpc/greeter.js';
import { ETCDCTL_BINARY, EtcdPeer } from '../../support/peers/etcd.js';
import { waitFor } from '../../support/wait-for.js';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = join(import.meta.dirname, '../../../test-artifacts/admin');
const PASSWORD = 'adm1n-S3cret-pw-never-shown';
const quiet = { log() {}, warn() {}, error() {} };

@Injectable()
class GreeterCaller {
  constructor(@InjectServiceClient('greeter') readonly greeter: ServiceClient) {}
}

function helloOver(channel: grpc.Channel): Promise<unknown> {
  const stub = new greeterPackage.greeter.Greeter('unused', grpc.credentials.createInsecure(), {
    channelOverride: channel,
  }) as unknown as GreeterStub;
  return new Promise((resolve, reject) =>
    stub.SayHello({ name: 'admin' }, new grpc.Metadata(), { deadline: Date.now() + 2_000 }, (e, r) =>
      e ? reject(e) : resolve(r),
    ),
  );
}

if (!existsSync(CHROMIUM)) {
  if (process.env.CI === 'true')
    throw new Error(
      `${CHROMIUM} is missing: run scripts/peers/install-chromium.sh (CI's scripts/peers/install.sh does)`,
    );
  execFileSync('bash', [join(import.meta.dirname, '../../../scripts/peers/install-chromium.sh')], { stdio: 'inherit' });
}

describe('admin view (JSON and page) in a running Nest app', () => {
  let etcd: EtcdPeer;
  let registry: Registry;
  let app: INestApplication;
  let base: string;
  let browser: Browser;
  const servers: GreeterServer[] = [];
  const registrations: Registration[] = [];

  beforeAll(async () => {
    etcd = await EtcdPeer.start();
    // A password-protected etcd, so the test can show the password never leaks.
    const ctl = (...args: string[]) =>
      execFileSync(ETCDCTL_BINARY, ['--endpoints', etcd.endpoint, ...args], {
        env: { ...process.env, ETCDCTL_API: '3' },
      });
    ctl('user', 'add', `root:${PASSWORD}`);
    ctl('auth', 'enable');
    const backendConfig = {
      endpoints: etcd.endpoints,
      auth: { username: 'root', password: PASSWORD },
      dialTimeout: 2,
      requestTimeout: 2,
    };
    registry = await createRegistry(resolveDiscoveryConfig({ backend: 'etcd', backendConfig }), quiet);
    for (const id of ['g1', 'g2', 'g3']) {
      const server = await new GreeterServer(id).start();
      servers.push(server);
      registrations.push(
        await registry.register(
          createServiceInstance({ service: 'greeter', id, address: server.address, metadata: { zone: 'z1' } }),
          { ttlMs: 30_000, heartbeatMs: 5_000 },
        ),
      );
    }
    @Module({
      imports: [
        DiscoveryModule.forRoot({
          backend: 'etcd',
          backendConfig,
          loadBalance: 'round_robin',
          admin: { path: '/discovery', refreshMs: 250 },
          logger: quiet,
        }),
      ],
      providers: [GreeterCaller],
    })
    class AdminApp {}
    app = await NestFactory.create(AdminApp, { logger: false, abortOnError: false });
    const port = await findFreePort();
    await app.listen(port, '127.0.0.1');
    base = `http://127.0.0.1:${port}`;
    await app.get(GreeterCaller).greeter.ready({ minEndpoints: 3 });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    mkdirSync(ARTIFACTS, { recursive: true });
  }, 90_000);

  afterAll(async () => {
    await browser?.close();
    await app?.close();
    await registry?.close();
    servers.forEach((s) => s.kill());
    await etcd?.stop();
  });

  const state = async (): Promise<AdminState> => {
    const response = await fetch(`${base}/discovery/state.json`);
    expect(response.headers.get('content-type')).toMatch(/application\/json/);
    return (await response.json()) as AdminState;
  };

  it('shows every endpoint in the JSON view, then an ejection, then the registry going stale — and never the password', async () => {
    const first = await state();
    expect(first.backend).toBe('etcd');
    expect(first.registry.reachable).toBe(true);
    const greeter = first.services.find((s) => s.service === 'greeter')!;
    expect(greeter).toMatchObject({ state: 'ok', strategy: 'round_robin', known: 3, served: 3, panic: false });
    expect(greeter.endpoints.map((e) => [e.id, e.health, e.zone])).toEqual([
      ['g1', 'healthy', 'z1'],
      ['g2', 'healthy', 'z1'],
      ['g3', 'healthy', 'z1'],
    ]);

    const page = await browser.newPage();
    await page.goto(`${base}/discovery`);
    await page.waitForSelector('tr[data-health="healthy"] >> nth=2');
    expect(await page.locator('tr.healthy').count()).toBe(3);
    await page.screenshot({ path: join(ARTIFACTS, 'admin-healthy.png'), fullPage: true });

    // g2 is drained in the registry (weight 0): still listed, shown as drained, not served; then it comes back.
    const g2 = registrations[1];
    await g2.update(createServiceInstance({ ...g2.instance, weight: 0 }));
    await waitFor(async () => (await state()).services[0].endpoints.find((e) => e.id === 'g2')!.health === 'drained', {
      what: 'g2 drained',
    });
    const drained = await state();
    expect(drained.services[0]).toMatchObject({ known: 3, served: 2 });
    expect(drained.services[0].endpoints.find((e) => e.id === 'g2')).toMatchObject({ served: false, weight: 0 });
    await page.waitForSelector('tr.drained[data-address="' + servers[1].address + '"]', { timeout: 10_000 });
    await page.screenshot({ path: join(ARTIFACTS, 'admin-drained.png'), fullPage: true });
    await g2.update(createServiceInstance({ ...g2.instance, weight: 1 }));
    await waitFor(async () => (await state()).services[0].served === 3, { what: 'g2 served again' });

    // A server dies: real calls fail on it, passive outlier detection ejects it.
    const client = app.get(GreeterCaller).greeter;
    servers[2].kill();
    await waitFor(
      async () => {
        await Promise.all(
          Array.from({ length: 6 }, () =>
            client
              .call(({ channel }) => helloOver(channel), {
                retry: { maxAttempts: 3, budget: { maxTokens: 1000, tokenRatio: 1 } },
              })
              .catch(() => undefined),
          ),
        );
        return (await state()).services[0].endpoints.find((e) => e.id === 'g3')!.health === 'ejected';
      },
      { timeoutMs: 20_000, what: 'g3 ejected' },
    );
    const ejected = (await state()).services[0].endpoints.find((e) => e.id === 'g3')!;
    expect(ejected).toMatchObject({ served: false });
    expect(ejected.detail).toMatch(/ejected after consecutive transport failures/);
    expect(ejected.failuresLastMinute).toBeGreaterThanOrEqual(1);
    expect((await state()).services[0].endpoints.find((e) => e.id === 'g1')!.picksLastMinute).toBeGreaterThan(0);
    await page.waitForSelector('tr.ejected[data-address="' + servers[2].address + '"]', { timeout: 10_000 });
    await page.screenshot({ path: join(ARTIFACTS, 'admin-ejected.png'), fullPage: true });

    // The registry stops: the last known endpoints are served, marked stale.
    for (const member of etcd.members) await member.stop();
    await waitFor(async () => (await state()).services[0].state === 'stale', {
      timeoutMs: 30_000,
      what: 'stale state',
    });
    const stale = await state();
    expect(stale.registry.reachable).toBe(false);
    expect(stale.services[0].known).toBe(3);
    await page.waitForSelector('h2[data-service="greeter"] .badge.stale', { timeout: 10_000 });
    await page.screenshot({ path: join(ARTIFACTS, 'admin-stale.png'), fullPage: true });

    const json = JSON.stringify(stale);
    const html = await page.content();
    const raw = await (await fetch(`${base}/discovery`)).text();
    for (const text of [json, html, raw]) expect(text).not.toContain(PASSWORD);
    await page.close();
    for (const member of etcd.members) await member.start();
  }, 90_000);

  it('refuses an admin path that collides with an app route, at bootstrap', async () => {
    @Controller()
    class Taken {
      @Get('discovery')
      mine(): string {
        return 'mine';
      }
    }
    @Module({
      imports: [
        DiscoveryModule.forRoot({ backend: 'memory', admin: { path: '/discovery' }, logger: quiet, isGlobal: false }),
      ],
      controllers: [Taken],
    })
    class Colliding {}
    const colliding = await NestFactory.create(Colliding, { logger: false, abortOnError: false });
    await expect(colliding.init()).rejects.toThrow(/admin.path.*GET \/discovery is taken/);
    await colliding.close();
  });
});
