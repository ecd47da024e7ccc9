import { DiscoveryV1Api, KubeConfig, makeInformer, type V1EndpointSlice } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kubectl, kubectlBinary, KubectlWatch } from '../../support/kubernetes/kubectl.js';
import { endpointSlice, KubernetesApiPeer } from '../../support/kubernetes/kubernetes-api-peer.js';
import { waitFor } from '../../support/wait-for.js';

/**
 * Before any switchyard test trusts the test API server, the official
 * clients must read it as they read a real one: Debian's kubectl (discovery
 * documents, list with label selectors and chunking, watch, TLS, bearer
 * tokens, client certificates, 401 and 403 as it reports them) and
 * @kubernetes/client-node's informer (list then watch from the list's
 * resourceVersion, resume after a clean end, relist after 410 Gone).
 */
const SHOP_READER = { tokens: ['reader-token'], rules: [{ verbs: ['get', 'list', 'watch'], namespaces: ['shop'] }] };

function slice(name: string, service: string, addresses: string[], port = 50051) {
  return endpointSlice({
    service,
    name,
    namespace: 'shop',
    ports: [{ name: 'grpc', port }],
    endpoints: addresses.map((address, i) => ({ address, pod: `${name}-pod-${i}`, zone: 'z1' })),
  });
}

describe.skipIf(!kubectlBinary())('the test Kubernetes API server, checked with kubectl', () => {
  let api: KubernetesApiPeer;
  let readerConfig: string;

  beforeAll(async () => {
    api = await KubernetesApiPeer.start({
      users: {
        reader: SHOP_READER,
        // The client certificate's CN is "client".
        client: { rules: [{ verbs: ['list', 'watch'], namespaces: ['shop'] }] },
        outsider: { tokens: ['outsider-token'], rules: [{ verbs: ['list', 'watch'], namespaces: ['elsewhere'] }] },
      },
    });
    await api.apply(slice('orders-a', 'orders', ['10.0.0.1', '10.0.0.2']));
    await api.apply(slice('orders-b', 'orders', ['10.0.0.3']));
    await api.apply(slice('billing-a', 'billing', ['10.0.1.1'], 8080));
    readerConfig = api.writeKubeconfig('reader.kubeconfig', { token: 'reader-token' }, { namespace: 'shop' });
  });

  afterAll(async () => {
    await api?.stop();
  });

  it('serves the discovery documents kubectl reads to find endpointslices', async () => {
    const { code, stdout, stderr } = await kubectl(readerConfig, ['api-resources', '--api-group=discovery.k8s.io']);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout).toMatch(/^endpointslices\s+discovery\.k8s\.io\/v1\s+true\s+EndpointSlice/m);
  });

  it('lists slices by label selector, in chunks, over TLS with a bearer token', async () => {
    const { code, stdout, stderr } = await kubectl(readerConfig, [
      'get',
      'endpointslices',
      '-l',
      'kubernetes.io/service-name=orders',
      '--chunk-size=1',
      '-o',
      'json',
    ]);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const list = JSON.parse(stdout) as { items: V1EndpointSlice[] };
    expect(list.items.map((s) => s.metadata!.name)).toEqual(['orders-a', 'orders-b']);
    expect(list.items[0].endpoints.map((e) => e.addresses[0])).toEqual(['10.0.0.1', '10.0.0.2']);
    expect(list.items[0].ports![0]).toMatchObject({ name: 'grpc', port: 50051 });
    // kubectl asked for one item per page and followed the continue token.
    const lists = (await api.requests()).filter((r) => r.user === 'reader' && r.path.endsWith('/endpointslices'));
    expect(lists.some((r) => r.query.limit === '1' && r.query.continue)).toBe(true);
  });

  it('authenticates a client certificate (its CN names the user)', async () => {
    const certConfig = api.writeKubeconfig('cert.kubeconfig', { clientCert: true }, { namespace: 'shop' });
    const { code, stdout, stderr } = await kubectl(certConfig, ['get', 'endpointslices', '-o', 'json']);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect((JSON.parse(stdout) as { items: unknown[] }).items).toHaveLength(3);
    expect((await api.requests()).some((r) => r.user === 'client' && r.status === 200)).toBe(true);
  });

  it('refuses an unknown token with 401 and a forbidden namespace with the RBAC Status kubectl prints', async () => {
    const badToken = api.writeKubeconfig('bad.kubeconfig', { token: 'nobody' }, { namespace: 'shop' });
    const unauthorized = await kubectl(badToken, ['get', 'endpointslices']);
    expect(unauthorized.code).not.toBe(0);
    expect(unauthorized.stderr).toContain('Unauthorized');

    const outsider = api.writeKubeconfig('outsider.kubeconfig', { token: 'outsider-token' }, { namespace: 'shop' });
    const forbidden = await kubectl(outsider, ['get', 'endpointslices']);
    expect(forbidden.code).not.toBe(0);
    expect(forbidden.stderr).toContain(
      'Error from server (Forbidden): endpointslices.discovery.k8s.io is forbidden: User "outsider" cannot list resource "endpointslices" in API group "discovery.k8s.io" in the namespace "shop"',
    );
  });

  it('refuses a client that does not trust its CA (the TLS is real)', async () => {
    const path = api.writeKubeconfig('untrusting.kubeconfig', { token: 'reader-token' }, { namespace: 'shop' });
    const { writeFileSync, readFileSync } = await import('node:fs');
    const doc = JSON.parse(readFileSync(path, 'utf8')) as { clusters: Array<{ cluster: Record<string, unknown> }> };
    delete doc.clusters[0].cluster['certificate-authority-data'];
    writeFileSync(path, JSON.stringify(doc));
    const { code, stderr } = await kubectl(path, ['get', 'endpointslices']);
    expect(code).not.toBe(0);
    expect(stderr).toMatch(/x509|certificate/);
  });

  it('streams watch events kubectl follows: the initial slices, then changes and deletions', async () => {
    const watch = new KubectlWatch(readerConfig, ['endpointslices', '-l', 'kubernetes.io/service-name=orders']);
    try {
      await waitFor(() => watch.events.length >= 2, { what: 'the two initial slices', timeoutMs: 15_000 });
      expect(watch.events.map((e) => `${e.type} ${e.object.metadata.name}`)).toEqual([
        'ADDED orders-a',
        'ADDED orders-b',
      ]);
      await api.apply(slice('orders-b', 'orders', ['10.0.0.3', '10.0.0.4']));
      await api.apply(slice('billing-a', 'billing', ['10.0.1.2'], 8080));
      await api.remove('shop', 'orders-a');
      await waitFor(() => watch.events.length >= 4, { what: 'the change and the deletion' });
      expect(watch.events.slice(2).map((e) => `${e.type} ${e.object.metadata.name}`)).toEqual([
        'MODIFIED orders-b',
        'DELETED orders-a',
      ]);
      const modified = watch.events[2].object as unknown as V1EndpointSlice;
      expect(modified.endpoints.map((e) => e.addresses[0])).toEqual(['10.0.0.3', '10.0.0.4']);
      // kubectl listed first, then watched from the list's resourceVersion, over one chunked response.
      const seen = (await api.requests()).filter((r) => r.user === 'reader' && r.query.watch);
      expect(seen.at(-1)!.query.resourceVersion).toMatch(/^\d+$/);
      expect(watch.stderr).toBe('');
    } finally {
      await watch.stop();
      await api.apply(slice('orders-a', 'orders', ['10.0.0.1', '10.0.0.2']));
    }
  });
});

describe('the test Kubernetes API server, checked with @kubernetes/client-node', () => {
  let api: KubernetesApiPeer;
  let kc: KubeConfig;

  beforeAll(async () => {
    api = await KubernetesApiPeer.start({ users: { reader: SHOP_READER } });
    await api.apply(slice('orders-a', 'orders', ['10.0.0.1']));
    kc = new KubeConfig();
    kc.loadFromFile(api.writeKubeconfig('reader.kubeconfig', { token: 'reader-token' }, { namespace: 'shop' }));
  });

  afterAll(async () => {
    await api?.stop();
  });

  it("keeps an informer's cache in step: list, watch, a clean end (resumed), and 410 Gone (relisted)", async () => {
    const discoveryApi = kc.makeApiClient(DiscoveryV1Api);
    const selector = 'kubernetes.io/service-name=orders';
    const informer = makeInformer<V1EndpointSlice>(
      kc,
      '/apis/discovery.k8s.io/v1/namespaces/shop/endpointslices',
      () => discoveryApi.listNamespacedEndpointSlice({ namespace: 'shop', labelSelector: selector }),
      selector,
    );
    const errors: unknown[] = [];
    informer.on('error', (error) => errors.push(error));
    const addresses = () =>
      informer
        .list('shop')
        .flatMap((s) => s.endpoints.map((e) => e.addresses[0]))
        .sort();
    await informer.start();
    try {
      await waitFor(() => addresses().join() === '10.0.0.1', { what: 'the listed slice' });

      await api.apply(slice('orders-b', 'orders', ['10.0.0.2']));
      await waitFor(() => addresses().join() === '10.0.0.1,10.0.0.2', { what: 'a slice added by the watch' });

      // A clean end of the stream (the server's timeout): the informer watches again from its resourceVersion.
      const listsBefore = (await api.requests()).filter((r) => r.user === 'reader' && !r.query.watch).length;
      expect(await api.endWatches('timeout', 'reader')).toBe(1);
      await api.apply(slice('orders-a', 'orders', ['10.0.0.5']));
      await waitFor(() => addresses().join() === '10.0.0.2,10.0.0.5', { what: 'the change after a resumed watch' });
      let requests = (await api.requests()).filter((r) => r.user === 'reader');
      expect(requests.filter((r) => !r.query.watch)).toHaveLength(listsBefore);
      expect(requests.at(-1)!.query).toMatchObject({ watch: 'true', resourceVersion: expect.stringMatching(/^\d+$/) });

      // The history is compacted under the open watch: ERROR 410, and the informer lists again.
      expect(await api.endWatches('gone', 'reader')).toBe(1);
      await api.remove('shop', 'orders-b');
      await waitFor(() => addresses().join() === '10.0.0.5', { what: 'the deletion seen after the relist' });
      requests = (await api.requests()).filter((r) => r.user === 'reader');
      expect(requests.filter((r) => !r.query.watch).length).toBeGreaterThan(listsBefore);
      expect(errors).toEqual([]);
    } finally {
      await informer.stop();
    }
  });

  it('answers a request without a token with the 401 Status the client raises', async () => {
    const anonymous = new KubeConfig();
    anonymous.loadFromFile(api.writeKubeconfig('anonymous.kubeconfig', {}, { namespace: 'shop' }));
    const client = anonymous.makeApiClient(DiscoveryV1Api);
    await expect(client.listNamespacedEndpointSlice({ namespace: 'shop' })).rejects.toMatchObject({ code: 401 });
  });
});
