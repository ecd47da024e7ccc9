import { Observable } from 'rxjs';
import { compileQuery, type DiscoveryQuery } from '../../core/discovery-query.js';
import type { EndpointSet } from '../../core/endpoint-set.js';
import { ClosedError, RegistrationError } from '../../core/errors.js';
import type { ServiceInstance } from '../../core/service-instance.js';
import type { BackendFactory } from '../backend-context.js';
import {
  consoleLogger,
  type DiscoveryLogger,
  type Registration,
  type Registry,
  type RegistrationTiming,
} from '../registry.interface.js';
import { LocalRegistration } from './local-registration.js';
import { RegistryDirectory, defaultLocalDirectory } from './registry-directory.js';
import { CorruptFileWarnings, ServiceFolderWatch, type FolderWatchTiming } from './service-folder-watch.js';

export { LocalRegistration } from './local-registration.js';
export { defaultLocalDirectory, pathSegment, RegistryDirectory } from './registry-directory.js';

/** Options of {@link LocalRegistry}; every one has a default. */
export interface LocalRegistryOptions {
  /** The shared folder. Default `join(os.tmpdir(), 'switchyard')`; relative paths resolve against the working directory. */
  dir?: string;
  logger?: DiscoveryLogger;
  /** TTL assumed for instance files that do not state one (written by hand). Default 90 000 ms. */
  defaultTtlMs?: number;
  /** Quiet time after a file-system event before a watcher rescans. Default 25 ms. */
  debounceMs?: number;
  /** Periodic rescan, the fallback when fs.watch misses an event. Default 1 000 ms. */
  rescanMs?: number;
  /** How long past its TTL a file is kept before a watcher deletes it. Default 5 000 ms. */
  sweepGraceMs?: number;
}

const DEFAULTS = { defaultTtlMs: 90_000, debounceMs: 25, rescanMs: 1_000, sweepGraceMs: 5_000 } as const;

/**
 * The `local` backend, the default: a folder of instance files,
 * `<dir>/<namespace>/<service>/<instance-id>.json`, each holding the seed's
 * JSON record plus its TTL, last heartbeat and owner. Files are written
 * atomically (temporary file + rename) and rewritten every heartbeat; a file
 * whose heartbeat is older than its TTL is not served, and is deleted by
 * watchers after a grace period. Watchers follow changes through fs.watch
 * (debounced) with a periodic rescan as fallback. Several processes on one
 * machine share a folder.
 *
 * @example
 * const registry = new LocalRegistry({ dir: '/var/run/myapp/discovery' });
 */
export class LocalRegistry implements Registry {
  readonly backend = 'local';
  readonly readOnly = false;
  readonly directory: RegistryDirectory;
  private readonly logger: DiscoveryLogger;
  private readonly timing: FolderWatchTiming;
  private readonly warnings: CorruptFileWarnings;
  private readonly registrations = new Set<LocalRegistration>();
  private readonly watches = new Set<{ stop(): void }>();
  private closed = false;

  constructor(options: LocalRegistryOptions = {}) {
    this.directory = new RegistryDirectory(options.dir ?? defaultLocalDirectory());
    this.logger = options.logger ?? consoleLogger;
    this.timing = {
      defaultTtlMs: options.defaultTtlMs ?? DEFAULTS.defaultTtlMs,
      debounceMs: options.debounceMs ?? DEFAULTS.debounceMs,
      rescanMs: options.rescanMs ?? DEFAULTS.rescanMs,
      sweepGraceMs: options.sweepGraceMs ?? DEFAULTS.sweepGraceMs,
    };
    this.warnings = new CorruptFileWarnings(this.logger);
  }

  /** The shared folder (absolute). */
  get dir(): string {
    return this.directory.root;
  }

  /**
   * Writes the instance file and starts its heartbeat. Rejects with
   * RegistrationError when a live instance with the same id exists, or when
   * the folder cannot be written (the message names it).
   */
  async register(instance: ServiceInstance, timing: RegistrationTiming): Promise<Registration> {
    if (this.closed) throw new ClosedError('local registry is closed');
    checkTiming(instance, timing);
    const registration = new LocalRegistration(instance, timing, {
      directory: this.directory,
      logger: this.logger,
      defaultTtlMs: this.timing.defaultTtlMs,
      onDone: (done) => this.registrations.delete(done),
    });
    await registration.start();
    if (this.closed) {
      // close() ran while the file was being written: do not leave it behind.
      await registration.deregister();
      throw new ClosedError('local registry is closed');
    }
    this.registrations.add(registration);
    return registration;
  }

  watch(query: DiscoveryQuery): Observable<EndpointSet> {
    const compiled = compileQuery(query);
    return new Observable<EndpointSet>((subscriber) => {
      if (this.closed) {
        subscriber.complete();
        return;
      }
      const folderWatch = new ServiceFolderWatch(
        this.directory,
        compiled,
        this.timing,
        this.logger,
        this.warnings,
        (set) => subscriber.next(set),
      );
      const handle = {
        stop: () => {
          folderWatch.stop();
          subscriber.complete();
        },
      };
      this.watches.add(handle);
      folderWatch.start();
      return () => {
        this.watches.delete(handle);
        folderWatch.stop();
      };
    });
  }

  /** Stops every watch and removes every instance this registry registered. */
  async close(): Promise<void> {
    this.closed = true;
    for (const handle of [...this.watches]) handle.stop();
    this.watches.clear();
    await Promise.all([...this.registrations].map((r) => r.deregister()));
  }
}

function checkTiming(instance: ServiceInstance, timing: RegistrationTiming): void {
  const ok = (n: unknown) => typeof n === 'number' && Number.isFinite(n) && n > 0;
  if (!timing || !ok(timing.ttlMs) || !ok(timing.heartbeatMs) || timing.heartbeatMs >= timing.ttlMs) {
    throw new RegistrationError(
      `Cannot register instance '${instance?.id}': timing ${JSON.stringify(timing)} needs ttlMs > 0 and 0 < heartbeatMs < ttlMs`,
    );
  }
}

export const createRegistry: BackendFactory = ({ config, logger }) =>
  new LocalRegistry({
    dir: config.backendConfig.dir,
    logger,
    defaultTtlMs: config.registration.ttlMs,
  });
