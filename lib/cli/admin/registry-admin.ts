import type { ServiceInstance } from '../../core/service-instance.js';

/** One service a registry knows, for `switchyard ls`. */
export interface ServiceSummary {
  name: string;
  /** Instances in the namespace (live ones, for backends that can tell). */
  instances: number;
}

/** One record `switchyard deregister` removed. */
export interface RemovedInstance {
  id: string;
  service: string | undefined;
  /** What was removed: the etcd key, the instance file, the agent. */
  where: string;
  /** Set when a running process still holds the registration (it may write it again at its next heartbeat). */
  heldBy?: string;
}

/** A registered instance the registry does not serve (failing checks), shown by `ls <service>`. */
export interface UnservedInstance {
  instance: ServiceInstance;
  /** Why it is not served, e.g. `critical: TTL expired`. */
  reason: string;
}

/** The answer of `switchyard check`. */
export interface CheckResult {
  ok: boolean;
  /** One sentence for people. */
  message: string;
  /** Extra facts for `--json` (versions, leader, counts). */
  detail: Record<string, unknown>;
}

/**
 * Operator operations the `Registry` interface does not have (listing
 * services, removing someone else's instance, a connectivity check),
 * implemented per backend with the backend's own classes. Optional methods
 * are absent where a backend cannot offer them.
 *
 * @example
 * const admin = openRegistryAdmin(registry, config, 5_000); const services = await admin.listServices?.('default');
 */
export interface RegistryAdmin {
  readonly backend: string;
  /** Where the registry is (URLs, folder): safe to print, never holds a secret. */
  readonly target: string;
  /** The services with instances in `namespace`. */
  listServices?(namespace: string): Promise<ServiceSummary[]>;
  /** Registered instances of `service` the registry does not serve (e.g. Consul instances failing their checks). */
  unservedInstances?(service: string, namespace: string): Promise<UnservedInstance[]>;
  /** Removes instance `id` (of `service` when given); returns what was removed (empty: not found). */
  deregister?(id: string, namespace: string, service: string | undefined): Promise<RemovedInstance[]>;
  /** Can the registry be reached, and does it let us in? Never throws for an unreachable registry. */
  check(namespace: string, service: string | undefined): Promise<CheckResult>;
  close(): Promise<void>;
}
