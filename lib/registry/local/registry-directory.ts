import { createHash, randomBytes } from 'node:crypto';
import { link, mkdir, open, rename, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';

/**
 * Where the `local` backend keeps its files when `backend_config.dir` is not set.
 *
 * @example
 * defaultLocalDirectory(); // '/tmp/switchyard' on Linux
 */
export function defaultLocalDirectory(): string {
  return join(tmpdir(), 'switchyard');
}

/** Instance files end with this; everything else in a service folder is ignored. */
export const INSTANCE_FILE_SUFFIX = '.json';
/** Temporary files (written, then renamed into place) start with a dot and end with this. */
export const TEMP_FILE_SUFFIX = '.tmp';

// Longest encoded segment kept readable; longer ones are shortened with a
// hash so ids up to 256 characters still fit the usual 255-byte name limit.
const MAX_SEGMENT = 120;

/**
 * Encodes a namespace, service or instance id as one safe path segment:
 * no separators, no `.`/`..`, no leading dot (dot files are temporaries),
 * bounded length. Injective for names up to MAX_SEGMENT encoded characters.
 *
 * @example
 * pathSegment('team/a'); // 'team%2Fa'
 */
export function pathSegment(value: string): string {
  let encoded = encodeURIComponent(value).replace(/\*/g, '%2A');
  if (encoded.startsWith('.')) encoded = `%2E${encoded.slice(1)}`;
  if (encoded.length > MAX_SEGMENT) {
    const digest = createHash('sha256').update(value).digest('hex').slice(0, 32);
    encoded = `${encoded.slice(0, MAX_SEGMENT - 34)}~${digest}`;
  }
  return encoded;
}

/**
 * The layout `<root>/<namespace>/<service>/<instance-id>.json`, each
 * segment encoded by {@link pathSegment}.
 *
 * @example
 * new RegistryDirectory('/tmp/sy').instanceFile('default', 'orders', 'a'); // '/tmp/sy/default/orders/a.json'
 */
export class RegistryDirectory {
  readonly root: string;

  constructor(root: string = defaultLocalDirectory()) {
    this.root = resolve(root);
  }

  namespaceDir(namespace: string): string {
    return join(this.root, pathSegment(namespace));
  }

  serviceDir(namespace: string, service: string): string {
    return join(this.namespaceDir(namespace), pathSegment(service));
  }

  instanceFile(namespace: string, service: string, id: string): string {
    return join(this.serviceDir(namespace, service), `${pathSegment(id)}${INSTANCE_FILE_SUFFIX}`);
  }
}

/** True for names a scan should decode (not temporaries, not stray files). */
export function isInstanceFileName(name: string): boolean {
  return !name.startsWith('.') && name.endsWith(INSTANCE_FILE_SUFFIX) && name.length > INSTANCE_FILE_SUFFIX.length;
}

/** True for leftovers of an interrupted atomic write. */
export function isTempFileName(name: string): boolean {
  return name.startsWith('.') && name.endsWith(TEMP_FILE_SUFFIX);
}

/** Writes `text` to a new temporary file beside `file` (flushed) and returns its path. */
export async function writeTempBeside(file: string, text: string): Promise<string> {
  const temp = join(
    dirname(file),
    `.${basename(file)}.${process.pid}.${randomBytes(4).toString('hex')}${TEMP_FILE_SUFFIX}`,
  );
  const handle = await open(temp, 'wx', 0o644);
  try {
    await handle.writeFile(text, 'utf8');
  } catch (error) {
    await handle.close().catch(() => undefined);
    await unlink(temp).catch(() => undefined);
    throw error;
  }
  await handle.close();
  return temp;
}

/**
 * Replaces `file` with `text` atomically (temporary file + rename), so a
 * reader sees either the old or the new content, never half of one.
 * Creates the parent folder when it is missing.
 *
 * @example
 * await writeFileAtomic('/tmp/sy/default/orders/a.json', text);
 */
export async function writeFileAtomic(file: string, text: string): Promise<void> {
  let temp: string;
  try {
    temp = await writeTempBeside(file, text);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    // The service folder was removed behind our back: create it again.
    await mkdir(dirname(file), { recursive: true });
    temp = await writeTempBeside(file, text);
  }
  try {
    await rename(temp, file);
  } catch (error) {
    await unlink(temp).catch(() => undefined);
    throw error;
  }
}

/**
 * Creates `file` with `text` only if it does not exist yet, atomically
 * (hard link of a complete temporary file). Returns false when the file
 * already exists. Falls back to an exclusive create where the file system
 * has no hard links.
 *
 * @example
 * if (!(await createFileExclusive(file, text))) console.log('taken');
 */
export async function createFileExclusive(file: string, text: string): Promise<boolean> {
  const temp = await writeTempBeside(file, text);
  try {
    await link(temp, file);
    return true;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return false;
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'ENOSYS' && code !== 'EOPNOTSUPP') throw error;
    try {
      const handle = await open(file, 'wx', 0o644);
      try {
        await handle.writeFile(text, 'utf8');
      } finally {
        await handle.close();
      }
      return true;
    } catch (fallbackError) {
      if ((fallbackError as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw fallbackError;
    }
  } finally {
    await unlink(temp).catch(() => undefined);
  }
}

/** `code: message` of a file-system error, for messages that name a path. */
export function describeFsError(error: unknown): string {
  const e = error as NodeJS.ErrnoException;
  return e && e.code ? `${e.code}: ${e.message}` : String((e as Error)?.message ?? e);
}
