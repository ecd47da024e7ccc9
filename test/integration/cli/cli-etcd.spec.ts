import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createServiceInstance, toSeedRecord } from '../../../lib/core/service-instance.js';
import { EtcdPeer } from '../../support/peers/etcd.js';
import type { PeerProcess } from '../../support/peers/peer-process.js';
import {
  assertCliBuilt,
  CliRun,
  expectExit,
  expectNoSecret,
  killAllCli,
  runCli,
  startHeldRegistration,
} from './cli-runner.js';

// The `switchyard` command against a real etcd with authentication on:
// every command runs as root with a password that must never be printed.
const PASSWORD = 'etcd-Pa55-cli-secret';
const WRONG_PASSWORD = 'Wr0ng-etcd-pa55word';

describe('switchyard CLI: etcd', () => {
  let etcd: EtcdPeer;
  let base: string;
  let configFile: string;
  const held: PeerProcess[] = [];
  const env = { SWITCHYARD_PASSWORD: PASSWORD };
  const flags = () => ['--backend', 'etcd', '--endpoints', etcd.endpoint, '--user', 'root'];
  const etcdctl = (args: string[]) => etcd.etcdctl(args, [`--user=root:${PASSWORD}`]);
  const run = (args: string[], extraEnv: NodeJS.ProcessEnv = {}) => runCli(args, { env: { ...env, ...extraEnv } });

  beforeAll(async () => {
    assertCliBuilt();
    etcd = await EtcdPeer.start();
    etcd.etcdctl(['user', 'add', `root:${PASSWORD}`]);
    etcd.etcdctl(['user', 'grant-role', 'root', 'root']);
    etcd.etcdctl(['auth', 'enable']);
    base = await mkdtemp(join(tmpdir(), 'switchyard-cli-etcd-'));
    // A short refresh interval makes the backend probe etcd every second (outages show up fast).
    configFile = join(base, 'etcd.toml');
    await writeFile(
      configFile,
      `[discovery]\nbackend = "etcd"\nrefresh_interval = 1\n\n[discovery.backend_config]\nendpoints = ["${etcd.endpoint}"]\n`,
    );
  });
  afterEach(async () => {
    await killAllCli();
    await Promise.all(held.splice(0).map((p) => p.stop()));
  });
  afterAll(async () => {
    await killAllCli();
    await etcd?.stop();
    if (base) await rm(base, { recursive: true, force: true });
  });

  it('check exits 0 with the etcd version, and 1 for a wrong password without printing either password', async () => {
    const [ok, okJson, refused] = await Promise.all([
      run([...flags(), 'check']),
      run([...flags(), 'check', '--json']),
      run([...flags(), '--password', WRONG_PASSWORD, 'check']),
    ]);
    expectExit(ok, 0);
    expect(ok.stdout).toMatch(new RegExp(`^ok: etcd at ${etcd.endpoint} answered in \\d+ ms \\(etcd 3\\.`));
    expect(JSON.parse(okJson.stdout)).toMatchObject({
      ok: true,
      backend: 'etcd',
      target: etcd.endpoint,
      reachable: true,
      // The default namespace reads the Rust crate's three roots.
      prefixes: ['flare/services/', 'flare-test/services/', 'default/services/'],
    });
    expectExit(refused, 1);
    expect(refused.stderr).toMatch(/failed: etcd at .* answered but refused: .*authentication failed/);
    for (const result of [ok, okJson, refused]) expectNoSecret(result, PASSWORD, WRONG_PASSWORD);
  });

  it('register keeps an instance under a lease that ls shows, and Ctrl-C deletes it', async () => {
    const register = CliRun.start(
      [
        ...flags(),
        'register',
        '--name',
        'orders',
        '--address',
        '127.0.0.1:7101',
        '--id',
        'orders-e1',
        '--ttl',
        '3',
        '--version',
        'v2.0.0',
        '--zone',
        'z1',
        '--tag',
        'tier=gold',
        '--json',
      ],
      { env },
    );
    await register.waitForStdout(/"event":"registered"/);
    expect(register.jsonLines()[0]).toMatchObject({
      event: 'registered',
      id: 'orders-e1',
      backend: 'etcd',
      ttlSeconds: 3,
      instance: { address: '127.0.0.1:7101', version: 'v2.0.0', zone: 'z1', tags: { tier: 'gold' } },
    });
    expect(etcdctl(['get', 'default/services/orders/orders-e1', '--print-value-only'])).toContain(
      '"instance_id":"orders-e1"',
    );

    const [services, instances, table] = await Promise.all([
      run([...flags(), 'ls', '--json']),
      run([...flags(), 'ls', 'orders', '--json']),
      run([...flags(), 'ls', 'orders']),
    ]);
    expectExit(services, 0);
    expect(JSON.parse(services.stdout)).toMatchObject({
      backend: 'etcd',
      namespace: 'default',
      services: [{ name: 'orders', instances: 1 }],
    });
    expectExit(instances, 0);
    expect(JSON.parse(instances.stdout)).toMatchObject({
      service: 'orders',
      state: 'ok',
      instances: [
        {
          id: 'orders-e1',
          address: '127.0.0.1:7101',
          version: 'v2.0.0',
          zone: 'z1',
          // The seed layout's default weight, the Rust services' own.
          weight: 100,
          healthy: true,
          drained: false,
          served: true,
        },
      ],
    });
    expect(table.stdout).toMatch(/orders-e1\s+127\.0\.0\.1:7101\s+v2\.0\.0\s+z1\s+100\s+yes/);

    register.signal('SIGINT');
    const done = await register.result;
    expectExit(done, 0);
    expect(register.jsonLines().at(-1)).toMatchObject({ event: 'deregistered', id: 'orders-e1' });
    expect(etcdctl(['get', 'default/services/orders/orders-e1', '--print-value-only']).trim()).toBe('');
    for (const result of [done, services, instances, table]) expectNoSecret(result, PASSWORD);
  });

  it('watch prints added, updated and removed instances, one JSON line each', async () => {
    const watch = CliRun.start([...flags(), 'watch', 'billing', '--json'], { env });
    await watch.waitForStdout(/"to":"empty"/);
    const holder = await startHeldRegistration(
      [
        ...flags(),
        'register',
        '--name',
        'billing',
        '--address',
        '127.0.0.1:7102',
        '--id',
        'billing-held',
        '--ttl',
        '3',
      ],
      env,
    );
    held.push(holder);
    await watch.waitForStdout(/"event":"added".*"billing-held"/);
    // A record written by another program, then changed in place.
    const other = createServiceInstance({ service: 'billing', id: 'billing-other', address: '127.0.0.1:7103' });
    etcdctl(['put', 'default/services/billing/billing-other', JSON.stringify(toSeedRecord(other))]);
    await watch.waitForStdout(/"event":"added".*"billing-other"/);
    etcdctl(['put', 'default/services/billing/billing-other', JSON.stringify({ ...toSeedRecord(other), weight: 5 })]);
    await watch.waitForStdout(/"event":"updated".*"billing-other"/);
    await holder.stop();
    await watch.waitForStdout(/"event":"removed".*"billing-held"/);
    watch.signal('SIGINT');
    const done = await watch.result;
    expectExit(done, 0);
    const events = watch
      .jsonLines()
      .filter((e) => e.event !== 'state')
      .map((e) => `${String(e.event)} ${(e.instance as { id: string }).id}`);
    expect(events).toEqual([
      'added billing-held',
      'added billing-other',
      'updated billing-other',
      'removed billing-held',
    ]);
    expect(watch.jsonLines().find((e) => e.event === 'updated')).toMatchObject({ instance: { weight: 5 } });
    etcdctl(['del', 'default/services/billing/billing-other']);
    expectNoSecret(done, PASSWORD);
  });

  it('deregister deletes the key of an instance nobody keeps alive, found with or without --name', async () => {
    for (const [service, id] of [
      ['stock', 'stock-crashed'],
      ['stock', 'stock-2'],
      ['pricing', 'pricing-crashed'],
    ] as const) {
      etcdctl([
        'put',
        `default/services/${service}/${id}`,
        JSON.stringify(toSeedRecord(createServiceInstance({ service, id, address: '127.0.0.1:7104' }))),
      ]);
    }
    const [byId, wrongName] = await Promise.all([
      run([...flags(), 'deregister', 'stock-crashed']),
      run([...flags(), 'deregister', 'pricing-crashed', '--name', 'stock']),
    ]);
    expectExit(byId, 0);
    expect(byId.stdout).toContain(
      "deregistered stock-crashed of service 'stock': removed etcd key default/services/stock/stock-crashed",
    );
    expectExit(wrongName, 1);
    expect(wrongName.stderr).toContain("no instance 'pricing-crashed' of service 'stock'");
    const [byName, again] = await Promise.all([
      run([...flags(), 'deregister', 'pricing-crashed', '--name', 'pricing', '--json']),
      run([...flags(), 'deregister', 'stock-crashed']),
    ]);
    expectExit(byName, 0);
    expect(JSON.parse(byName.stdout)).toMatchObject({
      backend: 'etcd',
      removed: [
        { id: 'pricing-crashed', service: 'pricing', where: 'etcd key default/services/pricing/pricing-crashed' },
      ],
    });
    expectExit(again, 1);
    const left = ['stock', 'pricing'].flatMap((service) =>
      etcdctl(['get', `default/services/${service}/`, '--prefix', '--keys-only'])
        .split('\n')
        .filter(Boolean),
    );
    expect(left).toEqual(['default/services/stock/stock-2']);
    etcdctl(['del', 'default/services/stock/stock-2']);
    for (const result of [byId, wrongName, byName, again]) expectNoSecret(result, PASSWORD);
  });

  it("ls shows a Rust service's weight-0 record as drained and its healthy: false one as not healthy", async () => {
    const crate = (id: string, port: number, healthy: boolean, weight: number) =>
      `{"service_type":"ledger","instance_id":"${id}","address":"10.0.0.9:${port}","namespace":null,"version":null,` +
      `"tags":{},"metadata":{"region":null,"zone":null,"environment":null,"custom":{}},"healthy":${healthy},"weight":${weight}}`;
    etcdctl(['put', 'flare/services/ledger/ledger-live', crate('ledger-live', 8001, true, 100)]);
    etcdctl(['put', 'flare/services/ledger/ledger-drained', crate('ledger-drained', 8002, true, 0)]);
    etcdctl(['put', 'flare/services/ledger/ledger-sick', crate('ledger-sick', 8003, false, 10)]);
    const [json, table] = await Promise.all([
      run([...flags(), 'ls', 'ledger', '--json']),
      run([...flags(), 'ls', 'ledger']),
    ]);
    expectExit(json, 0);
    const listed = JSON.parse(json.stdout) as { instances: Array<Record<string, unknown>> };
    expect(Object.fromEntries(listed.instances.map((i) => [i.id, [i.drained, i.healthy, i.served]]))).toEqual({
      'ledger-live': [false, true, true],
      'ledger-drained': [true, true, false],
      'ledger-sick': [false, false, false],
    });
    expectExit(table, 0);
    expect(table.stdout).toMatch(/ledger-drained\s+10\.0\.0\.9:8002\s+-\s+-\s+0\s+drained \(weight 0\)/);
    expect(table.stdout).toMatch(/ledger-sick\s+10\.0\.0\.9:8003\s+-\s+-\s+10\s+no/);
    expect(table.stdout).toMatch(/ledger-live\s+10\.0\.0\.9:8001\s+-\s+-\s+100\s+yes/);
    etcdctl(['del', '--prefix', 'flare/services/ledger/']);
  });

  // Last: stops etcd for good.
  it('when etcd stalls or is down: check exits 1, ls exits 1, and a running watch turns stale', async () => {
    // A stalled server (SIGSTOP) answers nothing: --timeout bounds the wait.
    const member = etcd.members[0];
    member.signal('SIGSTOP');
    try {
      const stalled = await run([...flags(), 'check', '--timeout', '1']);
      expectExit(stalled, 1);
      expect(stalled.stderr).toContain(`failed: etcd at ${etcd.endpoint} is unreachable: no answer within 1 s`);
      expectNoSecret(stalled, PASSWORD);
    } finally {
      member.signal('SIGCONT');
    }

    const holder = await startHeldRegistration(
      [...flags(), 'register', '--name', 'search', '--address', '127.0.0.1:7105', '--id', 'search-1', '--ttl', '3'],
      env,
    );
    held.push(holder);
    const watch = CliRun.start(['-c', configFile, '--user', 'root', 'watch', 'search'], { env, maxLifetimeMs: 40_000 });
    await watch.waitForStdout(/state pending -> ok \(1 instance\)/);
    await etcd.stop();
    await watch.waitForStdout(/state ok -> stale: registry unreachable: .* \(1 instance\)/, 20_000);
    const [down, list] = await Promise.all([run([...flags(), 'check', '--json']), run([...flags(), 'ls', 'search'])]);
    expectExit(down, 1);
    expect(JSON.parse(down.stdout)).toMatchObject({
      ok: false,
      backend: 'etcd',
      reachable: false,
      message: expect.stringMatching(/^etcd at .* is unreachable: .*(ECONNREFUSED|UNAVAILABLE)/),
    });
    expectExit(list, 1);
    expect(list.stderr).toMatch(/cannot list 'search': registry unreachable/);
    watch.signal('SIGINT');
    const done = await watch.result;
    expectExit(done, 0);
    for (const result of [down, list, done]) expectNoSecret(result, PASSWORD);
  }, 60_000);
});
