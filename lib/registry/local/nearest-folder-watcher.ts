import { watch, type FSWatcher } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename } from 'node:path';

/**
 * fs.watch on a folder that may not exist yet: it watches the most specific
 * existing folder of `chain` (the folder, its parent, ...), and moves down
 * as folders appear, so the first file written in a brand-new folder is
 * still announced at once. Only events on the way to the folder (in a
 * parent) or on non-dot files (in the folder: dot files are temporaries)
 * are passed on.
 *
 * @example
 * const watcher = new NearestFolderWatcher([serviceDir, dirname(serviceDir), root], () => rescan()); await watcher.attach();
 */
export class NearestFolderWatcher {
  private watcher: FSWatcher | undefined;
  private watchedPath: string | undefined;
  private watchedIno: number | undefined;
  /** When a parent is watched: the only child name whose events matter. */
  private watchedChild: string | undefined;
  private closed = false;

  constructor(
    /** The folder first, then its ancestors, most specific first. */
    private readonly chain: readonly string[],
    private readonly onChange: () => void,
  ) {}

  /** Watches the folder, or its nearest existing ancestor while it does not exist. */
  async attach(): Promise<void> {
    // A folder created between the stat and the watch would never be
    // announced to a parent watcher: check again and move down if so.
    for (let attempt = 0; attempt < this.chain.length; attempt++) {
      const level = await this.watchLowestExisting();
      if (level <= 0 || this.closed) return;
      if (!(await isDirectory(this.chain[level - 1]))) return;
    }
  }

  close(): void {
    this.closed = true;
    this.release();
  }

  /** Attaches to the most specific existing folder of the chain; returns its level, -1 for none. */
  private async watchLowestExisting(): Promise<number> {
    for (let level = 0; level < this.chain.length; level++) {
      const path = this.chain[level];
      let ino: number;
      try {
        const info = await stat(path);
        if (!info.isDirectory()) continue;
        ino = info.ino;
      } catch {
        continue;
      }
      if (this.closed) return -1;
      // Same folder (same inode: not removed and re-created): keep the watcher.
      if (this.watcher && this.watchedPath === path && this.watchedIno === ino) return level;
      this.release();
      try {
        const watcher = watch(path, (_event, filename) => this.onEvent(filename));
        watcher.on('error', () => {
          if (this.watcher === watcher) this.release();
          this.onChange();
        });
        this.watcher = watcher;
      } catch {
        continue;
      }
      this.watchedPath = path;
      this.watchedIno = ino;
      this.watchedChild = level === 0 ? undefined : basename(this.chain[level - 1]);
      return level;
    }
    this.release();
    return -1;
  }

  private onEvent(filename: string | Buffer | null): void {
    if (this.closed) return;
    const name = filename === null ? undefined : String(filename);
    if (name !== undefined) {
      // In a parent, only the folder on the way to the service matters; in the
      // service folder, dot files are temporaries (their rename is reported under the final name).
      if (this.watchedChild !== undefined ? name !== this.watchedChild : name.startsWith('.')) return;
    }
    this.onChange();
  }

  private release(): void {
    const watcher = this.watcher;
    this.watcher = undefined;
    this.watchedPath = this.watchedIno = this.watchedChild = undefined;
    watcher?.close();
  }
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}
