import { existsSync, writeFileSync, mkdirSync } from 'node:fs';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createServiceInstance, toSeedRecord } from '../../../lib/core/service-instance.js';
import { RegistryDirectory } from '../../../lib/registry/local/registry-directory.js';
import type { PeerProcess } from '../../support/peers/peer-process.js';
import { waitFor } from '../../support/wait-for.js';
import { assertCliBuilt, CliRun, expectExit, killAllCli, runCli, startHeldRegistration } from './cli-runner.js';

// The `switchyard` command on the local backend (a folder, no server), and
// the command-line errors every backend shares.
describe('switchyard CLI: command line and the local backend', () => {
  let base: string;
  let dir: string;
  const held: PeerProcess[] = [];
  const local = () => ['--dir', dir];

  beforeAll(async () => {
    assertCliBuilt();
    base = await mkdtemp(join(tmpdir(), 'switchyard-cli-'));
  });
  afterEach(async () => {
    await killAllCli();
    await Promise.all(held.splice(0).map((p) => p.stop()));
  });
  afterAll(async () => {
    await rm(base, { recursive: true, force: true });
  });

  let n = 0;
  const freshDir = () => {
    dir = join(base, `reg-${++n}`);
    return dir;
  };

  describe('bad command lines', () => {
    it('prints the usage on stderr and exits 2 for an unknown command', async () => {
      const result = await runCli(['lsit']);
      expectExit(result, 2);
      expect(result.stderr).toContain("unknown command 'lsit'");
      expect(result.stderr).toContain('Usage: switchyard');
      expect(result.stdout).toBe('');
    });

    it('prints the usage and exits 2 when the config file does not exist', async () => {
      const missing = join(base, 'nowhere', 'discovery.toml');
      const result = await runCli(['-c', missing, 'ls']);
      expectExit(result, 2);
      expect(result.stderr).toContain(`config file not found: ${missing}`);
      expect(result.stderr).toContain('Usage: switchyard');
    });

    it('exits 2 naming the problem for no command, a missing argument, an unknown option or a bad value', async () => {
      const [none, noService, unknownOption, badTtl, misplaced] = await Promise.all([
        runCli([]),
        runCli(['watch']),
        runCli(['ls', '--colour']),
        runCli([...local(), 'register', '--name', 'a', '--address', '127.0.0.1:1', '--ttl', 'soon']),
        runCli(['ls', '--address', '127.0.0.1:1']),
      ]);
      for (const result of [none, noService, unknownOption, badTtl, misplaced]) expectExit(result, 2);
      expect(none.stderr).toContain('no command given');
      expect(noService.stderr).toContain("'watch' needs <service>");
      expect(unknownOption.stderr).toContain("Unknown option '--colour'");
      expect(badTtl.stderr).toContain('--ttl "soon": expected a number greater than 0');
      expect(misplaced.stderr).toContain("--address applies to 'register', not 'ls'");
    });

    it('exits 2 naming the field for an invalid configuration file or address', async () => {
      const file = join(base, 'bad.toml');
      await writeFile(file, '[discovery]\nbackend = "local"\n\n[discovery.backend_config]\ndirectory = "/tmp/x"\n');
      const [badFile, badAddress] = await Promise.all([
        runCli(['-c', file, 'ls']),
        runCli(['--dir', join(base, 'unused'), 'register', '--name', 'orders', '--address', 'localhost']),
      ]);
      expectExit(badFile, 2);
      expect(badFile.stderr).toContain('discovery.backend_config.directory: unknown key');
      expectExit(badAddress, 2);
      expect(badAddress.stderr).toContain('Invalid address "localhost": expected "host:port"');
    });

    it('help prints the usage on stdout and exits 0', async () => {
      const result = await runCli(['help']);
      expectExit(result, 0);
      expect(result.stdout).toContain('Usage: switchyard');
      expect(result.stdout).toContain('deregister <instance-id>');
    });
  });

  it('register holds an instance that ls shows until Ctrl-C deregisters it and exits 0', async () => {
    freshDir();
    const register = CliRun.start([
      ...local(),
      'register',
      '--name',
      'orders',
      '--address',
      '127.0.0.1:7001',
      '--id',
      'orders-a',
      '--ttl',
      '3',
      '--version',
      'v1.2.0',
      '--zone',
      'eu-1a',
      '--weight',
      '2',
      '--tag',
      'tier=gold',
    ]);
    await register.waitForStdout(/^registered orders-a /m);
    const file = new RegistryDirectory(dir).instanceFile('default', 'orders', 'orders-a');
    expect(existsSync(file)).toBe(true);

    const [table, json, services] = await Promise.all([
      runCli([...local(), 'ls', 'orders']),
      runCli([...local(), 'ls', 'orders', '--json']),
      runCli([...local(), 'ls', '--json']),
    ]);
    expectExit(table, 0);
    expect(table.stdout).toContain("orders (namespace 'default', local at");
    expect(table.stdout).toMatch(/ok, 1 instance/);
    expect(table.stdout).toMatch(/ID\s+ADDRESS\s+VERSION\s+ZONE\s+WEIGHT\s+HEALTHY/);
    expect(table.stdout).toMatch(/orders-a\s+127\.0\.0\.1:7001\s+v1\.2\.0\s+eu-1a\s+2\s+yes/);
    expectExit(json, 0);
    const listed = JSON.parse(json.stdout);
    expect(listed).toMatchObject({
      service: 'orders',
      namespace: 'default',
      backend: 'local',
      state: 'ok',
      unserved: [],
    });
    expect(listed.instances).toEqual([
      expect.objectContaining({
        id: 'orders-a',
        address: '127.0.0.1:7001',
        version: 'v1.2.0',
        zone: 'eu-1a',
        weight: 2,
        healthy: true,
        tags: { tier: 'gold' },
        served: true,
      }),
    ]);
    expectExit(services, 0);
    expect(JSON.parse(services.stdout)).toMatchObject({
      backend: 'local',
      namespace: 'default',
      services: [{ name: 'orders', instances: 1 }],
    });

    register.signal('SIGINT');
    const done = await register.result;
    expectExit(done, 0);
    expect(done.stdout).toMatch(/^deregistered orders-a$/m);
    expect(existsSync(file)).toBe(false);
  });

  it('watch prints one JSON line per change until Ctrl-C, then exits 0', async () => {
    freshDir();
    const watch = CliRun.start([...local(), 'watch', 'orders', '--json']);
    await watch.waitForStdout(/"to":"empty"/);
    const holder = await startHeldRegistration([
      ...local(),
      'register',
      '--name',
      'orders',
      '--address',
      '127.0.0.1:7002',
      '--id',
      'orders-w',
      '--ttl',
      '3',
    ]);
    held.push(holder);
    await watch.waitForStdout(/"event":"added"/);
    await holder.stop(); // SIGTERM: the command deregisters before it exits
    await watch.waitForStdout(/"event":"removed"/);
    watch.signal('SIGINT');
    const done = await watch.result;
    expectExit(done, 0);
    expect(done.stderr).toContain("stopped watching 'orders'");
    const events = watch
      .jsonLines()
      .map((e) => [
        e.event,
        e.event === 'state' ? `${String(e.from)}->${String(e.to)}` : (e.instance as { id: string }).id,
      ]);
    expect(events).toEqual([
      ['state', 'pending->empty'],
      ['added', 'orders-w'],
      ['state', 'empty->ok'],
      ['removed', 'orders-w'],
      ['state', 'ok->empty'],
    ]);
  });

  it('deregister deletes an instance file by id (with or without --name) and exits 1 for an unknown id', async () => {
    freshDir();
    const directory = new RegistryDirectory(dir);
    // Files as a crashed process leaves them: nobody heartbeats them any more.
    for (const [service, id] of [
      ['orders', 'crashed-1'],
      ['billing', 'crashed-2'],
    ] as const) {
      const file = directory.instanceFile('default', service, id);
      mkdirSync(join(file, '..'), { recursive: true });
      writeFileSync(
        file,
        JSON.stringify(toSeedRecord(createServiceInstance({ service, id, address: '127.0.0.1:7003' }))),
      );
    }
    const byId = await runCli([...local(), 'deregister', 'crashed-1']);
    expectExit(byId, 0);
    expect(byId.stdout).toContain("deregistered crashed-1 of service 'orders': removed file");
    expect(existsSync(directory.instanceFile('default', 'orders', 'crashed-1'))).toBe(false);

    const wrongService = await runCli([...local(), 'deregister', 'crashed-2', '--name', 'orders']);
    expectExit(wrongService, 1);
    expect(existsSync(directory.instanceFile('default', 'billing', 'crashed-2'))).toBe(true);

    const byName = await runCli([...local(), 'deregister', 'crashed-2', '--name', 'billing', '--json']);
    expectExit(byName, 0);
    expect(JSON.parse(byName.stdout).removed).toEqual([
      expect.objectContaining({ id: 'crashed-2', service: 'billing' }),
    ]);
    expect(await readdir(directory.serviceDir('default', 'billing'))).toEqual([]);

    const unknown = await runCli([...local(), 'deregister', 'crashed-1']);
    expectExit(unknown, 1);
    expect(unknown.stderr).toContain("no instance 'crashed-1' in namespace 'default'");
  });

  it('check exits 0 for a usable folder and 1 when the folder is a file', async () => {
    freshDir();
    const blocker = join(base, 'a-file');
    await writeFile(blocker, 'not a folder');
    const [ok, okJson, broken] = await Promise.all([
      runCli([...local(), 'check']),
      runCli([...local(), 'check', '--json']),
      runCli(['--dir', blocker, 'check', '--json']),
    ]);
    expectExit(ok, 0);
    expect(ok.stdout).toMatch(/^ok: local registry folder .* (does not exist yet|is readable and writable)/);
    expect(JSON.parse(okJson.stdout)).toMatchObject({ ok: true, backend: 'local' });
    expectExit(broken, 1);
    expect(JSON.parse(broken.stdout)).toMatchObject({
      ok: false,
      backend: 'local',
      message: `local registry folder ${blocker} is not a folder`,
    });
  });

  it('reads the module configuration file, with flags winning over it', async () => {
    freshDir();
    const file = join(base, `discovery-${n}.toml`);
    await writeFile(
      file,
      `[discovery]\nbackend = "local"\n\n[discovery.backend_config]\ndir = ${JSON.stringify(dir)}\nservice_type = "orders"\n\n[discovery.namespace]\ndefault = "staging"\n\n[discovery.registration]\nttl = 3\n`,
    );
    const register = CliRun.start(['-c', file, 'register', '--address', '127.0.0.1:7004', '--id', 'from-file']);
    await register.waitForStdout(/^registered from-file /m);
    // service_type names the service, the namespace comes from the file.
    expect(existsSync(new RegistryDirectory(dir).instanceFile('staging', 'orders', 'from-file'))).toBe(true);
    const [inFile, overridden] = await Promise.all([
      runCli(['-c', file, 'ls', 'orders', '--json']),
      runCli(['-c', file, '-n', 'production', 'ls', 'orders', '--json']),
    ]);
    expect(JSON.parse(inFile.stdout)).toMatchObject({
      namespace: 'staging',
      state: 'ok',
      instances: [{ id: 'from-file' }],
    });
    expect(JSON.parse(overridden.stdout)).toMatchObject({ namespace: 'production', state: 'empty', instances: [] });
    register.signal('SIGTERM');
    expectExit(await register.result, 0);
    await waitFor(() => !existsSync(new RegistryDirectory(dir).instanceFile('staging', 'orders', 'from-file')), {
      what: 'instance file removed',
    });
  });
});
