import type { IKeyValue } from 'etcd3';
import { describeError } from '../../registry/etcd/etcd-connection.js';
import type { EtcdRegistry } from '../../registry/etcd/etcd.registry.js';
import { formatSeconds, withDeadline } from '../cli-errors.js';
import type { CheckResult, RegistryAdmin, RemovedInstance, ServiceSummary } from './registry-admin.js';

/**
 * etcd: services are the key segments under the namespace's roots (the
 * layout's `rootsOf`: `{namespace}/services/` in the seed layout, the
 * crate's three for the default namespace, `{prefix}/` in the gRPC naming
 * layout); deregistration deletes the instance's key.
 *
 * @example
 * const admin = new EtcdAdmin(registry, 5_000); await admin.listServices('default');
 */
export class EtcdAdmin implements RegistryAdmin {
  readonly backend = 'etcd';
  readonly target: string;

  constructor(
    private readonly registry: EtcdRegistry,
    private readonly timeoutMs: number,
  ) {
    this.target = registry.settings.hosts.join(',');
  }

  /** The prefixes under which the services of `namespace` live, and the separator after a service name. */
  private roots(namespace: string): Array<{ prefix: string; separator: string }> {
    const { layout } = this.registry;
    return layout.rootsOf(namespace).map((prefix) => ({ prefix, separator: layout.separator }));
  }

  /** Splits a key under a root into service and last segment (instance id, or address in the gRPC naming layout). */
  private split(
    key: string,
    root: { prefix: string; separator: string },
  ): { service: string; tail: string } | undefined {
    if (!key.startsWith(root.prefix)) return undefined;
    const rest = key.slice(root.prefix.length);
    const at = rest.indexOf(root.separator);
    if (at <= 0 || at + root.separator.length >= rest.length) return undefined;
    return { service: rest.slice(0, at), tail: rest.slice(at + root.separator.length) };
  }

  /** Every key under `prefix`, read within the command's deadline. */
  private readUnder(prefix: string): Promise<IKeyValue[]> {
    return withDeadline(
      this.registry.client
        .getAll()
        .prefix(prefix)
        .exec()
        .then((r) => r.kvs),
      this.timeoutMs,
      `read keys under '${prefix}' in etcd at ${this.target}`,
    );
  }

  async listServices(namespace: string): Promise<ServiceSummary[]> {
    const counts = new Map<string, number>();
    for (const root of this.roots(namespace)) {
      const keys = await withDeadline(
        this.registry.client.getAll().prefix(root.prefix).keys(),
        this.timeoutMs,
        `list keys under '${root.prefix}' in etcd at ${this.target}`,
      );
      for (const key of keys) {
        const parts = this.split(key, root);
        if (parts) counts.set(parts.service, (counts.get(parts.service) ?? 0) + 1);
      }
    }
    return [...counts].map(([name, instances]) => ({ name, instances })).sort((a, b) => a.name.localeCompare(b.name));
  }

  async deregister(id: string, namespace: string, service: string | undefined): Promise<RemovedInstance[]> {
    const matches: Array<{ kv: IKeyValue; service: string }> = [];
    const roots = this.roots(namespace);
    const prefixes = service ? this.registry.layout.prefixesOf(service, namespace) : roots.map((r) => r.prefix);
    for (const [i, prefix] of prefixes.entries()) {
      const root = roots[i];
      for (const kv of await this.readUnder(prefix)) {
        const key = kv.key.toString('utf8');
        const parts = this.split(key, root);
        if (!parts) continue;
        let matched = parts.tail === id;
        if (!matched) {
          // The gRPC naming layout keys by address: the id is inside the value.
          const decoded = this.registry.layout.decode(key, kv.value, parts.service, namespace);
          matched = 'instance' in decoded && decoded.instance.id === id;
        }
        if (matched) matches.push({ kv, service: parts.service });
      }
    }
    const removed: RemovedInstance[] = [];
    for (const { kv, service: owner } of matches) {
      const key = kv.key.toString('utf8');
      await withDeadline(
        this.registry.client.delete().key(key).exec(),
        this.timeoutMs,
        `delete key '${key}' in etcd at ${this.target}`,
      );
      const lease = String(kv.lease ?? '0');
      removed.push({
        id,
        service: owner,
        where: `etcd key ${key}`,
        ...(lease !== '0' ? { heldBy: `lease ${lease}` } : {}),
      });
    }
    return removed;
  }

  async check(namespace: string): Promise<CheckResult> {
    const started = Date.now();
    const roots = this.roots(namespace).map((r) => r.prefix);
    const where = `etcd at ${this.target}`;
    // The registry's own probe says whether etcd answers at all (a refusal is an answer).
    const state = await withDeadline(this.registry.reachability.probe(), this.timeoutMs, where).catch(() => undefined);
    if (!state?.reachable) {
      const reason = cleanReason(state?.reason ?? `no answer within ${formatSeconds(this.timeoutMs)}`);
      return { ok: false, message: `${where} is unreachable: ${reason}`, detail: { reachable: false, reason } };
    }
    try {
      // Authenticates (when auth is configured) and needs read access to the namespace.
      const status = await withDeadline(this.registry.client.maintenance.status(), this.timeoutMs, where);
      let keys = 0;
      for (const root of roots)
        keys += await withDeadline(this.registry.client.getAll().prefix(root).count(), this.timeoutMs, where);
      const latencyMs = Date.now() - started;
      const under = roots.map((r) => `'${r}'`).join(', ');
      return {
        ok: true,
        message: `${where} answered in ${latencyMs} ms (etcd ${status.version}, ${keys} key${keys === 1 ? '' : 's'} under ${under})`,
        detail: {
          reachable: true,
          version: status.version,
          leader: String(status.leader),
          keys,
          prefixes: roots,
          latencyMs,
        },
      };
    } catch (error) {
      const reason = cleanReason(describeError(error));
      return {
        ok: false,
        message: `${where} answered but refused: ${reason}`,
        detail: { reachable: true, refused: true, reason },
      };
    }
  }

  async close(): Promise<void> {
    // The registry owns the client; closing it is the session's job.
  }
}

/** grpc-js ends some messages with an empty "Resolution note:"; it says nothing. */
function cleanReason(reason: string): string {
  return reason.replace(/\.?\s*Resolution note:\s*$/, '').trim();
}
