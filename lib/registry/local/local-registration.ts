import { randomUUID } from 'node:crypto';
import { mkdir, open, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { RegistrationError } from '../../core/errors.js';
import type { ServiceInstance } from '../../core/service-instance.js';
import type { DiscoveryLogger, RegistrationTiming } from '../registry.interface.js';
import { RegistrationBase } from '../shared/registration-base.js';
import {
  decodeInstanceFile,
  encodeInstanceFile,
  newOwner,
  type InstanceFileEntry,
  type InstanceFileOwner,
} from './instance-file.js';
import { createFileExclusive, describeFsError, writeFileAtomic, type RegistryDirectory } from './registry-directory.js';

/** What a registration needs from the registry that created it. */
export interface LocalRegistrationContext {
  directory: RegistryDirectory;
  logger: DiscoveryLogger;
  /** TTL assumed for files that do not state one. */
  defaultTtlMs: number;
  /** Called once the registration ends (deregistered or stopped). */
  onEnd(): void;
}

/** The state of an instance file as read from disk. */
type FileState =
  | { state: 'ok'; entry: InstanceFileEntry }
  | { state: 'missing' }
  | { state: 'corrupt'; reason: string }
  | { state: 'unreadable'; reason: string };

/**
 * Reads and decodes one instance file without throwing.
 *
 * @example
 * const found = await readInstanceFile(file, 90_000); if (found.state === 'ok') console.log(found.entry.expiresAt);
 */
export async function readInstanceFile(file: string, defaultTtlMs: number): Promise<FileState> {
  let text: string;
  let mtimeMs: number;
  try {
    // One handle, so the modification time belongs to the content read.
    const handle = await open(file, 'r');
    try {
      mtimeMs = (await handle.stat()).mtimeMs;
      text = await handle.readFile('utf8');
    } finally {
      await handle.close();
    }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { state: 'missing' };
    return { state: 'unreadable', reason: describeFsError(error) };
  }
  try {
    return { state: 'ok', entry: decodeInstanceFile(text, { mtimeMs, defaultTtlMs }) };
  } catch (error) {
    return { state: 'corrupt', reason: (error as Error).message };
  }
}

/**
 * One instance registered in a `local` registry: owns the instance file,
 * rewrites it every heartbeat, re-creates it (with `lost` then `restored`
 * events) when it disappears, and removes it on deregister.
 *
 * @example
 * const registration = await new LocalRegistry({ dir }).register(me, { ttlMs: 6_000, heartbeatMs: 2_000 });
 */
export class LocalRegistration extends RegistrationBase {
  private file: string;
  private readonly owner: InstanceFileOwner = newOwner(randomUUID());
  private readonly registeredAt = Date.now();

  constructor(
    instance: ServiceInstance,
    timing: RegistrationTiming,
    private readonly context: LocalRegistrationContext,
  ) {
    super(instance, timing, { onEnd: () => context.onEnd() });
    this.file = context.directory.instanceFile(instance.namespace, instance.service, instance.id);
  }

  /** The instance file this registration owns. */
  get path(): string {
    return this.file;
  }

  /** Claims the instance file and starts the heartbeat timer. Throws RegistrationError. */
  start(): Promise<void> {
    return this.begin(
      () => this.claim(this.file, this.current),
      (error) => ({ fail: error }),
    );
  }

  protected async write(instance: ServiceInstance): Promise<void> {
    if (!this.active) {
      this.current = instance;
      return;
    }
    const file = this.context.directory.instanceFile(instance.namespace, instance.service, instance.id);
    if (file !== this.file) {
      // Namespace or service changed: the instance moves to another folder.
      await this.claim(file, instance);
      await this.removeOwnFile(this.file);
      this.file = file;
    } else {
      try {
        await writeFileAtomic(file, this.encode(instance));
      } catch (error) {
        throw new RegistrationError(
          `Cannot update instance '${instance.id}': writing '${file}' failed (${describeFsError(error)})`,
        );
      }
    }
    this.current = instance;
  }

  protected remove(): Promise<void> {
    return this.removeOwnFile(this.file);
  }

  protected override retryDelay(error: unknown): number {
    this.context.logger.warn(`local registry heartbeat of '${this.current.id}' failed: ${(error as Error).message}`);
    return super.retryDelay(error);
  }

  private encode(instance: ServiceInstance): string {
    return encodeInstanceFile(instance, {
      ttlMs: this.timing.ttlMs,
      heartbeatAt: Date.now(),
      registeredAt: this.registeredAt,
      owner: this.owner,
    });
  }

  /** Writes a new instance file unless a live one of another registration is there. */
  private async claim(file: string, instance: ServiceInstance): Promise<void> {
    const folder = dirname(file);
    const cannot = (what: string, error: unknown) =>
      new RegistrationError(
        `Cannot register instance '${instance.id}' of service '${instance.service}': the local registry directory '${folder}' ${what} (${describeFsError(error)}); set backend_config.dir to a writable directory`,
        { cause: error },
      );
    try {
      await mkdir(folder, { recursive: true });
    } catch (error) {
      throw cannot('cannot be created', error);
    }
    let created: boolean;
    try {
      created = await createFileExclusive(file, this.encode(instance));
    } catch (error) {
      throw cannot('is not writable', error);
    }
    if (created) return;
    const existing = await readInstanceFile(file, this.context.defaultTtlMs);
    if (
      existing.state === 'ok' &&
      existing.entry.ownerToken !== this.owner.token &&
      existing.entry.expiresAt > Date.now()
    ) {
      throw duplicateError(instance, file, existing.entry);
    }
    // Expired, corrupt or just removed: the id is free to take over.
    try {
      await writeFileAtomic(file, this.encode(instance));
    } catch (error) {
      throw cannot('is not writable', error);
    }
    const check = await readInstanceFile(file, this.context.defaultTtlMs);
    if (check.state === 'ok' && check.entry.ownerToken !== this.owner.token) {
      throw duplicateError(instance, file, check.entry);
    }
  }

  protected async refresh(): Promise<void> {
    const current = await readInstanceFile(this.file, this.context.defaultTtlMs);
    const now = Date.now();
    if (current.state === 'missing') {
      this.lost(`instance file '${this.file}' was removed`);
    } else if (current.state === 'corrupt') {
      this.lost(`instance file '${this.file}' was overwritten with unusable content (${current.reason})`);
    } else if (current.state === 'ok' && current.entry.ownerToken !== this.owner.token) {
      if (current.entry.expiresAt > now) {
        // Another live registration took the id while we were expired: leave it be until it expires.
        this.lost(
          `instance id '${this.current.id}' was taken over by another registration (pid ${current.entry.ownerPid ?? 'unknown'})`,
        );
        return;
      }
      this.lost(`instance file '${this.file}' was taken over by another registration, which has expired since`);
    } else if (current.state === 'ok' && current.entry.expiresAt <= now) {
      this.lost(
        `heartbeat came too late: the TTL of ${this.timing.ttlMs} ms expired, so watchers dropped the instance`,
      );
    }
    try {
      await writeFileAtomic(this.file, this.encode(this.current));
    } catch (error) {
      this.lost(`cannot write instance file '${this.file}' (${describeFsError(error)})`);
      return;
    }
    if (this.markRestored() !== undefined) {
      this.context.logger.log(`local registry: instance '${this.current.id}' restored in '${this.file}'`);
    }
  }

  private lost(reason: string): void {
    if (this.markLost(reason)) {
      this.context.logger.warn(`local registry: registration of '${this.current.id}' lost: ${reason}`);
    }
  }

  /** Removes the file unless another registration owns it now. */
  private async removeOwnFile(file: string): Promise<void> {
    const existing = await readInstanceFile(file, this.context.defaultTtlMs);
    if (existing.state === 'missing') return;
    if (existing.state === 'ok' && existing.entry.ownerToken !== this.owner.token) return;
    try {
      await unlink(file);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
        this.context.logger.warn(
          `local registry: cannot remove instance file '${file}' (${describeFsError(error)}); it expires after its TTL`,
        );
      }
    }
  }
}

function duplicateError(instance: ServiceInstance, file: string, existing: InstanceFileEntry): RegistrationError {
  const ago = Math.max(0, Date.now() - existing.heartbeatAt);
  return new RegistrationError(
    `Instance id '${instance.id}' is already registered by a live instance (service '${existing.instance.service}' at ${existing.instance.address}, ` +
      `pid ${existing.ownerPid ?? 'unknown'}, last heartbeat ${ago} ms ago, TTL ${existing.ttlMs} ms) in '${file}': use another id or stop that instance`,
  );
}
