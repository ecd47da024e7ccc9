import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Discovery } from '../../../lib/index.js';
import {
  GREETER_PROTO,
  GreeterServer,
  sayHello,
  type GreeterStub,
  type HelloReply,
} from '../../support/grpc/greeter.js';
import { endpointSlice, KubernetesApiPeer } from '../../support/kubernetes/kubernetes-api-peer.js';
import { waitFor } from '../../support/wait-for.js';
import { kubeconfigFor, reader, RecordingLogger } from './kubernetes-test-kit.js';

/**
 * Real Greeter servers behind EndpointSlices, called through switchyard's
 * gRPC path (a stub on discovery:///<service>). Every server listens on
 * 127.0.0.1 with its own port, so each pod gets its own slice, as the
 * EndpointSlice controller does for pods whose named port maps to
 * different numbers.
 */
type PodState = 'ready' | 'terminating' | 'gone';

describe('kubernetes backend: calls to real gRPC servers behind EndpointSlices', () => {
  let api: KubernetesApiPeer;
  let discovery: Discovery;
  const servers: GreeterServer[] = [];
  let serviceCount = 0;

  beforeAll(async () => {
    api = await KubernetesApiPeer.start({ users: { reader: reader('reader-token') } });
    discovery = (
      await Discovery.create(
        {
          backend: 'kubernetes',
          backendConfig: kubeconfigFor(api, 'reader-token'),
          loadBalance: 'round_robin',
          refreshInterval: 1,
        },
        { logger: new RecordingLogger() },
      )
    ).serveGrpcTargets();
  });

  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => s.stop()));
  });

  afterAll(async () => {
    await discovery?.close();
    await api?.stop();
  });

  /** Writes pod `server`'s slice in the state given (deleting it when gone). */
  async function pod(service: string, server: GreeterServer, state: PodState): Promise<void> {
    const name = `${service}-${server.id}`;
    if (state === 'gone') return api.remove('shop', name);
    await api.apply(
      endpointSlice({
        service,
        name,
        namespace: 'shop',
        ports: [{ name: 'grpc', port: server.port }],
        endpoints: [
          state === 'ready'
            ? { address: '127.0.0.1', pod: server.id }
            : { address: '127.0.0.1', pod: server.id, ready: false, serving: true, terminating: true },
        ],
      }),
    );
  }

  async function start(id: string, delayMs = 0): Promise<GreeterServer> {
    const server = await new GreeterServer(id, { delayMs }).start();
    servers.push(server);
    return server;
  }

  it('scales up and down under steady calls with zero failed calls', async () => {
    const service = `scale${++serviceCount}`;
    const [s1, s2, s3] = [await start('s1', 2), await start('s2', 2), await start('s3', 2)];
    await pod(service, s1, 'ready');
    const client = discovery.client({ name: service, proto: { path: GREETER_PROTO } });
    await client.ready({ minEndpoints: 1 });
    const stub = client.getService<GreeterStub>('Greeter');

    const failures: string[] = [];
    const answeredBy = new Map<string, number>();
    let running = true;
    const worker = async () => {
      while (running) {
        await sayHello(stub, 'k8s')
          .then((r: HelloReply) => answeredBy.set(r.instance, (answeredBy.get(r.instance) ?? 0) + 1))
          .catch((e: Error) => failures.push(e.message));
      }
    };
    const workers = Array.from({ length: 4 }, worker);
    try {
      // Scale up: two pods turn ready.
      await pod(service, s2, 'ready');
      await pod(service, s3, 'ready');
      await waitFor(() => s2.calls > 0 && s3.calls > 0, { what: 's2 and s3 taking calls' });

      // Scale down s3 as Kubernetes does: terminating first (no new calls), the pod stops, the endpoint leaves.
      await pod(service, s3, 'terminating');
      await waitFor(() => !client.snapshot().endpoints.some((e) => e.port === s3.port), { what: 's3 not served' });
      await s3.stop();
      await pod(service, s3, 'gone');
      // And s1: the last calls land on s2 alone.
      await pod(service, s1, 'terminating');
      await waitFor(() => client.snapshot().size === 1, { what: 's2 alone served' });
      await s1.stop();
      await pod(service, s1, 'gone');
      const s2Before = s2.calls;
      await waitFor(() => s2.calls > s2Before + 20, { what: 'calls continuing on s2' });
    } finally {
      running = false;
      await Promise.all(workers);
    }
    expect(failures).toEqual([]);
    expect([...answeredBy.keys()].sort()).toEqual(['s1', 's2', 's3']);
    expect(client.snapshot().endpoints.map((e) => e.port)).toEqual([s2.port]);
  });

  it('a terminating pod gets no new calls while its calls in flight finish', async () => {
    const service = `drain${++serviceCount}`;
    const [a, b] = [await start('a'), await start('b')];
    await pod(service, a, 'ready');
    await pod(service, b, 'ready');
    const client = discovery.client({ name: service, proto: { path: GREETER_PROTO } });
    await client.ready({ minEndpoints: 2 });
    const stub = client.getService<GreeterStub>('Greeter');

    // Both connections up first (the LB policy picks around a pod it has not connected to yet).
    await waitFor(
      async () =>
        new Set((await Promise.all([1, 2, 3, 4].map(() => sayHello(stub, 'warm')))).map((r) => r.instance)).size === 2,
      {
        what: 'a and b answering',
      },
    );
    a.options.delayMs = b.options.delayMs = 800;
    a.calls = b.calls = 0;
    // Calls in flight on both pods.
    const inFlight = Array.from({ length: 6 }, () => sayHello(stub, 'before', { deadlineMs: 10_000 }));
    await waitFor(() => a.calls > 0 && b.calls > 0, { what: 'calls in flight on a and b' });
    const aStarted = a.calls;

    await pod(service, a, 'terminating');
    await waitFor(() => client.snapshot().size === 1, { what: 'a no longer served' });
    const aReport = client.describeEndpoints().find((r) => r.endpoint.port === a.port);
    // Known (the registry still lists it), not served, calls still in flight there.
    expect(aReport).toMatchObject({ served: false });
    expect(aReport!.inFlight).toBeGreaterThan(0);

    const after = await Promise.all(Array.from({ length: 8 }, () => sayHello(stub, 'after', { deadlineMs: 10_000 })));
    expect(new Set(after.map((r) => r.instance))).toEqual(new Set(['b']));
    expect(a.calls).toBe(aStarted);

    const before = await Promise.all(inFlight);
    expect(before.filter((r) => r.instance === 'a')).toHaveLength(aStarted);
    await waitFor(() => client.describeEndpoints().find((r) => r.endpoint.port === a.port)?.inFlight === 0, {
      what: "a's calls finished",
    });
  });
});
