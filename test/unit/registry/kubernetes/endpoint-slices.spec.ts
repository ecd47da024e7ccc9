import { describe, expect, it } from 'vitest';
import { resolveDiscoveryConfig } from '../../../../lib/core/config/resolve-discovery-config.js';
import { configFor } from '../../../../lib/registry/backend-context.js';
import {
  choosePort,
  instancesOfSlices,
  type EndpointSliceObject,
} from '../../../../lib/registry/kubernetes/endpoint-slices.js';

const context = { service: 'orders', namespace: 'default', portName: undefined };

function slice(name: string, endpoints: EndpointSliceObject['endpoints'], extra: Partial<EndpointSliceObject> = {}) {
  return { metadata: { name }, addressType: 'IPv4', ports: [{ name: 'grpc', port: 50051 }], endpoints, ...extra };
}

describe('EndpointSlices to instances', () => {
  it('reads nil conditions as the API says (ready unless told otherwise, not terminating)', () => {
    const { instances } = instancesOfSlices([slice('a', [{ addresses: ['10.0.0.1'] }])], context);
    expect(instances.map((i) => [i.address, i.healthy])).toEqual([['10.0.0.1:50051', true]]);
  });

  it('keeps one entry per address, the served one, when a pod sits in two slices during a move', () => {
    const terminating = { ready: false, serving: true, terminating: true };
    const { instances } = instancesOfSlices(
      [
        slice('a', [{ addresses: ['10.0.0.1'], conditions: terminating, targetRef: { kind: 'Pod', name: 'p1' } }]),
        slice('b', [{ addresses: ['10.0.0.1'], targetRef: { kind: 'Pod', name: 'p1' } }]),
      ],
      context,
    );
    expect(instances.map((i) => [i.id, i.healthy])).toEqual([['p1', true]]);
  });

  it('skips FQDN slices and endpoints without an IP with a message each (slices in name order), brackets IPv6', () => {
    const { instances, skipped } = instancesOfSlices(
      [
        slice('v6', [{ addresses: ['fd00::1'] }], { addressType: 'IPv6' }),
        slice('fqdn', [{ addresses: ['db.example.com'] }], { addressType: 'FQDN' }),
        slice('bad', [{ addresses: [] }]),
      ],
      context,
    );
    expect(instances.map((i) => i.address)).toEqual(['[fd00::1]:50051']);
    expect(skipped).toEqual([
      "EndpointSlice 'bad' of service 'orders' lists an endpoint without an IP address ([]); skipped",
      "EndpointSlice 'fqdn' of service 'orders' has addressType FQDN; only IPv4 and IPv6 slices are used",
    ]);
  });

  it('skips malformed data without throwing, keeping the usable endpoints', () => {
    const junk = [
      { metadata: { name: 'a' }, endpoints: 'oops', ports: { name: 'grpc' } },
      { metadata: { name: 'b' }, ports: [{ name: 'grpc', port: 50051 }], endpoints: [null, { addresses: 'x' }] },
      slice('c', [{ addresses: ['10.0.0.9'], conditions: null, zone: 7, targetRef: { name: 42 } }] as never),
    ] as unknown as EndpointSliceObject[];
    const { instances, portProblems, skipped } = instancesOfSlices(junk, context);
    expect(instances.map((i) => [i.address, i.id, i.metadata.zone ?? null])).toEqual([
      ['10.0.0.9:50051', 'k8s-10.0.0.9:50051', null],
    ]);
    expect(portProblems).toHaveLength(1);
    expect(skipped).toHaveLength(2);
  });

  it('prefers grpc, then http, among TCP ports, and says what exists otherwise', () => {
    const ports = (...list: Array<[string, number, string?]>) =>
      slice('s', [], { ports: list.map(([name, port, protocol]) => ({ name, port, protocol: protocol ?? 'TCP' })) });
    expect(choosePort(ports(['http', 8080], ['grpc', 50051]), context)).toBe(50051);
    expect(choosePort(ports(['metrics', 9090], ['http', 8080]), context)).toBe(8080);
    expect(choosePort(ports(['dns', 53, 'UDP'], ['api', 8443]), context)).toBe(8443);
    expect(choosePort(slice('s', [], { ports: [] }), context)).toBe(
      "EndpointSlice 's' of service 'orders' has no TCP port (its ports: none); the Service needs a port for switchyard to call",
    );
  });
});

describe('kubernetes backend_config', () => {
  const settings = (backendConfig: Record<string, unknown>, env: NodeJS.ProcessEnv = {}) =>
    configFor(resolveDiscoveryConfig({ backend: 'kubernetes', backendConfig }, { env }), 'kubernetes').backendConfig;

  it('runs in-cluster when KUBERNETES_SERVICE_HOST is set, else from a kubeconfig, as kubectl does', () => {
    expect(settings({}, { KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443' })).toMatchObject({
      mode: 'in-cluster',
      apiServer: 'https://10.96.0.1:443',
      tokenFile: '/var/run/secrets/kubernetes.io/serviceaccount/token',
      caFile: '/var/run/secrets/kubernetes.io/serviceaccount/ca.crt',
    });
    expect(settings({}, { HOME: '/home/dev' })).toMatchObject({
      mode: 'kubeconfig',
      kubeconfigFiles: ['/home/dev/.kube/config'],
    });
    expect(settings({ context: 'prod' }, { KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBECONFIG: '/a:/b' })).toMatchObject({
      mode: 'kubeconfig',
      kubeconfigFiles: ['/a', '/b'],
    });
    expect(settings({ apiServer: 'https://[fd00::1]:6443' })).toMatchObject({ mode: 'direct', tokenFile: undefined });
    expect(settings({}, { KUBERNETES_SERVICE_HOST: 'fd00::1' }).apiServer).toBe('https://[fd00::1]:443');
  });

  it('rejects contradictions and bad values, naming the field', () => {
    expect(() => settings({ inCluster: true, kubeconfig: '/k' })).toThrow(
      /backendConfig\.kubeconfig: no kubeconfig setting with in_cluster = true/,
    );
    expect(() => settings({ apiServer: 'ftp://x' })).toThrow(
      /backendConfig\.apiServer: an https:\/\/ \(or http:\/\/\) URL/,
    );
    expect(() => settings({ watchTimeout: 0 })).toThrow(/backendConfig\.watchTimeout/);
    expect(() => settings({ portname: 'grpc' })).toThrow(/portname/);
  });
});
