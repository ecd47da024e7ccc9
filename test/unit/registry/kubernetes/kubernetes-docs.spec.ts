import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { parseDiscoveryConfig } from '../../../../lib/core/config/load-discovery-config.js';
import { configFor } from '../../../../lib/registry/backend-context.js';

const PAGE = readFileSync(join(import.meta.dirname, '../../../../docs/backends/kubernetes.md'), 'utf8');

function blocks(language: string): string[] {
  return [...PAGE.matchAll(new RegExp('```' + language + '\\n([\\s\\S]*?)```', 'g'))].map((m) => m[1]);
}

describe('docs/backends/kubernetes.md', () => {
  it('shows TOML the loader accepts, in a pod and outside one', () => {
    const [inPod, drain, outside] = blocks('toml');
    const pod = parseDiscoveryConfig(inPod, 'toml', 'in a pod', {
      env: { KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443' },
    });
    expect(configFor(pod, 'kubernetes').backendConfig).toMatchObject({ mode: 'in-cluster', serviceType: 'orders' });
    expect(parseDiscoveryConfig(drain, 'toml').registration.drainMs).toBe(5000);
    const dev = parseDiscoveryConfig(`[discovery]\nbackend = "kubernetes"\n${outside}`, 'toml', 'outside', { env: {} });
    expect(configFor(dev, 'kubernetes').backendConfig).toMatchObject({ mode: 'kubeconfig', context: 'staging' });
  });

  it('shows RBAC and workload YAML of the kinds it names, with list and watch on endpointslices', () => {
    const objects = blocks('yaml').flatMap((text) =>
      parseAllDocuments(text).map((d) => d.toJS() as Record<string, any>),
    );
    expect(objects.map((o) => o.kind)).toEqual(['ServiceAccount', 'Role', 'RoleBinding', 'Deployment', 'Service']);
    const role = objects[1];
    expect(role.rules).toEqual([
      { apiGroups: ['discovery.k8s.io'], resources: ['endpointslices'], verbs: ['list', 'watch'] },
    ]);
    expect(objects[2].roleRef.name).toBe(role.metadata.name);
    expect(objects[3].spec.template.spec.containers[0].readinessProbe.grpc.port).toBe(50051);
  });
});
