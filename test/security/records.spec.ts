import * as grpc from '@grpc/grpc-js';
import { execFileSync } from 'node:child_process';
import { closeSync, constants, openSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Etcd3 } from 'etcd3';
import type { Subscription } from 'rxjs';
import { afterAll, beforeAll, describe, expect } from 'vitest';
import {
  createServiceInstance,
  Discovery,
  EndpointSet,
  RegistrationError,
  resolveDiscoveryConfig,
  type ServiceInstance,
} from '../../lib/index.js';
import { toSeedRecord } from '../../lib/core/service-instance.js';
import { createRegistry } from '../../lib/registry/create-registry.js';
import type { ConsulRegistry } from '../../lib/registry/consul/consul.registry.js';
import type { EtcdRegistry } from '../../lib/registry/etcd/etcd.registry.js';
import { LocalRegistry } from '../../lib/registry/local/local.registry.js';
import type { Registry } from '../../lib/registry/registry.interface.js';
import { reliabilityTest, ResultsFile, type ResultSpec } from '../faults/support/reliability-results.js';
import { registerDirect } from '../integration/consul/support/consul-kit.js';
import { greeterPackage, type GreeterStub, type HelloReply } from '../support/grpc/greeter.js';
import { ConsulAgent, consulBinary } from '../support/peers/consul.js';
import { EtcdPeer } from '../support/peers/etcd.js';
import { waitFor } from '../support/wait-for.js';
import { SecretCapture } from './support/secret-capture.js';

const results = new ResultsFile('security-records');
const spec = (scenario: string, title: string, backend: string, asserted: string): ResultSpec => ({
  suite: 'security',
  scenario,
  title,
  backend,
  asserted,
});
const TIMING = { ttlMs: 30_000, heartbeatMs: 10_000 };

/** Addresses a record may carry that are not host:port (each must be skipped, not served). */
const NOT_HOST_PORT = [
  'unix:/run/evil.sock',
  'http://10.0.0.1:80',
  'https://evil.example',
  '10.0.0.1',
  '10.0.0.1:0',
  '10.0.0.1:70000',
  '[::1]',
  'user@10.0.0.1:80',
  '10.0.0.1:80/path',
  '',
];
/** Enough padding to push a record past 64 KiB. */
const PADDING = 'x'.repeat(70 * 1024);

/** Records every emission; `latest()` is the last set. */
function record(
  registry: Registry,
  service: string,
  into: Subscription[],
): { sets: EndpointSet[]; latest(): EndpointSet | undefined; ids(): string[] } {
  const sets: EndpointSet[] = [];
  into.push(registry.watch({ service }).subscribe((set) => sets.push(set)));
  return { sets, latest: () => sets.at(-1), ids: () => (sets.at(-1)?.instances ?? []).map((i) => i.id).sort() };
}

function seed(id: string, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return { ...toSeedRecord(createServiceInstance({ service: 'orders', id, address: '127.0.0.1:7001' })), ...overrides };
}

describe('security: records in the local backend', () => {
  let dir: string;
  const capture = new SecretCapture();
  const registries: LocalRegistry[] = [];
  const subscriptions: Subscription[] = [];
  const folder = () => join(dir, 'default', 'orders');

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sy-sec-local-'));
    await mkdir(join(dir, 'default', 'orders'), { recursive: true });
  });
  afterAll(async () => {
    subscriptions.forEach((s) => s.unsubscribe());
    await Promise.all(registries.map((r) => r.close()));
    await rm(dir, { recursive: true, force: true });
  });
  const open = () => {
    const registry = new LocalRegistry({ dir, logger: capture, rescanMs: 200 });
    registries.push(registry);
    return registry;
  };

  reliabilityTest(
    results,
    spec(
      'records-not-host-port',
      'records: address not host:port',
      'local',
      'instance files whose address is a URL, a unix: path, has no or a bad port, or carries user@ are skipped with a warning naming the file; the good instance stays',
    ),
    async (details) => {
      const registry = open();
      await registry.register(
        createServiceInstance({ service: 'orders', id: 'good', address: '127.0.0.1:7001' }),
        TIMING,
      );
      for (const [i, address] of NOT_HOST_PORT.entries())
        await writeFile(join(folder(), `bad-${i}.json`), JSON.stringify(seed(`bad-${i}`, { address })));
      const watch = record(open(), 'orders', subscriptions);
      await waitFor(() => watch.ids().join() === 'good', { what: 'only the good instance served' });
      await waitFor(
        () =>
          NOT_HOST_PORT.every((_, i) => capture.texts.some((t) => t.startsWith('warn') && t.includes(`bad-${i}.json`))),
        { what: 'a warning per bad file' },
      );
      details.skipped = NOT_HOST_PORT.length;
    },
  );

  reliabilityTest(
    results,
    spec(
      'records-oversized',
      'records: oversized record',
      'local',
      'an instance file larger than 64 KiB is not served (skipped with a warning), like etcd values',
    ),
    async () => {
      const watch = record(open(), 'orders', subscriptions);
      await waitFor(() => watch.ids().includes('good'), { what: 'the good instance' });
      await writeFile(join(folder(), 'huge.json'), JSON.stringify(seed('huge', { tags: { padding: PADDING } })));
      await waitFor(() => capture.texts.some((t) => t.startsWith('warn') && t.includes('huge.json')), {
        timeoutMs: 3_000,
        what: 'a warning about the oversized file',
      });
      expect(watch.ids()).not.toContain('huge');
    },
  );

  reliabilityTest(
    results,
    spec(
      'records-fifo',
      'records: a FIFO named like an instance file',
      'local',
      'a named pipe (or other non-regular file) in a service folder is skipped; the watch keeps following the other files',
    ),
    async () => {
      const watch = record(open(), 'orders', subscriptions);
      await waitFor(() => watch.ids().includes('good'), { what: 'the good instance' });
      const fifo = join(folder(), 'pipe.json');
      execFileSync('mkfifo', [fifo]);
      try {
        const late = open();
        await late.register(
          createServiceInstance({ service: 'orders', id: 'late', address: '127.0.0.1:7002' }),
          TIMING,
        );
        await waitFor(() => watch.ids().includes('late'), {
          timeoutMs: 3_000,
          what: 'a registration made after the FIFO appeared',
        });
      } finally {
        // Release a reader blocked in open(2) on the pipe, so no thread of the pool stays stuck.
        try {
          closeSync(openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK));
        } catch {
          // no reader was waiting
        }
        await rm(fifo, { force: true });
      }
    },
  );
});

describe('security: records in etcd', () => {
  let etcd: EtcdPeer;
  let raw: Etcd3;
  const capture = new SecretCapture();
  const registries: Registry[] = [];
  const subscriptions: Subscription[] = [];

  beforeAll(async () => {
    etcd = await EtcdPeer.start();
    raw = new Etcd3({ hosts: etcd.endpoint });
  });
  afterAll(async () => {
    subscriptions.forEach((s) => s.unsubscribe());
    await Promise.all(registries.map((r) => r.close()));
    raw?.close();
    await etcd?.stop();
  });
  const open = async () => {
    const registry = (await createRegistry(
      resolveDiscoveryConfig({
        backend: 'etcd',
        backendConfig: { endpoints: etcd.endpoints },
        registration: { ttl: 2 },
      }),
      capture,
    )) as EtcdRegistry;
    registries.push(registry);
    return registry;
  };

  reliabilityTest(
    results,
    spec(
      'records-oversized',
      'records: oversized record',
      'etcd',
      'a value over 64 KiB under a service prefix is skipped with a warning naming the key and size; the good instance stays',
    ),
    async () => {
      const watch = record(await open(), 'orders', subscriptions);
      await raw.put('default/services/orders/good').value(JSON.stringify(seed('good')));
      await raw.put('default/services/orders/huge').value(JSON.stringify(seed('huge', { tags: { padding: PADDING } })));
      await waitFor(() => watch.ids().join() === 'good', { what: 'only the good instance' });
      await waitFor(
        () =>
          capture.texts.some((t) =>
            /Skipping etcd key default\/services\/orders\/huge .*exceeds the 65536-byte limit/.test(t),
          ),
        { what: 'the size warning' },
      );
    },
  );

  reliabilityTest(
    results,
    spec(
      'records-oversized-register',
      'records: registering an oversized instance',
      'etcd',
      'register() refuses an instance whose record would exceed the 64 KiB that watchers accept, instead of writing a key nobody can discover',
    ),
    async () => {
      const registry = await open();
      const huge = createServiceInstance({
        service: 'orders',
        id: 'huge-own',
        address: '127.0.0.1:7003',
        tags: { padding: PADDING },
      });
      await expect(registry.register(huge, { ttlMs: 2_000, heartbeatMs: 600 })).rejects.toThrow(RegistrationError);
    },
  );

  reliabilityTest(
    results,
    spec(
      'records-not-host-port',
      'records: address not host:port',
      'etcd',
      'seed and grpc-naming values whose address is a URL, unix: path, lacks a port or carries user@ are skipped with a warning; the good instance stays',
    ),
    async () => {
      await raw.put('default/services/orders/good').value(JSON.stringify(seed('good')));
      for (const [i, address] of NOT_HOST_PORT.entries())
        await raw.put(`default/services/orders/bad-${i}`).value(JSON.stringify(seed(`bad-${i}`, { address })));
      const watch = record(await open(), 'orders', subscriptions);
      await waitFor(() => watch.ids().join() === 'good', { what: 'only the good instance' });
      for (const i of NOT_HOST_PORT.keys())
        expect(capture.texts.some((t) => t.includes(`default/services/orders/bad-${i} `))).toBe(true);
    },
  );
});

const binary = consulBinary();

describe.skipIf(!binary)('security: records in Consul', () => {
  let agent: ConsulAgent;
  const capture = new SecretCapture();
  const registries: Registry[] = [];
  const subscriptions: Subscription[] = [];

  beforeAll(async () => {
    agent = await ConsulAgent.start({}, binary);
  });
  afterAll(async () => {
    subscriptions.forEach((s) => s.unsubscribe());
    await Promise.all(registries.map((r) => r.close()));
    await agent?.stop();
  });
  const open = async () => {
    const registry = (await createRegistry(
      resolveDiscoveryConfig({
        backend: 'consul',
        backendConfig: { url: agent.url, wait: 1 },
        registration: { ttl: 2 },
      }),
      capture,
    )) as ConsulRegistry;
    registries.push(registry);
    return registry;
  };

  reliabilityTest(
    results,
    spec(
      'records-oversized-register',
      'records: registering an oversized instance',
      'consul',
      "register() refuses an instance whose tag would exceed Consul's 512-character Meta value, naming the tag",
    ),
    async () => {
      const registry = await open();
      const huge = createServiceInstance({
        service: 'orders',
        id: 'huge-own',
        address: '127.0.0.1:7003',
        tags: { padding: 'x'.repeat(600) },
      });
      await expect(registry.register(huge, { ttlMs: 2_000, heartbeatMs: 600 })).rejects.toThrow(
        /tags\.padding is 600 characters long/,
      );
    },
  );

  reliabilityTest(
    results,
    spec(
      'records-not-host-port',
      'records: address not host:port',
      'consul',
      'catalog entries whose address is a URL or a unix: path, or whose port is 0, are skipped with a warning; the good instance stays',
    ),
    async () => {
      await registerDirect(agent.url, { ID: 'good', Name: 'orders', Address: '127.0.0.1', Port: 7001 });
      const bad = [
        { ID: 'bad-unix', Address: 'unix:/run/evil.sock', Port: 80 },
        { ID: 'bad-url', Address: 'http://10.0.0.1', Port: 80 },
        { ID: 'bad-at', Address: 'user@10.0.0.1', Port: 80 },
        { ID: 'bad-port', Address: '10.0.0.1', Port: 0 },
      ];
      for (const b of bad) await registerDirect(agent.url, { ...b, Name: 'orders' });
      const watch = record(await open(), 'orders', subscriptions);
      await waitFor(() => watch.latest()?.state === 'ok', { what: 'a first answer' });
      expect(watch.ids()).toEqual(['good']);
      await waitFor(() => bad.every((b) => capture.texts.some((t) => t.startsWith('warn') && t.includes(b.ID))), {
        what: 'a warning per bad entry',
      });
    },
  );
});

describe('security: an address cannot redirect calls to another transport', () => {
  let dir: string;
  let previousCwd: string;
  let server: grpc.Server;
  let served = 0;
  const registries: LocalRegistry[] = [];
  const discoveries: Discovery[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sy-sec-redirect-'));
    // grpc-js resolves `unix:<relative path>` against the working directory: put a socket named like a port there.
    previousCwd = process.cwd();
    process.chdir(dir);
    server = new grpc.Server();
    server.addService(greeterPackage.greeter.Greeter.service, {
      SayHello: (_call: unknown, callback: grpc.sendUnaryData<HelloReply>) => {
        served++;
        callback(null, { message: 'answered by the unix socket', instance: 'intruder' });
      },
    });
    await new Promise<void>((resolve, reject) =>
      server.bindAsync(`unix:${join(dir, '50051')}`, grpc.ServerCredentials.createInsecure(), (e) =>
        e ? reject(e) : resolve(),
      ),
    );
  });
  afterAll(async () => {
    await Promise.all(discoveries.map((d) => d.close()));
    await Promise.all(registries.map((r) => r.close()));
    server?.forceShutdown();
    process.chdir(previousCwd);
    await rm(dir, { recursive: true, force: true });
  });

  /** A client of service `orders` whose only record says `unix:50051` (a valid host "unix", port 50051). */
  async function clientOfUnixRecord(): Promise<Discovery> {
    const registry = new LocalRegistry({
      dir: join(dir, `registry-${registries.length}`),
      logger: new SecretCapture(),
    });
    registries.push(registry);
    const instance: ServiceInstance = createServiceInstance({ service: 'orders', id: 'tricky', address: 'unix:50051' });
    await registry.register(instance, TIMING);
    const discovery = (
      await Discovery.create(
        { backend: 'local', loadBalance: 'round_robin' },
        { registry, retry: false, firstSetTimeoutMs: 2_000 },
      )
    ).serveGrpcTargets(`redirect${discoveries.length}`);
    discoveries.push(discovery);
    return discovery;
  }

  function hello(stub: GreeterStub): Promise<HelloReply> {
    return new Promise((resolve, reject) =>
      stub.SayHello({ name: 'x' }, new grpc.Metadata(), { deadline: Date.now() + 1_500 }, (e, r) =>
        e ? reject(e) : resolve(r!),
      ),
    );
  }

  reliabilityTest(
    results,
    spec(
      'records-scheme-redirect-balanced',
      'records: scheme in an address (balanced channel)',
      'any',
      'a record "unix:50051" reaches host "unix" port 50051 over TCP through the discovery:/// channel, never a unix socket',
    ),
    async () => {
      const discovery = await clientOfUnixRecord();
      const client = discovery.client({ name: 'orders' });
      await client.ready();
      const stub = new greeterPackage.greeter.Greeter(
        `discovery://redirect${discoveries.length - 1}/orders`,
        grpc.credentials.createInsecure(),
      ) as unknown as GreeterStub;
      try {
        const before = served;
        await expect(hello(stub)).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
        expect(served).toBe(before);
      } finally {
        stub.close();
      }
    },
  );

  reliabilityTest(
    results,
    spec(
      'records-scheme-redirect-call',
      'records: scheme in an address (call / getChannel)',
      'any',
      'a record "unix:50051" must not make ServiceClient.call() or getChannel() talk to a local unix socket',
    ),
    async () => {
      const discovery = await clientOfUnixRecord();
      const client = discovery.client({ name: 'orders' });
      await client.ready();
      const before = served;
      const answer = await client
        .call(
          ({ channel, deadline }) => {
            const stub = new greeterPackage.greeter.Greeter('unused', grpc.credentials.createInsecure(), {
              channelOverride: channel,
            }) as unknown as GreeterStub;
            return new Promise<HelloReply>((resolve, reject) =>
              stub.SayHello({ name: 'x' }, new grpc.Metadata(), { deadline: deadline ?? Date.now() + 1_500 }, (e, r) =>
                e ? reject(e) : resolve(r!),
              ),
            );
          },
          { timeoutMs: 1_500 },
        )
        .catch((error: Error) => error);
      expect(served).toBe(before);
      expect(answer).toBeInstanceOf(Error);
    },
  );
});
