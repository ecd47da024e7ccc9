// Convergence of one backend: the time from a registry change (register or
// deregister of an instance, made through a second registry of the same
// backend, as another process would) to the client's `endpoints$` emitting
// it. For `dns` a change is a record appearing in or leaving dnsmasq's hosts
// dir; for `mesh` an endpoint added to or removed from the cluster's
// ClusterLoadAssignment on the xDS control plane (the test fixture, run in
// this process); for `kubernetes` an endpoint added to or removed from the
// service's EndpointSlice on the test API server (a child process). Run by
// bench/run.mjs; prints one JSON line.
import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Discovery, DiscoveryFactory, createServiceInstance } from '../dist/index.js';

const spec = JSON.parse(process.argv[2] ?? '{}');
const { backend, backendConfig = {}, changes = 60, timeoutMs = 15_000, pauseMs = [10, 60], hostsDir } = spec;
const SERVICE = 'conv';
const TIMING = { ttlMs: 30_000, heartbeatMs: 10_000 };
const warnings = [];
const logger = { log() {}, warn: (m) => warnings.push(m), error: (m) => warnings.push(m) };

/** Makes and undoes changes: a second registry of the same backend, DNS records, or xDS resources. */
async function publisher() {
  if (backend === 'mesh') return meshPublisher();
  if (backend === 'kubernetes') return kubernetesPublisher();
  if (backend === 'dns') {
    mkdirSync(hostsDir, { recursive: true });
    const write = (file, ip) => {
      const tmp = join(hostsDir, `.${file}.tmp`);
      writeFileSync(tmp, `${ip} ${SERVICE}.svc.test\n`);
      renameSync(tmp, join(hostsDir, file));
    };
    return {
      address: (i) => `127.0.1.${(i % 250) + 1}:50051`,
      add: async (i) => write(`i${i}`, `127.0.1.${(i % 250) + 1}`),
      remove: async (i) => rmSync(join(hostsDir, `i${i}`), { force: true }),
      base: async () => write('base', '127.0.0.2'),
      baseAddress: '127.0.0.2:50051',
      close: async () => undefined,
    };
  }
  const registry = await DiscoveryFactory.createBackend({ backend, backendConfig }, logger);
  const registrations = new Map();
  const address = (i) => `127.0.0.1:${20_000 + i}`;
  return {
    address,
    add: async (i) =>
      registrations.set(
        i,
        await registry.register(
          createServiceInstance({ service: SERVICE, id: `conv-${i}`, address: address(i) }),
          TIMING,
        ),
      ),
    remove: async (i) => {
      await registrations.get(i)?.deregister();
      registrations.delete(i);
    },
    base: async () =>
      registrations.set(
        -1,
        await registry.register(
          createServiceInstance({ service: SERVICE, id: 'conv-base', address: '127.0.0.1:19999' }),
          TIMING,
        ),
      ),
    baseAddress: '127.0.0.1:19999',
    close: async () => {
      for (const registration of registrations.values()) await registration.deregister().catch(() => undefined);
      await registry.close();
    },
  };
}

/** Endpoints of the `conv` cluster on an xDS control plane; the mesh client is pointed at it. */
async function meshPublisher() {
  const { loadXdsFixture } = await import('./support/xds-fixture.mjs');
  const xds = await loadXdsFixture();
  if (!xds.XdsControlPlane) throw new Error(xds.problem);
  const plane = await xds.XdsControlPlane.start();
  const live = new Map();
  const publish = () =>
    plane.set(
      xds.ENDPOINT_TYPE,
      xds.loadAssignment(SERVICE, [{ endpoints: [...live.values()].map((address) => ({ address })) }]),
    );
  const address = (i) => `127.0.0.1:${20_000 + i}`;
  plane.set(xds.CLUSTER_TYPE, xds.edsCluster(SERVICE));
  return {
    backendConfig: { xdsServer: plane.url },
    address,
    add: async (i) => {
      live.set(i, address(i));
      publish();
    },
    remove: async (i) => {
      live.delete(i);
      publish();
    },
    base: async () => {
      live.set(-1, '127.0.0.1:19999');
      publish();
    },
    baseAddress: '127.0.0.1:19999',
    close: () => plane.close(),
  };
}

/** One EndpointSlice of `conv` on the test Kubernetes API server, rewritten on each change as the controller does. */
async function kubernetesPublisher() {
  const { startKubernetesApi } = await import('./support/kubernetes-fixture.mjs');
  const api = await startKubernetesApi();
  const live = new Map();
  const publish = () => api.put('conv-a', SERVICE, [...live.values()], 50051);
  const ip = (i) => `127.0.1.${(i % 250) + 1}`;
  return {
    backendConfig: api.backendConfig,
    address: (i) => `${ip(i)}:50051`,
    add: async (i) => {
      live.set(i, ip(i));
      await publish();
    },
    remove: async (i) => {
      live.delete(i);
      await publish();
    },
    base: async () => {
      live.set(-1, '127.0.0.2');
      await publish();
    },
    baseAddress: '127.0.0.2:50051',
    close: () => api.close(),
  };
}

const hasAddress = (set, address) => set.endpoints.some((e) => e.address === address);
const pause = () =>
  new Promise((resolve) => setTimeout(resolve, pauseMs[0] + Math.random() * (pauseMs[1] - pauseMs[0])));

async function main() {
  let discovery;
  let pub;
  try {
    pub = await publisher();
    discovery = await Discovery.create(
      { backend, backendConfig: { ...backendConfig, ...pub.backendConfig }, loadBalance: 'round_robin' },
      { logger, firstSetTimeoutMs: timeoutMs },
    );
  } catch (error) {
    await pub?.close();
    process.stdout.write(`${JSON.stringify({ unavailable: `${error.constructor?.name}: ${error.message}` })}\n`);
    return;
  }
  // The service exists before the client first asks, as it would in production
  // (a DNS name that does not exist yet is only asked again at the TTL ceiling).
  await pub.base();
  const client = discovery.client(SERVICE);
  let pending;
  const subscription = client.endpoints$.subscribe((set) => {
    const now = performance.now();
    if (pending && pending.done(set)) {
      const settled = pending;
      pending = undefined;
      settled.resolve(now);
    }
  });
  /** Applies `change` and resolves with the ms until a set satisfying `done` was emitted (or null on timeout). */
  const measure = (change, done) =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        pending = undefined;
        resolve(null);
      }, timeoutMs);
      const t0 = performance.now();
      pending = {
        done,
        resolve: (t1) => {
          clearTimeout(timer);
          resolve(t1 - t0);
        },
      };
      change().catch((error) => {
        clearTimeout(timer);
        pending = undefined;
        reject(error);
      });
    });
  const register = [];
  const deregister = [];
  const timeouts = { register: 0, deregister: 0 };
  try {
    await client.ready({ timeoutMs });
    if (!hasAddress(client.snapshot(), pub.baseAddress))
      throw new Error(`the base instance ${pub.baseAddress} never showed up`);
    for (let i = 0; register.length + deregister.length + timeouts.register + timeouts.deregister < changes; i++) {
      const address = pub.address(i);
      const added = await measure(
        () => pub.add(i),
        (set) => hasAddress(set, address),
      );
      if (added === null) timeouts.register++;
      else register.push(added);
      await pause();
      const removed = await measure(
        () => pub.remove(i),
        (set) => !hasAddress(set, address),
      );
      if (removed === null) timeouts.deregister++;
      else deregister.push(removed);
      await pause();
    }
  } finally {
    subscription.unsubscribe();
    await pub.close();
    await discovery.close();
  }
  process.stdout.write(`${JSON.stringify({ register, deregister, timeouts, warnings: warnings.slice(0, 5) })}\n`);
}

await main();
process.exit(0);
