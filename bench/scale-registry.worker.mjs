// The registry side of the scale scenario, in its own process: fills the
// registry with `services` × `instances` records, then churns it (each
// replacement removes a service's oldest instance and adds a new one, the
// services taken in turn) at a given rate, logging the time each change was
// sent and the time the registry acknowledged it. Driven over IPC by bench/parts/scale.mjs:
//   setup  { backend, target, services, instances }  -> populated
//   churn  { seconds, perSecond }                    -> churned + the change log
//   truth                                            -> the instance ids of every service now
//   stop
// etcd: records in the Rust crate's layout (switchyard's default), written
// with etcd3 in transactions. consul: catalog registrations with a passing
// check (as switchyard's instances have), on nodes other than the agent's,
// written in transactions. mesh: the project's xDS test control plane runs here,
// one EDS cluster per service, each change pushing only the cluster that
// changed (as Istio's incremental EDS does).
import { Agent, request } from 'node:http';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { startCpuProfile } from './support/cpu-profile.mjs';
import { ROOT } from './support/processes.mjs';

const now = () => performance.timeOrigin + performance.now();
const send = (message) => process.send(message);
const dist = (path) => import(pathToFileURL(join(ROOT, 'dist', path)).href);

let kind;

/**
 * Instance `i` of service `s`: a unique id and address, and the id and
 * endpoint key a client sees (the mesh backend names an endpoint by its address).
 */
function instanceOf(service, s, i) {
  const id = `${service}-i${i}`;
  const host = `10.${(s >> 8) & 255}.${s & 255}.${i % 250}`;
  const port = 20_000 + Math.floor(i / 250);
  const address = `${host}:${port}`;
  const seenAs = kind === 'mesh' ? `xds-${address}` : id;
  return { id, host, port, address, seenAs, key: `${seenAs}@${address}` };
}

/** Runs `task(i)` for i in [0, count) with at most `width` at a time. */
async function inParallel(count, width, task) {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(width, count) }, async () => {
      while (next < count) await task(next++);
    }),
  );
}

let backend;
/** service -> { index, live: instance[] (oldest first), next } */
const state = new Map();

async function etcdBackend({ target }) {
  const { Etcd3 } = createRequire(import.meta.url)('etcd3');
  const { toCrateRecord } = await dist('registry/etcd/etcd-seed-layouts.js');
  const { createServiceInstance } = await dist('core/service-instance.js');
  const client = new Etcd3({ hosts: target });
  const keyOf = (service, instance) => `default/services/${service}/${instance.id}`;
  const value = (service, instance) =>
    JSON.stringify(
      toCrateRecord(
        createServiceInstance({ service, id: instance.id, host: instance.host, port: instance.port, weight: 100 }),
      ),
    );
  return {
    async fill(service, instances) {
      for (let at = 0; at < instances.length; at += 128) {
        const batch = instances.slice(at, at + 128);
        await client
          .if(keyOf(service, batch[0]), 'Version', '>', -1)
          .then(...batch.map((i) => client.put(keyOf(service, i)).value(value(service, i))))
          .else(...batch.map((i) => client.put(keyOf(service, i)).value(value(service, i))))
          .commit();
      }
    },
    async replace(service, old, fresh) {
      const del = client.delete().key(keyOf(service, old));
      const put = client.put(keyOf(service, fresh)).value(value(service, fresh));
      await client.if(keyOf(service, old), 'Version', '>', 0).then(del, put).else(put).commit();
    },
    close: () => client.close(),
  };
}

async function consulBackend({ target }) {
  const agent = new Agent({ keepAlive: true, maxSockets: 16 });
  const call = (method, path, body) =>
    new Promise((resolve, reject) => {
      const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
      const req = request(`${target}/v1${path}`, {
        method,
        agent,
        headers: payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {},
      });
      req.on('response', (res) => {
        const chunks = [];
        res.on('data', (chunk) => chunks.push(chunk));
        res.on('end', () =>
          res.statusCode === 200
            ? resolve()
            : reject(new Error(`${path}: HTTP ${res.statusCode} ${Buffer.concat(chunks).toString().slice(0, 200)}`)),
        );
      });
      req.on('error', reject);
      req.end(payload);
    });
  // Written to the catalog (as an external registrator does), on nodes of their own: the agent's
  // anti-entropy leaves other nodes alone. Writes go in transactions (/v1/txn, at most 64
  // operations each, one Raft commit): one catalog call per write tops out at a few hundred
  // writes a second on the 1.8 dev agent here, below 1 % churn of 100,000 instances (2,000
  // writes a second), so the churn would measure the driver, not the client.
  const NODES = 10;
  const nodeOf = (service) => `scale-node-${Number(service.replace(/\D+/g, '')) % NODES}`;
  const setOps = (service, i) => [
    {
      Service: {
        Verb: 'set',
        Node: nodeOf(service),
        Service: {
          ID: i.id,
          Service: service,
          Address: i.host,
          Port: i.port,
          Meta: { namespace: 'default' },
          Weights: { Passing: 1, Warning: 1 },
        },
      },
    },
    // A passing check, as switchyard registers one.
    {
      Check: {
        Verb: 'set',
        Check: {
          Node: nodeOf(service),
          CheckID: `service:${i.id}`,
          Name: `${service} check`,
          Status: 'passing',
          ServiceID: i.id,
        },
      },
    },
  ];
  // Deleting a service in a transaction deletes its checks too.
  const deleteOp = (service, i) => ({
    Service: { Verb: 'delete', Node: nodeOf(service), Service: { ID: i.id, Service: service } },
  });
  for (let n = 0; n < NODES; n++)
    await call('PUT', '/catalog/register', { Node: `scale-node-${n}`, Address: '10.255.0.1' });
  // Replacements due together go out in shared transactions, at most 4 in flight.
  const MAX_OPS = 63;
  let queued = [];
  let inFlight = 0;
  const flush = () => {
    while (queued.length > 0 && inFlight < 4) {
      const batch = [];
      let ops = 0;
      while (queued.length > 0 && ops + queued[0].ops.length <= MAX_OPS) {
        const item = queued.shift();
        batch.push(item);
        ops += item.ops.length;
      }
      inFlight++;
      call(
        'PUT',
        '/txn',
        batch.flatMap((item) => item.ops),
      )
        .then(
          () => batch.forEach((item) => item.resolve()),
          (error) => batch.forEach((item) => item.reject(error)),
        )
        .finally(() => {
          inFlight--;
          flush();
        });
    }
  };
  const write = (ops) =>
    new Promise((resolve, reject) => {
      queued.push({ ops, resolve, reject });
      if (queued.length === 1) setImmediate(flush);
    });
  return {
    async fill(service, instances) {
      await Promise.all(instances.map((i) => write(setOps(service, i))));
    },
    replace: (service, old, fresh) => write([deleteOp(service, old), ...setOps(service, fresh)]),
    close: () => {
      queued = [];
      agent.destroy();
    },
  };
}

async function meshBackend() {
  const { loadXdsFixture } = await import('./support/xds-fixture.mjs');
  const xds = await loadXdsFixture();
  if (!xds.XdsControlPlane) throw new Error(xds.problem);
  const plane = await xds.XdsControlPlane.start({ partialEds: true, keepRecords: false });
  // What xds.loadAssignment(service, [{ endpoints: [{ address }, ...] }]) builds, with each endpoint's
  // object made once per instance: a control plane keeps its endpoints, it does not rebuild 1,000 per change.
  // Frozen, so the test control plane's encoder takes each by identity (it cannot change) instead of checking
  // its shape and looking it up by value: that was 45 % of this process's CPU during the churn.
  const lbOf = (i) =>
    (i.lb ??= Object.freeze({
      endpoint: Object.freeze({
        address: Object.freeze({ socket_address: Object.freeze({ address: i.host, port_value: i.port }) }),
      }),
      health_status: 'HEALTHY',
    }));
  const publish = (service) =>
    plane.set(xds.ENDPOINT_TYPE, {
      cluster_name: service,
      endpoints: [
        {
          locality: { region: '', zone: '', sub_zone: '' },
          load_balancing_weight: { value: 1 },
          priority: 0,
          lb_endpoints: state.get(service).live.map(lbOf),
        },
      ],
    });
  return {
    url: plane.url,
    async fill(service) {
      plane.set(xds.CLUSTER_TYPE, xds.edsCluster(service));
      publish(service);
    },
    async replace(service) {
      publish(service);
    },
    close: () => plane.close(),
  };
}

async function setup({ kind: backendKind, target, services, instances }) {
  kind = backendKind;
  const t0 = performance.now();
  backend =
    kind === 'etcd'
      ? await etcdBackend({ target })
      : kind === 'consul'
        ? await consulBackend({ target })
        : await meshBackend();
  services.forEach((service, s) => {
    const live = Array.from({ length: instances }, (_, i) => instanceOf(service, s, i));
    state.set(service, { index: s, live, next: instances });
  });
  await inParallel(services.length, kind === 'etcd' ? 8 : kind === 'consul' ? 4 : 1, async (s) => {
    const service = services[s];
    await backend.fill(service, state.get(service).live);
  });
  send({ phase: 'populated', ms: performance.now() - t0, ...(backend.url ? { url: backend.url } : {}) });
}

/** A CPU profile of this process over the churn (BENCH_SCALE_REGISTRY_PROFILE=file.cpuprofile): the driver and, for mesh, the control plane. */
async function profiled(task) {
  const file = process.env.BENCH_SCALE_REGISTRY_PROFILE;
  if (!file) return task();
  const profiler = await startCpuProfile();
  try {
    return await task();
  } finally {
    await profiler.stop(file);
  }
}

async function churn(options) {
  return profiled(() => churnFor(options));
}

async function churnFor({ seconds, perSecond }) {
  const services = [...state.keys()];
  const log = [];
  const failures = [];
  const t0 = performance.now();
  let started = 0;
  let inFlight = 0;
  let skipped = 0;
  const maxInFlight = 256;
  await new Promise((resolve) => {
    const tick = setInterval(() => {
      const elapsed = performance.now() - t0;
      const due = Math.min(Math.floor((elapsed / 1000) * perSecond), Math.floor(seconds * perSecond));
      while (started < due) {
        if (inFlight >= maxInFlight) {
          // The registry does not keep up: count what could not be sent rather than queue it.
          skipped += due - started;
          started = due;
          break;
        }
        const service = services[started % services.length];
        const entry = state.get(service);
        const old = entry.live.shift();
        const fresh = instanceOf(service, entry.index, entry.next++);
        entry.live.push(fresh);
        started++;
        inFlight++;
        const removal = [service, old.key, 'removed', now(), 0];
        const addition = [service, fresh.key, 'added', removal[3], 0];
        log.push(removal, addition);
        backend
          .replace(service, old, fresh)
          .then(() => (removal[4] = addition[4] = now()))
          .catch((error) => failures.push(error.message))
          .finally(() => inFlight--);
      }
      if (elapsed >= seconds * 1000 && inFlight === 0) {
        clearInterval(tick);
        resolve();
      }
    }, 5);
  });
  send({
    phase: 'churned',
    log,
    failures: failures.slice(0, 5),
    failed: failures.length,
    skipped,
    sent: started - skipped,
  });
}

function truth() {
  send({
    phase: 'truth',
    sets: [...state].map(([service, entry]) => ({ service, ids: entry.live.map((i) => i.seenAs).sort() })),
  });
}

async function stop() {
  await backend?.close();
  send({ phase: 'stopped' });
  process.exit(0);
}

const handlers = { setup, churn, truth, stop };
process.on('message', (message) => {
  Promise.resolve(handlers[message.phase](message)).catch((error) =>
    send({ phase: 'error', error: `${error?.constructor?.name}: ${error?.message}` }),
  );
});
process.on('disconnect', () => process.exit(0));
