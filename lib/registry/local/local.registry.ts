import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Observable } from 'rxjs';
import { compileQuery, type DiscoveryQuery } from '../../core/discovery-query.js';
import type { EndpointSet } from '../../core/endpoint-set.js';
import { ClosedError, RegistrationError } from '../../core/errors.js';
import type { ServiceInstance } from '../../core/service-instance.js';
import { configFor, type BackendFactory } from '../backend-context.js';
import {
  consoleLogger,
  type DiscoveryLogger,
  type Registration,
  type Registry,
  type RegistrationTiming,
} from '../registry.interface.js';
import { EndpointWatches } from '../shared/endpoint-watches.js';
import { ReachabilityTracker } from '../shared/reachability.js';
import { CorruptFileWarnings } from './corrupt-file-warnings.js';
import { LocalRegistration } from './local-registration.js';
import { RegistryDirectory, defaultLocalDirectory, describeFsError } from './registry-directory.js';
import { ServiceFolderWatch, type FolderWatchDeps, type FolderWatchTiming } from './service-folder-watch.js';

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
  /** Whether `close()` removes this registry's instance files (default true); false leaves them to expire. */
  deregisterOnClose?: boolean;
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
 * Its source is the folder: it is reachable while the folder can be read
 * (watch scans and `reachability.probe()` tell); a folder that cannot be
 * written shows as `lost` registrations.
 *
 * @example
 * const registry = new LocalRegistry({ dir: '/var/run/myapp/discovery' });
 */
export class LocalRegistry implements Registry {
  readonly backend = 'local';
  readonly readOnly = false;
  readonly directory: RegistryDirectory;
  readonly reachability: ReachabilityTracker;
  private readonly logger: DiscoveryLogger;
  private readonly watchDeps: FolderWatchDeps;
  private readonly registrations = new Set<LocalRegistration>();
  private readonly watches = new EndpointWatches();
  private readonly deregisterOnClose: boolean;

  constructor(options: LocalRegistryOptions = {}) {
    const directory = new RegistryDirectory(options.dir ?? defaultLocalDirectory());
    this.directory = directory;
    this.logger = options.logger ?? consoleLogger;
    this.deregisterOnClose = options.deregisterOnClose ?? true;
    this.reachability = new ReachabilityTracker(() => checkReadable(directory.root));
    const timing: FolderWatchTiming = {
      defaultTtlMs: options.defaultTtlMs ?? DEFAULTS.defaultTtlMs,
      debounceMs: options.debounceMs ?? DEFAULTS.debounceMs,
      rescanMs: options.rescanMs ?? DEFAULTS.rescanMs,
      sweepGraceMs: options.sweepGraceMs ?? DEFAULTS.sweepGraceMs,
    };
    this.watchDeps = {
      directory,
      timing,
      logger: this.logger,
      warnings: new CorruptFileWarnings(this.logger),
      reachability: this.reachability,
    };
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
    if (this.watches.isClosed) throw new ClosedError('local registry is closed');
    checkTiming(instance, timing);
    const registration: LocalRegistration = new LocalRegistration(instance, timing, {
      directory: this.directory,
      logger: this.logger,
      defaultTtlMs: this.watchDeps.timing.defaultTtlMs,
      onEnd: () => this.registrations.delete(registration),
    });
    await registration.start();
    if (this.watches.isClosed) {
      // close() ran while the file was being written: do not leave it behind.
      await registration.deregister();
      throw new ClosedError('local registry is closed');
    }
    this.registrations.add(registration);
    return registration;
  }

  watch(query: DiscoveryQuery): Observable<EndpointSet> {
    const compiled = compileQuery(query);
    return this.watches.stream(query.service, (publisher) => {
      const folderWatch = new ServiceFolderWatch(compiled, this.watchDeps, publisher);
      folderWatch.start();
      return () => folderWatch.stop();
    });
  }

  /**
   * Stops every watch and removes every instance this registry registered
   * (or, with `deregisterOnClose: false`, stops their heartbeats and leaves
   * the files to expire).
   */
  async close(): Promise<void> {
    this.watches.close();
    const registrations = [...this.registrations];
    await Promise.all(registrations.map((r) => (this.deregisterOnClose ? r.deregister() : r.stop())));
    this.reachability.close();
  }
}

/** Resolves when the folder (or, before it exists, its nearest existing parent) is a folder that can be read. */
async function checkReadable(root: string): Promise<void> {
  for (let path = root; ; path = dirname(path)) {
    try {
      if (!(await stat(path)).isDirectory()) throw Object.assign(new Error('not a directory'), { code: 'ENOTDIR' });
      await access(path, constants.R_OK | constants.X_OK);
      return;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' || dirname(path) === path) {
        throw new Error(`local registry directory '${root}' is not readable (${describeFsError(error)})`, {
          cause: error,
        });
      }
    }
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

export const createRegistry: BackendFactory = ({ config, logger }) => {
  const local = configFor(config, 'local');
  return new LocalRegistry({
    dir: local.backendConfig.dir,
    logger,
    defaultTtlMs: local.registration.ttlMs,
    deregisterOnClose: local.registration.deregisterOnShutdown,
  });
};
