import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ConfigurationError } from '../../../lib/core/errors.js';
import type { KubernetesRegistry } from '../../../lib/registry/kubernetes/kubernetes.registry.js';
import { endpointSlice, KubernetesApiPeer } from '../../support/kubernetes/kubernetes-api-peer.js';
import { waitFor } from '../../support/wait-for.js';
import { kubernetesRegistry, reader, SetRecorder } from './kubernetes-test-kit.js';

describe('kubernetes backend: connecting as a pod and from a kubeconfig (test API server)', () => {
  let api: KubernetesApiPeer;
  const registries: KubernetesRegistry[] = [];
  const recorders: SetRecorder[] = [];

  beforeAll(async () => {
    api = await KubernetesApiPeer.start({
      users: {
        'system:serviceaccount:shop:caller': reader('pod-token-1'),
        // The client certificate's CN.
        client: reader('unused-client-token'),
      },
    });
    await api.apply(
      endpointSlice({
        service: 'orders',
        name: 'orders-a',
        namespace: 'shop',
        ports: [{ name: 'grpc', port: 50051 }],
        endpoints: [{ address: '10.20.0.1' }],
      }),
    );
  });

  afterEach(async () => {
    recorders.splice(0).forEach((r) => r.unsubscribe());
    await Promise.all(registries.splice(0).map((r) => r.close()));
  });

  afterAll(async () => {
    await api?.stop();
  });

  function record(registry: KubernetesRegistry, service: string): SetRecorder {
    const sets = SetRecorder.of(registry, { service });
    recorders.push(sets);
    return sets;
  }

  it("in a pod: uses KUBERNETES_SERVICE_HOST/_PORT, the service account's CA, namespace and token, and re-reads the token when it rotates", async () => {
    const serviceAccount = join(api.workDir, 'serviceaccount');
    mkdirSync(serviceAccount, { recursive: true });
    writeFileSync(join(serviceAccount, 'token'), 'pod-token-1\n');
    writeFileSync(join(serviceAccount, 'namespace'), 'shop');
    copyFileSync(api.caFile!, join(serviceAccount, 'ca.crt'));
    const { registry, logger } = await kubernetesRegistry(
      { serviceAccountDir: serviceAccount, requestTimeout: 1 },
      { env: { KUBERNETES_SERVICE_HOST: '127.0.0.1', KUBERNETES_SERVICE_PORT: String(api.port) } },
    );
    registries.push(registry);
    expect(registry.settings.mode).toBe('in-cluster');
    expect(logger.infos[0]).toMatch(
      /in-cluster service account \(API server https:\/\/127\.0\.0\.1:\d+\); namespace 'shop'/,
    );
    const sets = record(registry, 'orders');
    await waitFor(() => sets.last?.state === 'ok', { what: 'the first set' });
    expect(sets.addresses()).toEqual(['10.20.0.1:50051']);

    // The kubelet rotates the projected token; the old one stops working and the watch ends.
    await api.setUsers({ 'system:serviceaccount:shop:caller': reader('pod-token-2') });
    await api.endWatches('cut', 'system:serviceaccount:shop:caller');
    await waitFor(() => sets.last?.state === 'stale', { what: 'stale while the old token is refused' });
    expect(sets.last!.reason).toBe(
      `unauthorized: the API server rejected the token in ${join(serviceAccount, 'token')} (an expired or revoked token?)`,
    );
    writeFileSync(join(serviceAccount, 'token'), 'pod-token-2\n');
    await api.apply(
      endpointSlice({
        service: 'orders',
        name: 'orders-a',
        namespace: 'shop',
        ports: [{ name: 'grpc', port: 50051 }],
        endpoints: [{ address: '10.20.0.2' }],
      }),
    );
    await waitFor(() => sets.last?.state === 'ok' && sets.addresses().join() === '10.20.0.2:50051', {
      what: 'the new token read from the file',
    });
    const seen = (await api.requests()).filter(
      (r) => r.path.includes('/endpointslices') && r.status === 200 && r.user !== 'admin',
    );
    expect(seen.at(-1)!.user).toBe('system:serviceaccount:shop:caller');
  });

  it('uses a kubeconfig context by name, with a client certificate and the context namespace', async () => {
    const kubeconfig = api.writeKubeconfig(
      'cert.kubeconfig',
      { clientCert: true },
      { namespace: 'shop', otherContexts: true },
    );
    const { registry, logger } = await kubernetesRegistry({ kubeconfig, context: 'test', requestTimeout: 1 });
    registries.push(registry);
    expect(logger.infos[0]).toContain(`kubeconfig ${kubeconfig}, context 'test'`);
    const sets = record(registry, 'orders');
    await waitFor(() => sets.last?.state === 'ok', { what: 'the first set' });
    expect((await api.requests()).some((r) => r.user === 'client' && r.query.watch)).toBe(true);
  });

  it('finds ~/.kube/config through $KUBECONFIG as kubectl does (the first file naming an entry wins)', async () => {
    const kubeconfig = api.writeKubeconfig('env.kubeconfig', { token: 'pod-token-2' }, { namespace: 'shop' });
    const { registry } = await kubernetesRegistry(
      { requestTimeout: 1 },
      { env: { KUBECONFIG: `${join(api.workDir, 'missing.kubeconfig')}:${kubeconfig}` } },
    );
    registries.push(registry);
    expect(registry.settings.mode).toBe('kubeconfig');
    const sets = record(registry, 'orders');
    await waitFor(() => sets.last?.state === 'ok', { what: 'the first set' });
  });

  it('names the field and what is wrong when it cannot connect as configured', async () => {
    const failure = (backendConfig: Record<string, unknown>, env: NodeJS.ProcessEnv = {}) =>
      kubernetesRegistry(backendConfig, { env }).then(
        () => {
          throw new Error('expected a ConfigurationError');
        },
        (error: unknown) => {
          expect(error).toBeInstanceOf(ConfigurationError);
          return (error as Error).message;
        },
      );
    const missing = join(api.workDir, 'nope.kubeconfig');
    expect(await failure({ kubeconfig: missing })).toContain(
      `backend_config.kubeconfig: a readable kubeconfig file (ENOENT); inside a pod, set KUBERNETES_SERVICE_HOST or in_cluster = true (got "${missing}")`,
    );
    const kubeconfig = api.writeKubeconfig('ctx.kubeconfig', { token: 'x' }, { otherContexts: true });
    expect(await failure({ kubeconfig, context: 'prod' })).toContain(
      `backend_config.context: a context of ${kubeconfig} (it has: test, elsewhere) (got "prod")`,
    );
    const exec = join(api.workDir, 'exec.kubeconfig');
    writeFileSync(
      exec,
      JSON.stringify({
        'current-context': 'c',
        clusters: [{ name: 'k', cluster: { server: api.url } }],
        users: [{ name: 'u', user: { exec: { command: 'aws', args: ['eks', 'get-token'] } } }],
        contexts: [{ name: 'c', context: { cluster: 'k', user: 'u' } }],
      }),
    );
    expect(await failure({ kubeconfig: exec })).toContain("user 'u' authenticates with an exec credential plugin");
    await expect(kubernetesRegistry({ inCluster: true })).rejects.toThrow(
      /backendConfig\.inCluster: a pod environment \(KUBERNETES_SERVICE_HOST is not set\)/,
    );
    expect(
      await failure({ inCluster: true, apiServer: api.url, serviceAccountDir: join(api.workDir, 'none') }),
    ).toContain(
      `backend_config.token_file: a readable service-account token file (ENOENT) (got "${join(api.workDir, 'none', 'token')}")`,
    );
  });
});
