import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ConsulAgent, consulBinary, httpGet } from '../../support/peers/consul.js';
import type { PeerProcess } from '../../support/peers/peer-process.js';
import { agentPut } from '../consul/support/consul-kit.js';
import {
  assertCliBuilt,
  CliRun,
  expectExit,
  expectNoSecret,
  killAllCli,
  runCli,
  startHeldRegistration,
} from './cli-runner.js';

// The `switchyard` command against a real Consul agent with ACLs on
// (default deny): every command needs the token, and none may print it.
const TOKEN = 'c0nsul-acl-cli-secret-7f3e';
const WRONG_TOKEN = 'wr0ng-acl-token-91aa';
const binary = consulBinary();

describe.skipIf(!binary)('switchyard CLI: consul', () => {
  let agent: ConsulAgent;
  let base: string;
  const held: PeerProcess[] = [];
  const env = { SWITCHYARD_TOKEN: TOKEN };
  const flags = () => ['--backend', 'consul', '--url', agent.url];
  const run = (args: string[]) => runCli(args, { env });

  beforeAll(async () => {
    assertCliBuilt();
    agent = await ConsulAgent.start({ aclMasterToken: TOKEN }, binary);
    base = await mkdtemp(join(tmpdir(), 'switchyard-cli-consul-'));
  });
  afterEach(async () => {
    await killAllCli();
    await Promise.all(held.splice(0).map((p) => p.stop()));
  });
  afterAll(async () => {
    await killAllCli();
    await agent?.stop();
    if (base) await rm(base, { recursive: true, force: true });
  });

  it('check exits 0 with the token (from the environment or the config file) and 1 for a wrong one, printing neither', async () => {
    const file = join(base, 'consul.toml');
    await writeFile(
      file,
      `[discovery]\nbackend = "consul"\n\n[discovery.backend_config]\nurl = "${agent.url}"\ntoken = "${TOKEN}"\n`,
    );
    const [fromEnv, fromFile, refused] = await Promise.all([
      run([...flags(), 'check']),
      runCli(['-c', file, 'check', '--json']),
      runCli([...flags(), '--token', WRONG_TOKEN, 'check']),
    ]);
    expectExit(fromEnv, 0);
    expect(fromEnv.stdout).toMatch(
      new RegExp(`^ok: consul agent at ${agent.url} answered in \\d+ ms \\(leader 127\\.0\\.0\\.1:\\d+`),
    );
    expectExit(fromFile, 0);
    expect(JSON.parse(fromFile.stdout)).toMatchObject({
      ok: true,
      backend: 'consul',
      target: agent.url,
      reachable: true,
    });
    expectExit(refused, 1);
    expect(refused.stderr).toMatch(/failed: consul agent at .* answered but refused: .*HTTP 403/);
    for (const result of [fromEnv, fromFile, refused]) expectNoSecret(result, TOKEN, WRONG_TOKEN);
  });

  it('register keeps an instance that ls shows, and Ctrl-C deregisters it through the agent', async () => {
    const register = CliRun.start(
      [
        ...flags(),
        'register',
        '--name',
        'orders',
        '--address',
        '127.0.0.1:7201',
        '--id',
        'orders-c1',
        '--ttl',
        '3',
        '--version',
        'v3.1.0',
        '--zone',
        'z2',
        '--weight',
        '3',
        '--tag',
        'tier=gold',
      ],
      { env },
    );
    await register.waitForStdout(/^registered orders-c1 /m);
    const [services, instances, table] = await Promise.all([
      run([...flags(), 'ls', '--json']),
      run([...flags(), 'ls', 'orders', '--json']),
      run([...flags(), 'ls', 'orders']),
    ]);
    expectExit(services, 0);
    expect(JSON.parse(services.stdout).services).toContainEqual({ name: 'orders', instances: 1 });
    expectExit(instances, 0);
    expect(JSON.parse(instances.stdout)).toMatchObject({
      service: 'orders',
      backend: 'consul',
      state: 'ok',
      instances: [
        {
          id: 'orders-c1',
          address: '127.0.0.1:7201',
          version: 'v3.1.0',
          zone: 'z2',
          weight: 3,
          tags: { tier: 'gold' },
          healthy: true,
          served: true,
        },
      ],
      unserved: [],
    });
    expect(table.stdout).toMatch(/orders-c1\s+127\.0\.0\.1:7201\s+v3\.1\.0\s+z2\s+3\s+yes/);

    register.signal('SIGINT');
    const done = await register.result;
    expectExit(done, 0);
    expect(done.stdout).toMatch(/^deregistered orders-c1$/m);
    const { status } = await httpGet(`${agent.url}/v1/agent/service/orders-c1`, { 'x-consul-token': TOKEN });
    expect(status).toBe(404);
    for (const result of [done, services, instances, table]) expectNoSecret(result, TOKEN);
  });

  it('watch prints one JSON line per change until Ctrl-C', async () => {
    const watch = CliRun.start([...flags(), 'watch', 'billing', '--json'], { env });
    await watch.waitForStdout(/"to":"empty"/);
    const holder = await startHeldRegistration(
      [...flags(), 'register', '--name', 'billing', '--address', '127.0.0.1:7202', '--id', 'billing-c1', '--ttl', '3'],
      env,
    );
    held.push(holder);
    await watch.waitForStdout(/"event":"added"/);
    await holder.stop();
    await watch.waitForStdout(/"event":"removed"/);
    watch.signal('SIGINT');
    const done = await watch.result;
    expectExit(done, 0);
    const events = watch
      .jsonLines()
      .map((e) =>
        e.event === 'state'
          ? `state ${String(e.from)}->${String(e.to)}`
          : `${String(e.event)} ${(e.instance as { id: string }).id}`,
      );
    expect(events).toEqual([
      'state pending->empty',
      'added billing-c1',
      'state empty->ok',
      'removed billing-c1',
      'state ok->empty',
    ]);
    expectNoSecret(done, TOKEN);
  });

  it('ls shows an instance failing its check as not healthy, and deregister removes it by id', async () => {
    const registered = await agentPut(
      agent.url,
      '/agent/service/register',
      {
        ID: 'stock-sick',
        Name: 'stock',
        Address: '127.0.0.1',
        Port: 7203,
        Meta: { namespace: 'default' },
        Check: { CheckID: 'service:stock-sick', TTL: '600s', Status: 'critical' },
      },
      TOKEN,
    );
    expect(registered.status).toBe(200);
    const [listed, wrongName, unknown] = await Promise.all([
      run([...flags(), 'ls', 'stock', '--json']),
      run([...flags(), 'deregister', 'stock-sick', '--name', 'orders']),
      run([...flags(), 'deregister', 'no-such-instance']),
    ]);
    expectExit(listed, 0);
    expect(JSON.parse(listed.stdout)).toMatchObject({
      state: 'empty',
      instances: [],
      unserved: [
        {
          id: 'stock-sick',
          address: '127.0.0.1:7203',
          healthy: false,
          served: false,
          reason: expect.stringMatching(/^critical/),
        },
      ],
    });
    expectExit(wrongName, 1);
    expect(wrongName.stderr).toContain(
      "instance 'stock-sick' belongs to service 'stock', not 'orders': nothing removed",
    );
    expectExit(unknown, 1);
    expect(unknown.stderr).toContain("no instance 'no-such-instance'");

    const removed = await run([...flags(), 'deregister', 'stock-sick', '--json']);
    expectExit(removed, 0);
    expect(JSON.parse(removed.stdout)).toMatchObject({
      backend: 'consul',
      removed: [{ id: 'stock-sick', service: 'stock' }],
    });
    expect((await httpGet(`${agent.url}/v1/agent/service/stock-sick`, { 'x-consul-token': TOKEN })).status).toBe(404);
    for (const result of [listed, wrongName, unknown, removed]) expectNoSecret(result, TOKEN);
  });

  // Last: stops the agent for good.
  it('when the agent is down: check exits 1, ls exits 1, and a running watch turns stale', async () => {
    const holder = await startHeldRegistration(
      [...flags(), 'register', '--name', 'search', '--address', '127.0.0.1:7204', '--id', 'search-c1', '--ttl', '3'],
      env,
    );
    held.push(holder);
    const watch = CliRun.start([...flags(), 'watch', 'search'], { env, maxLifetimeMs: 30_000 });
    await watch.waitForStdout(/state pending -> ok \(1 instance\)/);
    await agent.stop();
    await watch.waitForStdout(/state ok -> stale: registry unreachable: consul agent at .* \(1 instance\)/);
    const [down, list] = await Promise.all([run([...flags(), 'check']), run([...flags(), 'ls', 'search', '--json'])]);
    expectExit(down, 1);
    expect(down.stderr).toMatch(/^failed: consul agent at .* is unreachable: ECONNREFUSED/);
    expectExit(list, 1);
    expect(list.stderr).toMatch(/cannot list 'search': registry unreachable/);
    watch.signal('SIGINT');
    const done = await watch.result;
    expectExit(done, 0);
    for (const result of [down, list, done]) expectNoSecret(result, TOKEN);
  }, 60_000);
});
