import { constants, watch, type FSWatcher } from 'node:fs';
import { open, readdir, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { CompiledQuery } from '../../core/discovery-query.js';
import { EndpointSet } from '../../core/endpoint-set.js';
import type { ServiceInstance } from '../../core/service-instance.js';
import type { DiscoveryLogger } from '../registry.interface.js';
import { decodeInstanceFile, type InstanceFileEntry } from './instance-file.js';
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

/**
 * Remembers which version of which file was already reported as unusable,
 * so a corrupt file is warned about once, not on every rescan. Shared by
 * the watches of one registry.
 *
 * @example
 * warnings.warn(file, `${ino}:${size}:${mtimeMs}`, `skipping instance file '${file}'`);
 */
export class CorruptFileWarnings {
  private readonly reported = new Map<string, string>();

  constructor(private readonly logger: DiscoveryLogger) {}

  warn(file: string, version: string, message: string): void {
    if (this.reported.get(file) === version) return;
    this.reported.set(file, version);
    this.logger.warn(message);
  }

  forget(file: string): void {
    this.reported.delete(file);
  }
}

interface CachedFile {
  /** inode, size and mtime: a rename-into-place always changes the inode. */
  version: string;
  entry: InstanceFileEntry | undefined;
}

// Temporary files older than this are leftovers of a crashed writer.
const TEMP_FILE_MAX_AGE_MS = 60_000;

/**
 * Watches one service folder (`<root>/<namespace>/<service>`) and emits an
 * EndpointSet whenever the live, matching instances change. Events from
 * fs.watch trigger a debounced rescan; a periodic rescan (and one at the
 * earliest TTL expiry) covers missed events and expiries. While the folder
 * does not exist, the nearest existing parent is watched instead so the
 * first registration is still seen at once.
 *
 * Like an open socket, an active watch keeps the process alive (a script
 * awaiting the first instance must not exit early); `stop()` releases
 * everything.
 *
 * @example
 * const w = new ServiceFolderWatch(directory, compileQuery({ service: 'orders' }), timing, logger, warnings, (set) => subscriber.next(set)); w.start();
 */
export class ServiceFolderWatch {
  private current: EndpointSet;
  private readonly cache = new Map<string, CachedFile>();
  private readonly serviceDir: string;
  private watcher: FSWatcher | undefined;
  private watchedPath: string | undefined;
  private watchedIno: number | undefined;
  /** When a parent is watched: the only child name whose events matter. */
  private watchedChild: string | undefined;
  private debounceTimer: NodeJS.Timeout | undefined;
  private fallbackTimer: NodeJS.Timeout | undefined;
  private scanning = false;
  private rescanWanted = false;
  private stopped = false;
  private nextExpiry = Infinity;

  constructor(
    private readonly directory: RegistryDirectory,
    private readonly query: CompiledQuery,
    private readonly timing: FolderWatchTiming,
    private readonly logger: DiscoveryLogger,
    private readonly warnings: CorruptFileWarnings,
    private readonly emit: (set: EndpointSet) => void,
  ) {
    this.current = EndpointSet.initial(query.query.service);
    this.serviceDir = directory.serviceDir(query.namespace, query.query.service);
  }

  start(): void {
    void this.runScan();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.debounceTimer);
    clearTimeout(this.fallbackTimer);
    this.debounceTimer = this.fallbackTimer = undefined;
    this.closeWatcher();
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
    await this.ensureWatcher();
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
        this.publishStale(`local registry directory '${this.serviceDir}' is not readable (${describeFsError(error)})`);
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
    const next = this.current.next(instances);
    if (next === this.current) return;
    this.current = next;
    this.emit(next);
  }

  private publishStale(reason: string): void {
    if (this.stopped) return;
    const next = this.current.stale(reason);
    if (next === this.current) return;
    this.logger.warn(`local registry: ${reason}; serving the last known endpoints of '${this.query.query.service}'`);
    this.current = next;
    this.emit(next);
  }

  /** Watches the service folder, or its nearest existing parent while it does not exist. */
  private async ensureWatcher(): Promise<void> {
    const chain = [this.serviceDir, dirname(this.serviceDir), this.directory.root, dirname(this.directory.root)];
    // A folder created between the stat and the watch would never be
    // announced to a parent watcher: check again and move down if so.
    for (let attempt = 0; attempt < chain.length; attempt++) {
      const level = await this.watchLowestExisting(chain);
      if (level <= 0 || this.stopped) return;
      if (!(await isDirectory(chain[level - 1]))) return;
    }
  }

  /** Attaches the watcher to the most specific existing folder of `chain`; returns its level, -1 for none. */
  private async watchLowestExisting(chain: readonly string[]): Promise<number> {
    for (let level = 0; level < chain.length; level++) {
      const path = chain[level];
      let ino: number;
      try {
        const info = await stat(path);
        if (!info.isDirectory()) continue;
        ino = info.ino;
      } catch {
        continue;
      }
      if (this.stopped) return -1;
      // Same folder (same inode: not removed and re-created): keep the watcher.
      if (this.watcher && this.watchedPath === path && this.watchedIno === ino) return level;
      this.closeWatcher();
      try {
        const watcher = watch(path, (_event, filename) => this.onEvent(filename));
        watcher.on('error', () => {
          if (this.watcher === watcher) this.closeWatcher();
          this.requestScan();
        });
        this.watcher = watcher;
      } catch {
        continue;
      }
      this.watchedPath = path;
      this.watchedIno = ino;
      this.watchedChild = level === 0 ? undefined : basename(chain[level - 1]);
      return level;
    }
    this.closeWatcher();
    return -1;
  }

  private onEvent(filename: string | Buffer | null): void {
    if (this.stopped) return;
    const name = filename === null ? undefined : String(filename);
    if (name !== undefined) {
      // In a parent, only the folder on the way to the service matters; in the
      // service folder, dot files are temporaries (their rename is reported under the final name).
      if (this.watchedChild !== undefined ? name !== this.watchedChild : name.startsWith('.')) return;
    }
    this.requestScan();
  }

  private closeWatcher(): void {
    const watcher = this.watcher;
    this.watcher = undefined;
    this.watchedPath = this.watchedIno = this.watchedChild = undefined;
    watcher?.close();
  }
}

function versionOf(info: { ino: number | bigint; size: number | bigint; mtimeMs: number | bigint }): string {
  return `${info.ino}:${info.size}:${info.mtimeMs}`;
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}
