// One folder watcher (fs.watch, debounce, polling fallback, record decoding
// with warnings): a single state machine, kept in one file.
import { constants } from 'node:fs';
import { open, readdir, stat, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { CompiledQuery } from '../../core/discovery-query.js';
import type { ServiceInstance } from '../../core/service-instance.js';
import type { DiscoveryLogger } from '../registry.interface.js';
import type { EndpointSetPublisher } from '../shared/endpoint-set-publisher.js';
import type { ReachabilityTracker } from '../shared/reachability.js';
import { decodeInstanceFile, type InstanceFileEntry } from './instance-file.js';
import type { CorruptFileWarnings } from './corrupt-file-warnings.js';
import { NearestFolderWatcher } from './nearest-folder-watcher.js';
import { describeFsError, isInstanceFileName, isTempFileName, type RegistryDirectory } from './registry-directory.js';

/** Instance files larger than this are refused (a record is a few hundred bytes). */
export const MAX_INSTANCE_FILE_BYTES = 64 * 1024;

/** Tuning of a folder watch, in milliseconds. */
export interface FolderWatchTiming {
  /** Quiet time after a file-system event before rescanning (events come in bursts). */
  debounceMs: number;
  /** Periodic rescan, for events fs.watch misses and folders that do not exist yet. */
  rescanMs: number;
  /** How long past its TTL an instance file is kept before a watcher deletes it. */
  sweepGraceMs: number;
  /** TTL assumed for files that do not state one. */
  defaultTtlMs: number;
}

interface CachedFile {
  /** inode, size and mtime: a rename-into-place always changes the inode. */
  version: string;
  entry: InstanceFileEntry | undefined;
}

// Temporary files older than this are leftovers of a crashed writer.
const TEMP_FILE_MAX_AGE_MS = 60_000;

/** What a folder watch shares with the other watches of its registry. */
export interface FolderWatchDeps {
  readonly directory: RegistryDirectory;
  readonly timing: FolderWatchTiming;
  readonly logger: DiscoveryLogger;
  readonly warnings: CorruptFileWarnings;
  /** Told whether the registry's folder could be read. */
  readonly reachability: ReachabilityTracker;
}

/**
 * Watches one service folder (`<root>/<namespace>/<service>`) and publishes
 * the live, matching instances whenever they change. Events from fs.watch
 * trigger a debounced rescan; a periodic rescan (and one at the earliest
 * TTL expiry) covers missed events and expiries. While the folder does not
 * exist, the nearest existing parent is watched instead so the first
 * registration is still seen at once.
 *
 * Like an open socket, an active watch keeps the process alive (a script
 * awaiting the first instance must not exit early); `stop()` releases
 * everything.
 *
 * @example
 * const w = new ServiceFolderWatch(compileQuery({ service: 'orders' }), deps, publisher); w.start();
 */
export class ServiceFolderWatch {
  private readonly cache = new Map<string, CachedFile>();
  private readonly serviceDir: string;
  private readonly folderWatcher: NearestFolderWatcher;
  private readonly timing: FolderWatchTiming;
  private readonly logger: DiscoveryLogger;
  private readonly warnings: CorruptFileWarnings;
  private debounceTimer: NodeJS.Timeout | undefined;
  private fallbackTimer: NodeJS.Timeout | undefined;
  private scanning = false;
  private rescanWanted = false;
  private stopped = false;
  private nextExpiry = Infinity;

  constructor(
    private readonly query: CompiledQuery,
    private readonly deps: FolderWatchDeps,
    private readonly publisher: EndpointSetPublisher,
  ) {
    ({ timing: this.timing, logger: this.logger, warnings: this.warnings } = deps);
    const { directory } = deps;
    this.serviceDir = directory.serviceDir(query.namespace, query.query.service);
    this.folderWatcher = new NearestFolderWatcher(
      [this.serviceDir, dirname(this.serviceDir), directory.root, dirname(directory.root)],
      () => this.requestScan(),
    );
  }

  start(): void {
    void this.runScan();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.debounceTimer);
    clearTimeout(this.fallbackTimer);
    this.debounceTimer = this.fallbackTimer = undefined;
    this.folderWatcher.close();
  }

  private async runScan(): Promise<void> {
    if (this.stopped) return;
    if (this.scanning) {
      this.rescanWanted = true;
      return;
    }
    this.scanning = true;
    try {
      do {
        this.rescanWanted = false;
        await this.scanOnce();
      } while (this.rescanWanted && !this.stopped);
    } catch (error) {
      // Never let a surprise end the watch; the next rescan tries again.
      this.logger.warn(`local registry: scanning '${this.serviceDir}' failed: ${(error as Error).message}`);
    } finally {
      this.scanning = false;
    }
    this.scheduleFallback();
  }

  private requestScan(): void {
    if (this.stopped || this.debounceTimer) return;
    this.debounceTimer = setTimeout(() => {
      this.debounceTimer = undefined;
      void this.runScan();
    }, this.timing.debounceMs);
  }

  private scheduleFallback(): void {
    if (this.stopped) return;
    clearTimeout(this.fallbackTimer);
    let delay = this.timing.rescanMs;
    if (Number.isFinite(this.nextExpiry)) delay = Math.min(delay, Math.max(10, this.nextExpiry - Date.now() + 5));
    this.fallbackTimer = setTimeout(() => {
      this.fallbackTimer = undefined;
      void this.runScan();
    }, delay);
  }

  private async scanOnce(): Promise<void> {
    // Watch first, list second: a file written in between is not missed.
    await this.folderWatcher.attach();
    let names: string[];
    try {
      names = await readdir(this.serviceDir);
    } catch (error) {
      if (this.stopped) return;
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
        // Nobody registered this service (or anything) yet: zero instances, not an outage.
        this.cache.clear();
        this.nextExpiry = Infinity;
        this.publish([]);
      } else {
        const reason = `local registry directory '${this.serviceDir}' is not readable (${describeFsError(error)})`;
        this.deps.reachability.unreachable(reason);
        this.publishStale(reason);
      }
      return;
    }
    const now = Date.now();
    const seen = new Set<string>();
    const loads: Array<Promise<{ file: string; cached: CachedFile | undefined }>> = [];
    for (const name of names) {
      if (isTempFileName(name)) {
        loads.push(this.sweepTempFile(join(this.serviceDir, name), now).then(() => ({ file: '', cached: undefined })));
      } else if (isInstanceFileName(name)) {
        seen.add(name);
        const file = join(this.serviceDir, name);
        loads.push(this.load(file, name).then((cached) => ({ file, cached })));
      }
    }
    const results = await Promise.all(loads);
    if (this.stopped) return;
    for (const name of [...this.cache.keys()]) {
      if (!seen.has(name)) {
        this.cache.delete(name);
        this.warnings.forget(join(this.serviceDir, name));
      }
    }
    const live: ServiceInstance[] = [];
    let nextExpiry = Infinity;
    const sweeps: Promise<void>[] = [];
    for (const { file, cached } of results) {
      const entry = cached?.entry;
      if (!entry) continue;
      if (entry.expiresAt <= now) {
        if (now >= entry.expiresAt + this.timing.sweepGraceMs) sweeps.push(this.sweep(file, cached.version, entry));
        else nextExpiry = Math.min(nextExpiry, entry.expiresAt + this.timing.sweepGraceMs);
        continue;
      }
      nextExpiry = Math.min(nextExpiry, entry.expiresAt);
      if (this.query.matches(entry.instance)) live.push(entry.instance);
    }
    this.nextExpiry = nextExpiry;
    this.publish(live);
    await Promise.all(sweeps);
  }

  /** Reads a file unless the cached version is still current. Undefined when it vanished. */
  private async load(file: string, name: string): Promise<CachedFile | undefined> {
    let version: string;
    try {
      const info = await stat(file);
      version = versionOf(info);
      // Only regular files of a sane size: a FIFO would block open(2) forever,
      // and an instance record is a few hundred bytes (same 64 KiB cap as etcd).
      if (!info.isFile()) {
        this.warnings.warn(file, version, `local registry: skipping '${file}': not a regular file`);
        return undefined;
      }
      if (info.size > MAX_INSTANCE_FILE_BYTES) {
        this.warnings.warn(
          file,
          version,
          `local registry: skipping instance file '${file}': ${info.size} bytes is over the ${MAX_INSTANCE_FILE_BYTES}-byte limit`,
        );
        return undefined;
      }
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
        this.warnings.warn(file, 'stat', `local registry: skipping instance file '${file}': ${describeFsError(error)}`);
      }
      return undefined;
    }
    const cached = this.cache.get(name);
    if (cached && cached.version === version) return cached;
    let text: string;
    let fileStats: Awaited<ReturnType<typeof stat>>;
    try {
      // One handle, so the version recorded is the version of the bytes read.
      const handle = await open(file, constants.O_RDONLY | constants.O_NONBLOCK);
      try {
        fileStats = await handle.stat();
        text = await handle.readFile('utf8');
      } finally {
        await handle.close();
      }
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
        this.warnings.warn(
          file,
          version,
          `local registry: skipping instance file '${file}': cannot read it (${describeFsError(error)})`,
        );
      }
      return undefined;
    }
    const readVersion = versionOf(fileStats);
    let entry: InstanceFileEntry | undefined;
    try {
      entry = decodeInstanceFile(text, { mtimeMs: Number(fileStats.mtimeMs), defaultTtlMs: this.timing.defaultTtlMs });
      this.warnings.forget(file);
    } catch (error) {
      this.warnings.warn(
        file,
        readVersion,
        `local registry: skipping instance file '${file}': ${(error as Error).message}`,
      );
    }
    const fresh: CachedFile = { version: readVersion, entry };
    this.cache.set(name, fresh);
    return fresh;
  }

  /** Deletes an expired instance file, unless it changed since it was read (its owner came back). */
  private async sweep(file: string, version: string, entry: InstanceFileEntry): Promise<void> {
    try {
      if (versionOf(await stat(file)) !== version) return;
      await unlink(file);
      this.logger.log(
        `local registry: removed expired instance '${entry.instance.id}' (${entry.instance.address}, last heartbeat ${Date.now() - entry.heartbeatAt} ms ago) from '${file}'`,
      );
    } catch {
      // Gone already, or not ours to delete: either way nothing to do.
    }
  }

  private async sweepTempFile(file: string, now: number): Promise<void> {
    try {
      if (now - (await stat(file)).mtimeMs > TEMP_FILE_MAX_AGE_MS) await unlink(file);
    } catch {
      // Renamed into place or removed meanwhile.
    }
  }

  private publish(instances: ServiceInstance[]): void {
    if (this.stopped) return;
    this.deps.reachability.reachable();
    this.publisher.publish(instances);
  }

  private publishStale(reason: string): void {
    if (this.stopped || !this.publisher.publishStale(reason)) return;
    this.logger.warn(`local registry: ${reason}; serving the last known endpoints of '${this.query.query.service}'`);
  }
}

function versionOf(info: { ino: number | bigint; size: number | bigint; mtimeMs: number | bigint }): string {
  return `${info.ino}:${info.size}:${info.mtimeMs}`;
}
