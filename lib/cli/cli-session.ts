import type { ResolvedDiscoveryConfig } from '../core/config/resolve-discovery-config.js';
import type { DiscoveryQuery } from '../core/discovery-query.js';
import { createRegistry } from '../registry/create-registry.js';
import type { DiscoveryLogger, Registry } from '../registry/registry.interface.js';
import { openRegistryAdmin } from './admin/open-registry-admin.js';
import type { RegistryAdmin } from './admin/registry-admin.js';
import { numberOption, tagOptions, type CliInvocation } from './cli-arguments.js';
import { loadCliConfig } from './cli-config.js';
import { withDeadline } from './cli-errors.js';
import type { CliOutput } from './cli-output.js';

const DEFAULT_TIMEOUT_MS = 5_000;

/**
 * Everything one command runs with: the configuration, the registry it
 * opened, the backend's operator operations, and the output. `close()`
 * closes all of it.
 *
 * @example
 * const session = await CliSession.open(invocation, output); try { ... } finally { await session.close(); }
 */
export class CliSession {
  private constructor(
    readonly invocation: CliInvocation,
    readonly config: ResolvedDiscoveryConfig,
    readonly registry: Registry,
    readonly admin: RegistryAdmin,
    readonly out: CliOutput,
    readonly logger: DiscoveryLogger,
    readonly timeoutMs: number,
  ) {}

  /** Loads the configuration (secrets registered for redaction first), then opens the registry and its admin. */
  static async open(
    invocation: CliInvocation,
    out: CliOutput,
    env: NodeJS.ProcessEnv = process.env,
  ): Promise<CliSession> {
    const timeoutS = numberOption(invocation.options.timeout, 'timeout');
    const timeoutMs = timeoutS !== undefined ? Math.round(timeoutS * 1000) : DEFAULT_TIMEOUT_MS;
    const { config, secrets } = await loadCliConfig(invocation.options, env);
    out.addSecrets(secrets);
    // The backends' start-up probes report an unreachable registry; the
    // command reports it better, and `check` is all about it: keep them quiet then.
    let starting = true;
    const logger = out.logger(() => starting || invocation.command === 'check');
    const registry = await createRegistry(config, logger);
    try {
      const admin = await openRegistryAdmin(registry, config, timeoutMs);
      starting = false;
      return new CliSession(invocation, config, registry, admin, out, logger, timeoutMs);
    } catch (error) {
      await registry.close();
      throw error;
    }
  }

  /** The namespace commands work in. */
  get namespace(): string {
    return this.config.namespace.default;
  }

  /** The query `ls` / `watch` ask with: configured filters plus `--version` and `--tag`. */
  query(service: string): DiscoveryQuery {
    const { options } = this.invocation;
    const tags = Object.entries(tagOptions(options.tag)).map(([key, value]) => ({ key, value }));
    return {
      service,
      namespace: this.namespace,
      version: options.version,
      versionFormat: this.config.version.format,
      versionRouting: this.config.version.enableRouting,
      tags: [...this.config.tagFilters, ...tags],
    };
  }

  /** `etcd at http://127.0.0.1:2379`. */
  get where(): string {
    return `${this.admin.backend} at ${this.admin.target}`;
  }

  /** Closes the admin and the registry; a registry that does not close in time is left to process exit. */
  async close(): Promise<void> {
    await Promise.allSettled([
      this.admin.close(),
      withDeadline(this.registry.close(), Math.max(this.timeoutMs, 2_000), 'closing the registry'),
    ]);
  }
}
