import { firstValueFrom } from 'rxjs';
import type { ResolvedDiscoveryConfig } from '../../core/config/resolve-discovery-config.js';
import type { Registry } from '../../registry/registry.interface.js';
import { UsageError, withDeadline } from '../cli-errors.js';
import type { CheckResult, RegistryAdmin, ServiceSummary } from './registry-admin.js';

/**
 * Backends without an operator API of their own (static, dns, mesh,
 * memory): `check` asks the registry for a service and looks at the answer
 * (`stale` means unreachable); static lists its one configured service.
 *
 * @example
 * await new GenericAdmin(registry, config, 5_000).check('default', 'orders');
 */
export class GenericAdmin implements RegistryAdmin {
  readonly backend: string;
  readonly target: string;
  readonly listServices?: (namespace: string) => Promise<ServiceSummary[]>;

  constructor(
    private readonly registry: Registry,
    private readonly config: ResolvedDiscoveryConfig,
    private readonly timeoutMs: number,
  ) {
    this.backend = registry.backend;
    this.target = targetOf(config);
    if (config.backend === 'static') {
      const count = config.backendConfig.addresses.length;
      this.listServices = async () => (config.serviceType ? [{ name: config.serviceType, instances: count }] : []);
    }
  }

  async check(namespace: string, service: string | undefined): Promise<CheckResult> {
    const name = service ?? this.config.serviceType;
    if (!name) {
      if (this.backend === 'static' || this.backend === 'memory') {
        return { ok: true, message: `the ${this.backend} backend has nothing to reach`, detail: {} };
      }
      throw new UsageError(
        `'check' on the ${this.backend} backend needs a service to ask for: switchyard check <service> (or backend_config.service_type)`,
      );
    }
    const started = Date.now();
    const set = await withDeadline(
      firstValueFrom(this.registry.watch({ service: name, namespace })),
      this.timeoutMs,
      `${this.backend} (${this.target})`,
    );
    if (set.state === 'stale') {
      return {
        ok: false,
        message: `${this.backend} (${this.target}) is unreachable: ${set.reason ?? 'no answer'}`,
        detail: { reachable: false, reason: set.reason },
      };
    }
    const latencyMs = Date.now() - started;
    return {
      ok: true,
      message: `${this.backend} (${this.target}) answered in ${latencyMs} ms: ${set.size} instance${set.size === 1 ? '' : 's'} of '${name}'`,
      detail: { reachable: true, service: name, instances: set.size, latencyMs },
    };
  }

  async close(): Promise<void> {
    // The registry is closed by the session.
  }
}

/** What the backend asks, for messages: its addresses, nameservers or xDS server. */
function targetOf(config: ResolvedDiscoveryConfig): string {
  switch (config.backend) {
    case 'static':
      return `addresses ${config.backendConfig.addresses.join(',') || '(none)'}`;
    case 'dns': {
      const { nameservers, domain } = config.backendConfig;
      return `nameservers ${nameservers.join(',') || '(system)'}${domain ? `, domain ${domain}` : ''}`;
    }
    case 'mesh':
      return `xDS server ${config.backendConfig.server.display}`;
    default:
      return 'this process';
  }
}
