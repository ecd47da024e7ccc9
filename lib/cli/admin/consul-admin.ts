import { ConsulHttp, ConsulRequestError, type ConsulRequest } from '../../registry/consul/consul-http.js';
import { fromHealthEntry } from '../../registry/consul/consul-service-codec.js';
import type { ConsulRegistry } from '../../registry/consul/consul.registry.js';
import { CommandFailure } from '../cli-errors.js';
import type {
  CheckResult,
  RegistryAdmin,
  RemovedInstance,
  ServiceSummary,
  UnservedInstance,
} from './registry-admin.js';

/** Health queries in flight at once while counting instances per service. */
const LIST_CONCURRENCY = 8;

interface HealthCheck {
  Status?: unknown;
  Output?: unknown;
  Name?: unknown;
}

/**
 * Consul: services from the catalog (`/v1/catalog/services`), instance
 * counts from their passing health, deregistration through the agent
 * (`/v1/agent/service/deregister/<id>`: only the agent holding a
 * registration can remove it). Uses the backend's own HTTP connection
 * class, so TLS, the ACL token and redaction work the same way.
 *
 * @example
 * const admin = new ConsulAdmin(registry, 5_000); await admin.check('default', undefined);
 */
export class ConsulAdmin implements RegistryAdmin {
  readonly backend = 'consul';
  readonly target: string;
  private readonly http: ConsulHttp;

  constructor(
    registry: ConsulRegistry,
    private readonly timeoutMs: number,
  ) {
    this.http = new ConsulHttp(registry.settings);
    this.target = registry.settings.displayUrl;
  }

  private async get(path: string, what: string, query: ConsulRequest['query'] = {}): Promise<unknown> {
    const dc = this.http.settings.datacenter;
    const response = await this.http.send({
      method: 'GET',
      path,
      what,
      timeoutMs: this.timeoutMs,
      query: { ...query, ...(dc ? { dc } : {}) },
    });
    if (response.status !== 200) throw this.http.failure(response, what);
    try {
      return JSON.parse(response.body);
    } catch {
      throw new CommandFailure(`${what}: the consul agent at ${this.target} answered something that is not JSON`);
    }
  }

  private async health(service: string, passingOnly: boolean): Promise<unknown[]> {
    const body = await this.get(
      `/health/service/${encodeURIComponent(service)}`,
      `query health of service '${service}'`,
      passingOnly ? { passing: '1' } : {},
    );
    return Array.isArray(body) ? body : [];
  }

  async listServices(namespace: string): Promise<ServiceSummary[]> {
    const catalog = await this.get('/catalog/services', 'list the catalog services');
    const names = catalog && typeof catalog === 'object' ? Object.keys(catalog).sort((a, b) => a.localeCompare(b)) : [];
    const summaries: ServiceSummary[] = [];
    for (let i = 0; i < names.length; i += LIST_CONCURRENCY) {
      const batch = names.slice(i, i + LIST_CONCURRENCY);
      const counted = await Promise.all(
        batch.map(async (name) => {
          let instances = 0;
          for (const entry of await this.health(name, true)) {
            try {
              if (fromHealthEntry(entry).namespace === namespace) instances++;
            } catch {
              // Not decodable as an instance (e.g. consul's own service without a port): not ours to count.
            }
          }
          return { name, instances };
        }),
      );
      summaries.push(...counted);
    }
    return summaries;
  }

  async unservedInstances(service: string, namespace: string): Promise<UnservedInstance[]> {
    const unserved: UnservedInstance[] = [];
    for (const entry of await this.health(service, false)) {
      const checks = ((entry as { Checks?: unknown }).Checks ?? []) as HealthCheck[];
      const failing = Array.isArray(checks) ? checks.filter((c) => c && c.Status !== 'passing') : [];
      if (failing.length === 0) continue;
      let instance;
      try {
        instance = fromHealthEntry(entry);
      } catch {
        continue;
      }
      if (instance.namespace !== namespace) continue;
      const reason = failing
        .map(
          (c) =>
            `${String(c.Status)}${typeof c.Output === 'string' && c.Output ? `: ${c.Output.trim().split('\n')[0]}` : ''}`,
        )
        .join('; ');
      unserved.push({ instance: { ...instance, healthy: false }, reason });
    }
    return unserved;
  }

  async deregister(id: string, _namespace: string, service: string | undefined): Promise<RemovedInstance[]> {
    const what = `read registration of instance '${id}'`;
    const found = await this.http.send({
      method: 'GET',
      path: `/agent/service/${encodeURIComponent(id)}`,
      what,
      timeoutMs: this.timeoutMs,
    });
    if (found.status === 404) return [];
    if (found.status !== 200) throw this.http.failure(found, what);
    let owner: string | undefined;
    try {
      owner = (JSON.parse(found.body) as { Service?: string }).Service;
    } catch {
      owner = undefined;
    }
    if (service !== undefined && owner !== undefined && owner !== service) {
      throw new CommandFailure(`instance '${id}' belongs to service '${owner}', not '${service}': nothing removed`);
    }
    const remove = `deregister instance '${id}'`;
    const response = await this.http.send({
      method: 'PUT',
      path: `/agent/service/deregister/${encodeURIComponent(id)}`,
      what: remove,
      timeoutMs: this.timeoutMs,
    });
    if (response.status !== 200) throw this.http.failure(response, remove);
    return [{ id, service: owner, where: `the registration held by the consul agent at ${this.target}` }];
  }

  async check(): Promise<CheckResult> {
    const started = Date.now();
    const where = `consul agent at ${this.target}`;
    let leader: unknown;
    try {
      // Needs no ACL token: tells "unreachable" apart from "forbidden".
      leader = await this.get('/status/leader', 'read the cluster leader');
    } catch (error) {
      if (error instanceof ConsulRequestError && error.noAnswer) {
        const reason = error.detail || error.kind;
        return { ok: false, message: `${where} is unreachable: ${reason}`, detail: { reachable: false, reason } };
      }
      const reason = (error as Error).message;
      return { ok: false, message: reason, detail: { reachable: true, reason } };
    }
    if (typeof leader !== 'string' || leader === '') {
      return {
        ok: false,
        message: `${where} answered, but its cluster has no leader (requests would fail)`,
        detail: { reachable: true, leader: null },
      };
    }
    try {
      const catalog = await this.get('/catalog/services', 'list the catalog services');
      const services = catalog && typeof catalog === 'object' ? Object.keys(catalog).length : 0;
      const latencyMs = Date.now() - started;
      return {
        ok: true,
        message: `${where} answered in ${latencyMs} ms (leader ${leader}, ${services} service${services === 1 ? '' : 's'} in the catalog)`,
        detail: { reachable: true, leader, services, latencyMs },
      };
    } catch (error) {
      const reason = (error as Error).message;
      return {
        ok: false,
        message: `${where} answered but refused: ${reason}`,
        detail: { reachable: true, refused: true, reason },
      };
    }
  }

  async close(): Promise<void> {
    this.http.close();
  }
}
