import { constants } from 'node:fs';
import { access, readdir, stat, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { readInstanceFile } from '../../registry/local/local-registration.js';
import type { LocalRegistry } from '../../registry/local/local.registry.js';
import { describeFsError, isInstanceFileName, pathSegment } from '../../registry/local/registry-directory.js';
import type { CheckResult, RegistryAdmin, RemovedInstance, ServiceSummary } from './registry-admin.js';

/**
 * The `local` backend: services are the folders under
 * `<dir>/<namespace>/`, instances their files; deregistration deletes the
 * file (a process still holding it writes it again at its next heartbeat).
 *
 * @example
 * const admin = new LocalAdmin(registry, 90_000); await admin.listServices('default');
 */
export class LocalAdmin implements RegistryAdmin {
  readonly backend = 'local';
  readonly target: string;

  constructor(
    private readonly registry: LocalRegistry,
    /** TTL assumed for hand-written files that do not state one. */
    private readonly defaultTtlMs: number,
  ) {
    this.target = registry.dir;
  }

  private async serviceFolders(namespace: string): Promise<string[]> {
    const root = this.registry.directory.namespaceDir(namespace);
    try {
      const entries = await readdir(root, { withFileTypes: true });
      return entries.filter((e) => e.isDirectory()).map((e) => join(root, e.name));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw error;
    }
  }

  async listServices(namespace: string): Promise<ServiceSummary[]> {
    const now = Date.now();
    const summaries: ServiceSummary[] = [];
    for (const folder of await this.serviceFolders(namespace)) {
      let name: string | undefined;
      let instances = 0;
      const files = (await readdir(folder).catch(() => [] as string[])).filter(isInstanceFileName);
      for (const file of files) {
        const found = await readInstanceFile(join(folder, file), this.defaultTtlMs);
        if (found.state !== 'ok') continue;
        name ??= found.entry.instance.service;
        if (found.entry.expiresAt > now) instances++;
      }
      // Folder names are encoded service names; a decoded instance names it exactly.
      summaries.push({ name: name ?? safeDecode(folder.slice(dirname(folder).length + 1)), instances });
    }
    return summaries.sort((a, b) => a.name.localeCompare(b.name));
  }

  async deregister(id: string, namespace: string, service: string | undefined): Promise<RemovedInstance[]> {
    const { directory } = this.registry;
    const candidates = service
      ? [directory.instanceFile(namespace, service, id)]
      : (await this.serviceFolders(namespace)).map((folder) => join(folder, `${pathSegment(id)}.json`));
    const removed: RemovedInstance[] = [];
    for (const file of candidates) {
      const found = await readInstanceFile(file, this.defaultTtlMs);
      if (found.state === 'missing') continue;
      try {
        await unlink(file);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw error;
      }
      const entry = found.state === 'ok' ? found.entry : undefined;
      const live = entry !== undefined && entry.ownerPid !== undefined && entry.expiresAt > Date.now();
      removed.push({
        id,
        service: entry?.instance.service ?? service,
        where: `file ${file}`,
        ...(live ? { heldBy: `pid ${entry.ownerPid}` } : {}),
      });
    }
    return removed;
  }

  async check(namespace: string): Promise<CheckResult> {
    const root = this.registry.dir;
    const where = `local registry folder ${root}`;
    try {
      const info = await stat(root);
      if (!info.isDirectory())
        return { ok: false, message: `${where} is not a folder`, detail: { exists: true, writable: false } };
      await access(root, constants.R_OK | constants.W_OK | constants.X_OK);
      const services = (await this.serviceFolders(namespace)).length;
      return {
        ok: true,
        message: `${where} is readable and writable (${services} service${services === 1 ? '' : 's'} in namespace '${namespace}')`,
        detail: { exists: true, writable: true, services },
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
        return {
          ok: false,
          message: `${where} cannot be used: ${describeFsError(error)}`,
          detail: { writable: false, reason: describeFsError(error) },
        };
      }
    }
    // Not created yet: fine if the first registration will be able to create it.
    let parent = dirname(root);
    for (;;) {
      try {
        const info = await stat(parent);
        if (!info.isDirectory()) {
          return {
            ok: false,
            message: `${where} cannot be created: ${parent} is not a folder`,
            detail: { exists: false, writable: false },
          };
        }
        await access(parent, constants.W_OK | constants.X_OK);
        return {
          ok: true,
          message: `${where} does not exist yet; the first registration creates it (in ${parent})`,
          detail: { exists: false, writable: true },
        };
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT' || dirname(parent) === parent) {
          return {
            ok: false,
            message: `${where} cannot be created: ${describeFsError(error)}`,
            detail: { exists: false, writable: false, reason: describeFsError(error) },
          };
        }
        parent = dirname(parent);
      }
    }
  }

  async close(): Promise<void> {
    // Nothing of its own to close.
  }
}

function safeDecode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}
