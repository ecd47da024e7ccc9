import { Observable, type Subscriber } from 'rxjs';
import { compileQuery, type DiscoveryQuery } from '../../core/discovery-query.js';
import { EndpointSet } from '../../core/endpoint-set.js';
import { ClosedError, ConfigurationError, RegistrationError } from '../../core/errors.js';
import type { ServiceInstance } from '../../core/service-instance.js';
import type { BackendFactory } from '../backend-context.js';
import type { DiscoveryLogger, Registration, RegistrationTiming, Registry } from '../registry.interface.js';
import { EtcdConnection, type Etcd3Library, type EtcdConnectionStatus } from './etcd-connection.js';
import { keyLayoutFor, type EtcdKeyLayout } from './etcd-key-layout.js';
import { PrefixWatch } from './etcd-prefix-watch.js';
import { EtcdRegistration } from './etcd-registration.js';
import { resolveEtcdSettings, type EtcdSettings } from './etcd-settings.js';

export { EtcdConnection, type EtcdConnectionState, type EtcdConnectionStatus } from './etcd-connection.js';
export { GrpcNamingLayout, SeedLayout, keyLayoutFor, type EtcdKeyLayout } from './etcd-key-layout.js';
export { EtcdRegistration } from './etcd-registration.js';
export { resolveEtcdSettings, MAX_VALUE_BYTES, type EtcdSettings } from './etcd-settings.js';

/** Smallest registration TTL etcd handles well (its lease minimum is about 1.5 s on default election settings). */
const MIN_TTL_MS = 2_000;

interface SharedWatch {
  readonly watch: PrefixWatch;
  readonly listeners: Set<() => void>;
}

/**
 * The `etcd` backend. Registrations are keys under leases kept alive by
 * heartbeats and restored after lease loss; discovery is a range read plus a
 * watch per service prefix, re-read after compaction or reconnection, and
 * served `stale` (last known good) while etcd is unreachable.
 *
 * For the health layer: `reachable` / `connectionStatus` tell whether etcd
 * answered the last request, `connectionState$` streams the changes, and
 * `checkReachable()` asks etcd now.
 *
 * @example
 * const registry = await createRegistry({ config: resolveDiscoveryConfig({ backend: 'etcd', backendConfig: { endpoints: ['http://127.0.0.1:2379'] } }), logger: consoleLogger });
 */
export class EtcdRegistry implements Registry {
  readonly backend = 'etcd';
  readonly readOnly = false;
  readonly layout: EtcdKeyLayout;
  private readonly connection: EtcdConnection;
  private readonly registrations = new Set<EtcdRegistration>();
  private readonly watches = new Map<string, SharedWatch>();
  private readonly subscribers = new Set<Subscriber<EndpointSet>>();
  private readonly closingWatches = new Set<Promise<void>>();
  private closed = false;

  constructor(
    lib: Etcd3Library,
    readonly settings: EtcdSettings,
    private readonly logger: DiscoveryLogger,
  ) {
    this.connection = new EtcdConnection(lib, settings, logger);
    this.layout = keyLayoutFor(settings);
  }

  /** Reachability changes: `connecting`, `reachable`, `unreachable` (with a reason), `closed`. Replays the current state. */
  get connectionState$(): Observable<EtcdConnectionStatus> {
    return this.connection.status$;
  }

  /** The latest reachability observation. */
  get connectionStatus(): EtcdConnectionStatus {
    return this.connection.current;
  }

  /** True when etcd answered the most recent request or probe. */
  get reachable(): boolean {
    return this.connection.reachable;
  }

  /** The underlying etcd3 client (for diagnostics; do not close it). */
  get client(): EtcdConnection['client'] {
    return this.connection.client;
  }

  /** Asks etcd now (one request with the request timeout); updates `reachable`. */
  checkReachable(): Promise<boolean> {
    if (this.closed) return Promise.resolve(false);
    return this.connection.probe();
  }

  /** Fails with a clear error unless etcd answers within the dial timeout. */
  verifyConnection(): Promise<void> {
    return this.connection.verify();
  }

  async register(instance: ServiceInstance, timing: RegistrationTiming): Promise<Registration> {
    if (this.closed) throw new ClosedError('etcd registry is closed');
    checkTiming(timing);
    const key = this.layout.keyOf(instance);
    // Watchers skip values over the limit, so writing one would register an invisible instance.
    const size = Buffer.byteLength(this.layout.encode(instance));
    if (size > this.settings.maxValueBytes) {
      throw new RegistrationError(
        `Instance '${instance.id}' encodes to ${size} bytes under ${key}, over the ${this.settings.maxValueBytes}-byte limit (trim tags or metadata)`,
      );
    }
    for (const existing of this.registrations) {
      if (existing.etcdKey === key) {
        throw new RegistrationError(
          `Instance id '${instance.id}' is already registered by this registry under etcd key ${key}`,
        );
      }
    }
    const registration = new EtcdRegistration(instance, timing, this.connection, this.layout, this.logger, (r) =>
      this.registrations.delete(r),
    );
    this.registrations.add(registration);
    await registration.start(this.settings.strict);
    return registration;
  }

  watch(query: DiscoveryQuery): Observable<EndpointSet> {
    const compiled = compileQuery(query);
    return new Observable<EndpointSet>((subscriber) => {
      if (this.closed) {
        subscriber.complete();
        return undefined;
      }
      let current = EndpointSet.initial(query.service);
      let emitted = false;
      const shared = this.acquireWatch(query.service, compiled.namespace);
      const render = () => {
        const state = shared.watch.state;
        if (state.kind === 'pending') return;
        const next =
          state.kind === 'stale' ? current.stale(state.reason) : current.next(state.instances.filter(compiled.matches));
        if (next === current && emitted) return;
        current = next;
        emitted = true;
        subscriber.next(current);
      };
      shared.listeners.add(render);
      this.subscribers.add(subscriber);
      render();
      return () => {
        this.subscribers.delete(subscriber);
        shared.listeners.delete(render);
        if (shared.listeners.size === 0) this.releaseWatch(shared);
      };
    });
  }

  private acquireWatch(service: string, namespace: string): SharedWatch {
    const id = `${this.layout.prefixOf(service, namespace)}\u0000${namespace}`;
    let shared = this.watches.get(id);
    if (!shared) {
      const listeners = new Set<() => void>();
      const watch = new PrefixWatch(this.connection, this.layout, service, namespace, this.logger, () => {
        for (const listener of [...listeners]) listener();
      });
      shared = { watch, listeners };
      this.watches.set(id, shared);
    }
    return shared;
  }

  private releaseWatch(shared: SharedWatch): void {
    for (const [id, candidate] of this.watches) {
      if (candidate === shared) this.watches.delete(id);
    }
    const closing = shared.watch.close().finally(() => this.closingWatches.delete(closing));
    this.closingWatches.add(closing);
  }

  /** Deregisters every registration (revoking its lease), stops every watch, closes the client. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([...this.registrations].map((r) => r.deregister()));
    for (const subscriber of [...this.subscribers]) subscriber.complete();
    for (const shared of [...this.watches.values()]) this.releaseWatch(shared);
    await Promise.all([...this.closingWatches]);
    this.connection.close();
  }
}

function checkTiming(timing: RegistrationTiming): void {
  if (!timing || !Number.isFinite(timing.ttlMs) || timing.ttlMs < MIN_TTL_MS) {
    throw ConfigurationError.single(
      'registration.ttl',
      timing?.ttlMs === undefined ? undefined : timing.ttlMs / 1000,
      `a TTL of at least ${MIN_TTL_MS / 1000} seconds for etcd leases`,
    );
  }
  if (!Number.isFinite(timing.heartbeatMs) || timing.heartbeatMs <= 0 || timing.heartbeatMs >= timing.ttlMs) {
    throw ConfigurationError.single(
      'registration.heartbeat_interval',
      timing.heartbeatMs / 1000,
      `a heartbeat interval greater than 0 and smaller than the TTL (${timing.ttlMs / 1000} s)`,
    );
  }
}

/**
 * Loads the optional `etcd3` package, or explains how to install it.
 *
 * @example
 * const etcd3 = await loadEtcd3();
 */
export async function loadEtcd3(importer: () => Promise<unknown> = () => import('etcd3')): Promise<Etcd3Library> {
  let loaded: unknown;
  try {
    loaded = await importer();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') {
      throw ConfigurationError.single(
        'backend',
        'etcd',
        "the optional package 'etcd3' to be installed for the etcd backend (npm install etcd3@^1.1.2)",
      );
    }
    throw error;
  }
  const lib = loaded as Etcd3Library & { default?: Etcd3Library };
  return typeof lib.Etcd3 === 'function' ? lib : lib.default!;
}

/** Factory used by `createRegistry` for `backend = "etcd"`. */
export const createRegistry: BackendFactory = async ({ config, logger }) => {
  // Configuration first: a bad option is reported even without etcd3 installed.
  const settings = resolveEtcdSettings(config);
  const lib = await loadEtcd3();
  const registry = new EtcdRegistry(lib, settings, logger);
  if (settings.strict) {
    try {
      await registry.verifyConnection();
    } catch (error) {
      await registry.close();
      throw error;
    }
  } else {
    // Learn the state early for the health layer; the app starts either way.
    // (An unreachable etcd is logged by the connection, once per outage.)
    void registry.checkReachable();
  }
  return registry;
};
