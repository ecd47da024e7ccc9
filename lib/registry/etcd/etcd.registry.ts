// The etcd backend's facade (registrations, shared prefix watches, layouts,
// reachability); over 300 lines because each entry point documents its contract.
import type { Observable } from 'rxjs';
import { compileQuery, type CompiledQuery, type DiscoveryQuery } from '../../core/discovery-query.js';
import type { EndpointSet } from '../../core/endpoint-set.js';
import { ClosedError, ConfigurationError, RegistrationError } from '../../core/errors.js';
import { importOptionalPeer } from '../../core/optional-peer.js';
import type { ServiceInstance } from '../../core/service-instance.js';
import { configFor, type BackendFactory } from '../backend-context.js';
import type { DiscoveryLogger, Registration, RegistrationTiming, Registry } from '../registry.interface.js';
import { EndpointWatches } from '../shared/endpoint-watches.js';
import type { Reachability } from '../shared/reachability.js';
import { EtcdConnection, type Etcd3Library } from './etcd-connection.js';
import { keyLayoutFor, type EtcdKeyLayout } from './etcd-key-layout.js';
import { endpointKeyOf } from '../../core/endpoint.js';
import { prefixEnd, PrefixWatch, type PrefixChanges, type PrefixWatchState } from './etcd-prefix-watch.js';
import { EtcdRegistration } from './etcd-registration.js';
import { SeedSlashLayout } from './etcd-seed-layouts.js';
import type { EtcdSettings } from './etcd.schema.js';

export { EtcdConnection } from './etcd-connection.js';
export { GrpcNamingLayout, keyLayoutFor, type EtcdKeyLayout } from './etcd-key-layout.js';
export { SeedLayout, SeedSlashLayout, toCrateRecord, type CrateInstanceRecord } from './etcd-seed-layouts.js';
export { EtcdRegistration } from './etcd-registration.js';
export { MAX_VALUE_BYTES, type EtcdSettings } from './etcd.schema.js';

/** Smallest registration TTL etcd handles well (its lease minimum is about 1.5 s on default election settings). */
const MIN_TTL_MS = 2_000;

/** Called after a prefix of the shared watch changed: with what changed, or without (take it all). */
type WatchListener = (source: PrefixWatch, changes?: PrefixChanges) => void;

/** The prefix watches of one service in one namespace (one prefix, or the crate's three roots). */
interface SharedWatch {
  readonly watches: readonly PrefixWatch[];
  readonly listeners: Set<WatchListener>;
}

/** Options of {@link EtcdRegistry} that are not etcd settings. */
export interface EtcdRegistryOptions {
  /** Whether `close()` revokes the registrations' leases (default true); false leaves their keys to expire with the TTL. */
  deregisterOnClose?: boolean;
}

/**
 * The `etcd` backend. Registrations are keys under leases kept alive by
 * heartbeats and restored after lease loss; discovery is a range read plus a
 * watch per service prefix (the `seed` layout reads three for the default
 * namespace, as the Rust crate does), re-read after compaction or
 * reconnection, and served `stale` (last known good) while etcd is
 * unreachable. `reachability` says whether etcd answered the last request or probe.
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
  private readonly prefixWatches = new Map<string, SharedWatch>();
  private readonly watches = new EndpointWatches();
  private readonly closingWatches = new Set<Promise<void>>();
  /** Prefixes of the `seed-slash` layout already checked for leftover keys. */
  private readonly slashKeysChecked = new Set<string>();
  private closed = false;

  constructor(
    lib: Etcd3Library,
    readonly settings: EtcdSettings,
    private readonly logger: DiscoveryLogger,
    private readonly options: EtcdRegistryOptions = {},
  ) {
    this.connection = new EtcdConnection(lib, settings, logger);
    this.layout = keyLayoutFor(settings);
  }

  get reachability(): Reachability {
    return this.connection.reachability;
  }

  /** The weight of an instance registered without one: 100 in the `seed` layout (the crate's default), else 1. */
  get defaultWeight(): number {
    return this.layout.defaultWeight;
  }

  /** The underlying etcd3 client (for diagnostics; do not close it). */
  get client(): EtcdConnection['client'] {
    return this.connection.client;
  }

  /** Fails with a clear error unless etcd answers within the dial timeout. */
  verifyConnection(): Promise<void> {
    return this.connection.verify();
  }

  async register(instance: ServiceInstance, timing: RegistrationTiming): Promise<Registration> {
    if (this.closed) throw new ClosedError('etcd registry is closed');
    checkTiming(timing);
    this.layout.checkWritable(instance);
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
    const registration: EtcdRegistration = new EtcdRegistration(
      instance,
      timing,
      this.connection,
      this.layout,
      this.logger,
      () => this.registrations.delete(registration),
    );
    this.registrations.add(registration);
    await registration.start(this.settings.strict);
    return registration;
  }

  watch(query: DiscoveryQuery): Observable<EndpointSet> {
    const compiled = compileQuery(query);
    const matches = this.layout.readsEveryNamespace(compiled.namespace) ? inAnyNamespace(query) : compiled.matches;
    return this.watches.stream(query.service, (publisher) => {
      const shared = this.acquireWatch(query.service, compiled.namespace);
      // Whether the publisher's set is the filtered caches: then a change can be published as a diff.
      let inSync = false;
      const render: WatchListener = (source, changes) => {
        const merged = mergeStates(shared.watches.map((w) => w.state));
        if (merged.kind === 'stale') {
          publisher.publishStale(merged.reason);
          if (changes?.size) inSync = false;
          return;
        }
        if (merged.kind !== 'ok') {
          if (changes?.size) inSync = false;
          return;
        }
        if (changes && inSync && publisher.hasPublished && this.diffable(shared, source)) {
          publishChanges(publisher, source, changes, matches);
          return;
        }
        const instances: ServiceInstance[] = [];
        for (const watch of shared.watches) {
          if (watch.state.kind !== 'ok') continue;
          for (const instance of watch.instances()) if (matches(instance)) instances.push(instance);
        }
        publisher.publish(instances);
        inSync = true;
      };
      shared.listeners.add(render);
      render(shared.watches[0]);
      return () => {
        shared.listeners.delete(render);
        if (shared.listeners.size === 0) this.releaseWatch(shared);
      };
    });
  }

  /**
   * Whether a change of `source` can be published as a diff: the layout
   * names each instance by its key (no two keys of a prefix give one
   * endpoint), and no other prefix of the service holds records (the same
   * instance under two roots would be one endpoint from two sources).
   */
  private diffable(shared: SharedWatch, source: PrefixWatch): boolean {
    if (!this.layout.keyNamesInstance) return false;
    for (const watch of shared.watches) if (watch !== source && watch.size > 0) return false;
    return true;
  }

  private acquireWatch(service: string, namespace: string): SharedWatch {
    const prefixes = this.layout.prefixesOf(service, namespace);
    const id = `${prefixes.join('\u0000')}\u0000${namespace}`;
    let shared = this.prefixWatches.get(id);
    if (!shared) {
      const listeners = new Set<WatchListener>();
      const watches: PrefixWatch[] = [];
      for (const prefix of prefixes) {
        const watch: PrefixWatch = new PrefixWatch(
          this.connection,
          this.layout,
          prefix,
          service,
          namespace,
          this.logger,
          (changes) => {
            for (const listener of [...listeners]) listener(watch, changes);
          },
        );
        watches.push(watch);
      }
      shared = { watches, listeners };
      this.prefixWatches.set(id, shared);
      if (this.layout.name === 'seed') void this.warnAboutSlashKeys(service, namespace);
    }
    return shared;
  }

  /**
   * The default layout changed from `seed-slash` (switchyard 0.1) to the
   * crate's `seed`. Without a prefix their keys differ by the leading
   * slash, so an upgraded app would not see instances still registered the
   * old way: say so once per service, with the fix.
   */
  private async warnAboutSlashKeys(service: string, namespace: string): Promise<void> {
    if (this.settings.prefix !== '') return;
    const [prefix] = new SeedSlashLayout('', this.settings.separator).prefixesOf(service, namespace);
    if (this.slashKeysChecked.has(prefix)) return;
    this.slashKeysChecked.add(prefix);
    try {
      const key = Buffer.from(prefix);
      const answer = await this.connection.reads.run(() =>
        this.connection.call('range', (options) =>
          this.connection.client.kv.range({ key, range_end: prefixEnd(key), count_only: true }, options),
        ),
      );
      const count = Number(answer.count);
      if (count > 0 && !this.closed) {
        this.logger.warn(
          `etcd has ${count} key(s) under ${prefix}: instances registered in the seed-slash layout of switchyard 0.1, ` +
            `which this app (layout "seed", now the default) does not read. Until every app writes the new ` +
            `layout, set backend_config.layout = "seed-slash" in all of them (see docs/backends/etcd.md)`,
        );
      }
    } catch {
      // Only a hint: a refusal (e.g. no permission on that prefix) or an outage says nothing about it.
    }
  }

  private releaseWatch(shared: SharedWatch): void {
    for (const [id, candidate] of this.prefixWatches) {
      if (candidate === shared) this.prefixWatches.delete(id);
    }
    const closing = Promise.all(shared.watches.map((w) => w.close()))
      .then(() => undefined)
      .finally(() => this.closingWatches.delete(closing));
    this.closingWatches.add(closing);
  }

  /**
   * Deregisters every registration (revoking its lease; with
   * `deregisterOnClose: false` the keys expire with their TTL instead),
   * stops every watch, closes the client.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const deregister = this.options.deregisterOnClose ?? true;
    await Promise.all([...this.registrations].map((r) => (deregister ? r.deregister() : r.stop())));
    this.watches.close();
    for (const shared of [...this.prefixWatches.values()]) this.releaseWatch(shared);
    await Promise.all([...this.closingWatches]);
    this.connection.close();
  }
}

/**
 * One state for several prefixes: pending until each has answered, stale
 * while any is stale, and otherwise `ok` over those etcd let us read (a
 * refused prefix is left out, and logged by its watch, unless every one
 * was refused).
 */
function mergeStates(
  states: readonly PrefixWatchState[],
): { kind: 'pending' } | { kind: 'stale'; reason: string } | { kind: 'ok' } {
  const stale = states.find((s) => s.kind === 'stale');
  if (stale) return stale;
  if (states.some((s) => s.kind === 'pending')) return { kind: 'pending' };
  if (!states.some((s) => s.kind === 'ok')) {
    const refused = states.find((s) => s.kind === 'refused');
    return { kind: 'stale', reason: refused?.reason ?? 'no prefix to read' };
  }
  return { kind: 'ok' };
}

/**
 * Publishes one prefix's changes as a diff: the endpoint each changed key
 * held (if the query kept it) leaves, the one it holds now (if kept) joins.
 * A key that keeps its endpoint is a net update; costs what changed.
 */
function publishChanges(
  publisher: { publishChanges(upserted: readonly ServiceInstance[], removed: readonly string[]): boolean },
  source: PrefixWatch,
  changes: PrefixChanges,
  matches: (instance: ServiceInstance) => boolean,
): void {
  const upserted: ServiceInstance[] = [];
  const removed: string[] = [];
  for (const [key, before] of changes) {
    if (before !== undefined && matches(before)) removed.push(endpointKeyOf(before));
    const now = source.instanceAt(key);
    if (now !== undefined && matches(now)) upserted.push(now);
  }
  if (upserted.length || removed.length) publisher.publishChanges(upserted, removed);
}

/**
 * The query's test without its namespace: the crate's no-namespace read
 * keeps every record it finds, whatever namespace the record names.
 */
function inAnyNamespace(query: DiscoveryQuery): (instance: ServiceInstance) => boolean {
  const byNamespace = new Map<string, CompiledQuery>();
  return (instance) => {
    let compiled = byNamespace.get(instance.namespace);
    if (!compiled)
      byNamespace.set(instance.namespace, (compiled = compileQuery({ ...query, namespace: instance.namespace })));
    return compiled.matches(instance);
  };
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
 * Loads the optional `etcd3` package, or throws MissingPeerDependencyError
 * saying how to install it.
 *
 * @example
 * const etcd3 = await loadEtcd3();
 */
export async function loadEtcd3(importer: () => Promise<unknown> = () => import('etcd3')): Promise<Etcd3Library> {
  const lib = (await importOptionalPeer('etcd3', "backend 'etcd'", importer)) as Etcd3Library & {
    default?: Etcd3Library;
  };
  return typeof lib.Etcd3 === 'function' ? lib : lib.default!;
}

/** Factory used by `createRegistry` for `backend = "etcd"`. */
export const createRegistry: BackendFactory = async ({ config, logger }) => {
  const etcd = configFor(config, 'etcd');
  const settings = etcd.backendConfig;
  const lib = await loadEtcd3();
  const registry = new EtcdRegistry(lib, settings, logger, {
    deregisterOnClose: etcd.registration.deregisterOnShutdown,
  });
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
    void registry.reachability.probe();
  }
  return registry;
};
