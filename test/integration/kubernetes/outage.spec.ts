import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { KubernetesRegistry } from '../../../lib/registry/kubernetes/kubernetes.registry.js';
import { endpointSlice, KubernetesApiPeer, type SliceEndpoint } from '../../support/kubernetes/kubernetes-api-peer.js';
import { waitFor } from '../../support/wait-for.js';
import { kubeconfigFor, kubernetesRegistry, reader, SetRecorder } from './kubernetes-test-kit.js';

const slice = (service: string, endpoints: SliceEndpoint[]) =>
  endpointSlice({
    service,
    name: `${service}-a`,
    namespace: 'shop',
    ports: [{ name: 'grpc', port: 50051 }],
    endpoints,
  });

describe('kubernetes backend: API server outages and refusals (test API server)', () => {
  let api: KubernetesApiPeer;
  const registries: KubernetesRegistry[] = [];
  const recorders: SetRecorder[] = [];

  beforeAll(async () => {
    api = await KubernetesApiPeer.start({ users: { reader: reader('reader-token') } });
  });

  afterEach(async () => {
    api.signal('SIGCONT');
    recorders.splice(0).forEach((r) => r.unsubscribe());
    await Promise.all(registries.splice(0).map((r) => r.close()));
    await api.setUsers({ reader: reader('reader-token') });
  });

  afterAll(async () => {
    await api?.stop();
  });

  async function watched(service: string) {
    const made = await kubernetesRegistry(kubeconfigFor(api, 'reader-token'));
    registries.push(made.registry);
    const sets = SetRecorder.of(made.registry, { service });
    recorders.push(sets);
    await waitFor(() => sets.last?.state === 'ok', { what: `the first set of '${service}'` });
    return { ...made, sets };
  }

  const watchesOf = async (service: string) =>
    (await api.requests()).filter(
      (r) => r.user === 'reader' && r.query.labelSelector === `kubernetes.io/service-name=${service}`,
    );

  it('serves the last set as stale while the API server is down, and resumes from its resourceVersion after a restart', async () => {
    await api.apply(slice('restart', [{ address: '10.7.0.1' }, { address: '10.7.0.2' }]));
    const { registry, logger, sets } = await watched('restart');
    const good = sets.addresses();

    await api.stopProcess();
    await waitFor(() => sets.last?.state === 'stale', { what: 'stale while the server is down' });
    expect(sets.addresses()).toEqual(good);
    expect(sets.last!.reason).toMatch(/^API server 127\.0\.0\.1:\d+ unreachable: /);
    expect(registry.reachability.current).toMatchObject({ reachable: false });
    expect(
      logger.warnings.some((w) => w.includes("watching 'restart' failed") && w.includes('serving the last known 2')),
    ).toBe(true);

    await api.restart();
    await api.apply(slice('restart', [{ address: '10.7.0.2' }, { address: '10.7.0.3' }]));
    await waitFor(() => sets.last?.state === 'ok' && sets.addresses().join() === '10.7.0.2:50051,10.7.0.3:50051', {
      what: 'recovery with the change made after the restart',
    });
    expect(registry.reachability.current.reachable).toBe(true);
    expect(sets.sets.filter((s) => s.state === 'stale')).toHaveLength(1);
    // The server kept its history across the restart: the client resumed its watch, it did not list again
    // (the restarted server's request log starts empty).
    const sinceRestart = await watchesOf('restart');
    expect(sinceRestart.filter((r) => !r.query.watch)).toEqual([]);
    expect(sinceRestart[0].query.resourceVersion).toMatch(/^\d+$/);
  });

  it('turns stale when the API server stalls (SIGSTOP), and recovers without losing a change when it resumes', async () => {
    await api.apply(slice('stall', [{ address: '10.8.0.1' }]));
    const { registry, sets } = await watched('stall');
    api.signal('SIGSTOP');
    try {
      // The quiet watch is checked after refresh_interval (1 s); the check gets no answer within request_timeout (1 s).
      await waitFor(() => sets.last?.state === 'stale', {
        what: 'stale while the server is stalled',
        timeoutMs: 15_000,
      });
      expect(sets.last!.reason).toMatch(/no answer from the API server 127\.0\.0\.1:\d+ within 1000 ms/);
      expect(sets.addresses()).toEqual(['10.8.0.1:50051']);
      expect(registry.reachability.current.reachable).toBe(false);
    } finally {
      api.signal('SIGCONT');
    }
    await api.apply(slice('stall', [{ address: '10.8.0.2' }]));
    await waitFor(() => sets.last?.state === 'ok' && sets.addresses().join() === '10.8.0.2:50051', {
      what: 'the change after the stall',
      timeoutMs: 15_000,
    });
  });

  it('on 403 logs the RBAC permission it needs, stays stale, and once allowed replays the change it missed', async () => {
    await api.apply(slice('rbac', [{ address: '10.9.0.1' }]));
    const { registry, logger, sets } = await watched('rbac');
    const firstWatch = (await watchesOf('rbac')).find((r) => r.query.watch)!;

    // The Role is taken away and the watch ends: the next watch is refused.
    await api.setUsers({ reader: { tokens: ['reader-token'], rules: [] } });
    await api.endWatches('cut', 'reader');
    await waitFor(() => sets.last?.state === 'stale', { what: 'stale while forbidden' });
    const hint =
      'The client needs "list" and "watch" on endpointslices (API group discovery.k8s.io) in namespace \'shop\': bind it a Role with them (docs/backends/kubernetes.md)';
    expect(sets.last!.reason).toContain(
      'forbidden: endpointslices.discovery.k8s.io is forbidden: User "reader" cannot watch resource "endpointslices" in API group "discovery.k8s.io" in the namespace "shop"',
    );
    expect(sets.last!.reason).toContain(hint);
    expect(logger.errors.filter((e) => e.includes(hint))).toHaveLength(1);
    // A refusal is an answer: the server is reachable.
    expect(registry.reachability.current.reachable).toBe(true);

    // A change while the client is kept out, then the Role is back.
    await api.apply(slice('rbac', [{ address: '10.9.0.2' }]));
    await api.setUsers({ reader: reader('reader-token') });
    await waitFor(() => sets.last?.state === 'ok' && sets.addresses().join() === '10.9.0.2:50051', {
      what: 'the missed change replayed',
    });
    const requests = await watchesOf('rbac');
    expect(requests.filter((r) => !r.query.watch)).toHaveLength(1);
    const resumed = requests.filter((r) => r.query.watch && r.status === 200).at(-1)!;
    expect(Number(resumed.query.resourceVersion)).toBeGreaterThanOrEqual(Number(firstWatch.query.resourceVersion));
  });

  it('says which permission is missing when it was never allowed (no set yet: stale, unresolved)', async () => {
    await api.setUsers({ stranger: reader('stranger-token', ['elsewhere']) });
    const made = await kubernetesRegistry(kubeconfigFor(api, 'stranger-token'));
    registries.push(made.registry);
    const sets = SetRecorder.of(made.registry, { service: 'rbac' });
    recorders.push(sets);
    await waitFor(() => sets.last?.state === 'stale', { what: 'the refusal' });
    expect(sets.last!.resolved).toBe(false);
    expect(sets.last!.reason).toMatch(/User "stranger" cannot list resource "endpointslices"/);
    expect(made.logger.errors[0]).toContain("watching 'rbac' failed (forbidden:");
    expect(made.logger.errors[0]).toContain('"list" and "watch" on endpointslices');
  });
});
