import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { KubernetesRegistry } from '../../../lib/registry/kubernetes/kubernetes.registry.js';
import { endpointSlice, KubernetesApiPeer, type SliceEndpoint } from '../../support/kubernetes/kubernetes-api-peer.js';
import { waitFor } from '../../support/wait-for.js';
import { kubeconfigFor, kubernetesRegistry, reader, SetRecorder } from './kubernetes-test-kit.js';

const PORTS: Array<{ name?: string; port: number }> = [{ name: 'grpc', port: 50051 }];

describe('kubernetes backend: list and watch of EndpointSlices (test API server)', () => {
  let api: KubernetesApiPeer;
  const registries: KubernetesRegistry[] = [];
  const recorders: SetRecorder[] = [];

  beforeAll(async () => {
    api = await KubernetesApiPeer.start({ users: { reader: reader('reader-token') }, bookmarkIntervalMs: 200 });
  });

  afterEach(async () => {
    recorders.splice(0).forEach((r) => r.unsubscribe());
    await Promise.all(registries.splice(0).map((r) => r.close()));
  });

  afterAll(async () => {
    await api?.stop();
  });

  async function open(extra: Record<string, unknown> = {}) {
    const made = await kubernetesRegistry(kubeconfigFor(api, 'reader-token', extra));
    registries.push(made.registry);
    return made;
  }

  function watch(registry: KubernetesRegistry, service: string): SetRecorder {
    const recorder = SetRecorder.of(registry, { service });
    recorders.push(recorder);
    return recorder;
  }

  const slice = (service: string, name: string, endpoints: SliceEndpoint[], ports = PORTS) =>
    endpointSlice({ service, name, namespace: 'shop', ports, endpoints });

  it('merges every slice of a service, listed in pages, and keeps the others when one slice changes', async () => {
    await api.apply(slice('merged', 'merged-a', [{ address: '10.1.0.1' }, { address: '10.1.0.2' }]));
    await api.apply(slice('merged', 'merged-b', [{ address: '10.1.0.3' }]));
    await api.apply(slice('other', 'other-a', [{ address: '10.9.0.1' }]));
    const { registry } = await open({ pageSize: 1 });
    const sets = watch(registry, 'merged');
    await waitFor(() => sets.addresses().length === 3, { what: 'both slices listed' });
    expect(sets.addresses()).toEqual(['10.1.0.1:50051', '10.1.0.2:50051', '10.1.0.3:50051']);

    // The bug seen elsewhere: keeping only the last changed slice. A change in b must keep a's endpoints.
    await api.apply(slice('merged', 'merged-b', [{ address: '10.1.0.4' }]));
    await waitFor(() => sets.addresses().includes('10.1.0.4:50051'), { what: 'the change in slice b' });
    expect(sets.addresses()).toEqual(['10.1.0.1:50051', '10.1.0.2:50051', '10.1.0.4:50051']);
    await api.remove('shop', 'merged-a');
    await waitFor(() => sets.addresses().length === 1, { what: 'slice a deleted' });
    expect(sets.addresses()).toEqual(['10.1.0.4:50051']);
    expect(sets.sets.every((s) => s.state === 'ok')).toBe(true);

    const seen = (await api.requests()).filter((r) => r.user === 'reader' && r.path.endsWith('/endpointslices'));
    const lists = seen.filter((r) => !r.query.watch);
    expect(lists.map((r) => r.query.limit)).toEqual(['1', '1']);
    expect(lists[1].query.continue).toBeTruthy();
    const watchRequest = seen.find((r) => r.query.watch)!;
    expect(watchRequest.query).toMatchObject({
      labelSelector: 'kubernetes.io/service-name=merged',
      allowWatchBookmarks: 'true',
      resourceVersion: expect.stringMatching(/^\d+$/),
    });
  });

  it('serves ready endpoints, keeps serving-but-terminating ones known but not served, and leaves not-ready ones out', async () => {
    await api.apply(
      slice('conditions', 'conditions-a', [
        { address: '10.2.0.1', zone: 'zone-a', nodeName: 'node-1', pod: 'conditions-7d4-abcde' },
        { address: '10.2.0.2', ready: false, serving: true, terminating: true, pod: 'conditions-7d4-fghij' },
        { address: '10.2.0.3', ready: false, serving: false, terminating: false, pod: 'starting' },
        { address: '10.2.0.4', ready: false, serving: false, terminating: true, pod: 'gone' },
      ]),
    );
    const { registry } = await open();
    const sets = watch(registry, 'conditions');
    await waitFor(() => sets.last?.state === 'ok', { what: 'the first set' });
    expect(sets.addresses()).toEqual(['10.2.0.1:50051', '10.2.0.2:50051 (draining)']);
    const ready = sets.last!.endpoints.find((e) => e.address === '10.2.0.1:50051')!;
    expect(ready.zone).toBe('zone-a');
    expect(ready.instance.id).toBe('conditions-7d4-abcde');
    expect(ready.instance.namespace).toBe('default');
    expect(ready.instance.metadata.custom).toEqual({
      'kubernetes.node': 'node-1',
      'kubernetes.pod': 'conditions-7d4-abcde',
    });
    const draining = sets.last!.endpoints.find((e) => e.address === '10.2.0.2:50051')!;
    expect(draining.instance.metadata.custom['kubernetes.terminating']).toBe('true');

    // The starting pod turns ready: it joins.
    await api.apply(
      slice('conditions', 'conditions-a', [
        { address: '10.2.0.1', zone: 'zone-a', nodeName: 'node-1', pod: 'conditions-7d4-abcde' },
        { address: '10.2.0.3', pod: 'starting' },
      ]),
    );
    await waitFor(() => sets.addresses().join() === '10.2.0.1:50051,10.2.0.3:50051', { what: 'the ready pod' });
  });

  it('chooses the port by name, the only port, or grpc/http, and says which names exist when it cannot', async () => {
    const twoPorts = [
      { name: 'metrics', port: 9090 },
      { name: 'grpc', port: 50051 },
    ];
    await api.apply(slice('ports', 'ports-a', [{ address: '10.3.0.1' }], twoPorts));
    await api.apply(slice('ports-one', 'ports-one-a', [{ address: '10.3.0.2' }], [{ port: 8080 }]));
    await api.apply(
      slice(
        'ports-none',
        'ports-none-a',
        [{ address: '10.3.0.3' }],
        [
          { name: 'metrics', port: 9090 },
          { name: 'admin', port: 9000 },
        ],
      ),
    );
    const { registry, logger } = await open();
    const byDefault = watch(registry, 'ports');
    const only = watch(registry, 'ports-one');
    const none = watch(registry, 'ports-none');
    await waitFor(() => byDefault.last?.resolved && only.last?.resolved && none.last?.resolved, { what: 'three sets' });
    expect(byDefault.addresses()).toEqual(['10.3.0.1:50051']);
    expect(only.addresses()).toEqual(['10.3.0.2:8080']);
    expect(none.last!.state).toBe('empty');
    expect(logger.errors).toContain(
      "kubernetes: EndpointSlice 'ports-none-a' of service 'ports-none' has 2 ports and none is named 'grpc' or 'http' (its ports: 'metrics' (9090), 'admin' (9000)); set backend_config.port_name to one of them",
    );

    const named = await open({ portName: 'metrics' });
    const metrics = watch(named.registry, 'ports');
    await waitFor(() => metrics.last?.resolved, { what: 'the metrics port' });
    expect(metrics.addresses()).toEqual(['10.3.0.1:9090']);

    const wrong = await open({ portName: 'grcp' });
    const typo = watch(wrong.registry, 'ports');
    await waitFor(() => typo.last?.resolved, { what: 'a set with the wrong port name' });
    expect(typo.last!.size).toBe(0);
    expect(wrong.logger.errors).toEqual([
      "kubernetes: EndpointSlice 'ports-a' of service 'ports' has no port named 'grcp' (its ports: 'metrics' (9090), 'grpc' (50051)); set backend_config.port_name to one of them",
    ]);
  });

  it('resumes after a clean end of the stream from the last bookmark, without listing again', async () => {
    await api.apply(slice('bookmarks', 'bookmarks-a', [{ address: '10.4.0.1' }]));
    const { registry } = await open({ watchTimeout: 1 });
    const sets = watch(registry, 'bookmarks');
    await waitFor(() => sets.last?.state === 'ok', { what: 'the first set' });
    // Other services change meanwhile: only bookmarks carry their resourceVersions to this watch.
    await api.apply(slice('unrelated', 'unrelated-a', [{ address: '10.4.9.1' }]));
    const afterUnrelated = Number(
      (
        (await api.call('GET', '/apis/discovery.k8s.io/v1/namespaces/shop/endpointslices/unrelated-a')).body as {
          metadata: { resourceVersion: string };
        }
      ).metadata.resourceVersion,
    );
    // The server ends the watch every second (timeoutSeconds=1): the next one starts from a bookmark's version.
    await waitFor(
      async () =>
        (await api.requests()).some(
          (r) =>
            r.user === 'reader' &&
            r.query.watch &&
            r.query.labelSelector === 'kubernetes.io/service-name=bookmarks' &&
            Number(r.query.resourceVersion) >= afterUnrelated,
        ),
      { what: 'a watch resumed from a bookmark', timeoutMs: 15_000 },
    );
    await api.apply(slice('bookmarks', 'bookmarks-a', [{ address: '10.4.0.2' }]));
    await waitFor(() => sets.addresses().join() === '10.4.0.2:50051', { what: 'the change after resuming' });
    const lists = (await api.requests()).filter(
      (r) => r.user === 'reader' && !r.query.watch && r.query.labelSelector === 'kubernetes.io/service-name=bookmarks',
    );
    expect(lists).toHaveLength(1);
    expect(sets.sets.every((s) => s.state === 'ok')).toBe(true);
  });

  it('lists again on 410 Gone, serving the last set meanwhile, and misses no change', async () => {
    await api.apply(slice('gone', 'gone-a', [{ address: '10.5.0.1' }, { address: '10.5.0.2' }]));
    const { registry, logger } = await open();
    const sets = watch(registry, 'gone');
    await waitFor(() => sets.addresses().length === 2, { what: 'the first set' });
    const before = sets.sets.length;
    // The history is compacted under the open watch: ERROR 410, the watch ends.
    expect(await api.endWatches('gone', 'reader')).toBeGreaterThan(0);
    await api.apply(slice('gone', 'gone-a', [{ address: '10.5.0.2' }, { address: '10.5.0.3' }]));
    await waitFor(() => sets.addresses().join() === '10.5.0.2:50051,10.5.0.3:50051', {
      what: 'the change after relisting',
    });
    // The set was never emptied or marked stale on the way.
    expect(sets.sets.slice(before).every((s) => s.state === 'ok' && s.size > 0)).toBe(true);
    expect(logger.infos.some((m) => m.includes("resourceVersion of 'gone' expired (410 Gone); listing again"))).toBe(
      true,
    );
    const lists = (await api.requests()).filter(
      (r) => r.user === 'reader' && !r.query.watch && r.query.labelSelector === 'kubernetes.io/service-name=gone',
    );
    expect(lists).toHaveLength(2);
  });

  it('lists again when a watch start is refused with HTTP 410 too', async () => {
    const strict = await KubernetesApiPeer.start({ users: { reader: reader('reader-token') }, goneAs: 'status' });
    try {
      await strict.apply(slice('gone-status', 'gone-status-a', [{ address: '10.5.1.1' }]));
      const made = await kubernetesRegistry(kubeconfigFor(strict, 'reader-token'));
      registries.push(made.registry);
      const sets = watch(made.registry, 'gone-status');
      await waitFor(() => sets.last?.state === 'ok', { what: 'the first set' });
      // Keep the client out (403) while a change is made and the history compacted behind it.
      await strict.setUsers({ reader: { tokens: ['reader-token'], rules: [] } });
      await strict.endWatches('cut', 'reader');
      await waitFor(() => sets.last?.state === 'stale', { what: 'stale while refused' });
      await strict.apply(slice('gone-status', 'gone-status-a', [{ address: '10.5.1.2' }]));
      await strict.compact();
      await strict.setUsers({ reader: reader('reader-token') });
      await waitFor(() => sets.addresses().join() === '10.5.1.2:50051', { what: 'the change after HTTP 410' });
      const seen = (await strict.requests()).filter((r) => r.user === 'reader');
      expect(seen.some((r) => r.query.watch && r.status === 410)).toBe(true);
      expect(seen.filter((r) => !r.query.watch)).toHaveLength(2);
    } finally {
      await strict.stop();
    }
  });

  it("watches the namespace a query names, else the configured one, else the kubeconfig context's", async () => {
    await api.setUsers({ reader: reader('reader-token', ['shop', 'billing', 'team']) });
    await api.apply(
      endpointSlice({
        service: 'ns',
        name: 'ns-a',
        namespace: 'billing',
        ports: PORTS,
        endpoints: [{ address: '10.6.0.1' }],
      }),
    );
    await api.apply(
      endpointSlice({
        service: 'ns',
        name: 'ns-a',
        namespace: 'shop',
        ports: PORTS,
        endpoints: [{ address: '10.6.0.2' }],
      }),
    );
    await api.apply(
      endpointSlice({
        service: 'ns',
        name: 'ns-a',
        namespace: 'team',
        ports: PORTS,
        endpoints: [{ address: '10.6.0.3' }],
      }),
    );
    const fromContext = await open();
    const configured = await open({ namespace: 'team' });
    const named = SetRecorder.of(fromContext.registry, { service: 'ns', namespace: 'billing' });
    const implicit = SetRecorder.of(fromContext.registry, { service: 'ns' });
    const team = SetRecorder.of(configured.registry, { service: 'ns', namespace: 'default' });
    recorders.push(named, implicit, team);
    await waitFor(() => named.last?.resolved && implicit.last?.resolved && team.last?.resolved, { what: 'three sets' });
    expect(named.addresses()).toEqual(['10.6.0.1:50051']);
    expect(named.last!.endpoints[0].instance.namespace).toBe('billing');
    expect(implicit.addresses()).toEqual(['10.6.0.2:50051']);
    expect(team.addresses()).toEqual(['10.6.0.3:50051']);
  });
});
