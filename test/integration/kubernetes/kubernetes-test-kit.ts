import type { Observable, Subscription } from 'rxjs';
import { resolveDiscoveryConfig } from '../../../lib/core/config/resolve-discovery-config.js';
import type { DiscoveryQuery } from '../../../lib/core/discovery-query.js';
import type { EndpointSet } from '../../../lib/core/endpoint-set.js';
import { createRegistry, type KubernetesRegistry } from '../../../lib/registry/kubernetes/kubernetes.registry.js';
import type { DiscoveryLogger } from '../../../lib/registry/registry.interface.js';
import type { KubernetesApiPeer } from '../../support/kubernetes/kubernetes-api-peer.js';

/** A logger that keeps what it was told, by level. */
export class RecordingLogger implements DiscoveryLogger {
  readonly infos: string[] = [];
  readonly warnings: string[] = [];
  readonly errors: string[] = [];
  log(message: string): void {
    this.infos.push(message);
  }
  warn(message: string): void {
    this.warnings.push(message);
  }
  error(message: string): void {
    this.errors.push(message);
  }
}

/** A reader allowed to list and watch endpointslices in `namespaces`, with one token. */
export function reader(token: string, namespaces: string[] = ['shop']) {
  return { tokens: [token], rules: [{ verbs: ['list', 'watch'], namespaces }] };
}

/**
 * A kubernetes registry as createRegistry builds it, from camelCase
 * `backend_config`; `refreshInterval` (seconds) is how long a quiet watch
 * waits before checking the server and the longest retry delay.
 */
export async function kubernetesRegistry(
  backendConfig: Record<string, unknown>,
  options: { refreshInterval?: number; env?: NodeJS.ProcessEnv; logger?: RecordingLogger } = {},
): Promise<{ registry: KubernetesRegistry; logger: RecordingLogger }> {
  const logger = options.logger ?? new RecordingLogger();
  const config = resolveDiscoveryConfig(
    { backend: 'kubernetes', backendConfig, refreshInterval: options.refreshInterval ?? 1 },
    { env: options.env ?? {} },
  );
  const registry = (await createRegistry({ config, logger })) as KubernetesRegistry;
  return { registry, logger };
}

/** `backend_config` for a kubeconfig with a token for `api`, namespace `shop` by default. */
export function kubeconfigFor(
  api: KubernetesApiPeer,
  token: string,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    kubeconfig: api.writeKubeconfig(`${token}.kubeconfig`, { token }, { namespace: 'shop' }),
    requestTimeout: 1,
    ...extra,
  };
}

/** Every emission of a watch. */
export class SetRecorder {
  readonly sets: EndpointSet[] = [];
  private readonly subscription: Subscription;

  constructor(source: Observable<EndpointSet>) {
    this.subscription = source.subscribe((set) => this.sets.push(set));
  }

  static of(registry: { watch(q: DiscoveryQuery): Observable<EndpointSet> }, query: DiscoveryQuery): SetRecorder {
    return new SetRecorder(registry.watch(query));
  }

  get last(): EndpointSet | undefined {
    return this.sets.at(-1);
  }

  /** Sorted addresses of the latest set, with ` (draining)` after those not served. */
  addresses(): string[] {
    return (this.last?.endpoints ?? []).map((e) => `${e.address}${e.instance.healthy ? '' : ' (draining)'}`).sort();
  }

  unsubscribe(): void {
    this.subscription.unsubscribe();
  }
}
