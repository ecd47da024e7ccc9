import type { Observable, Subscription } from 'rxjs';
import { resolveDiscoveryConfig } from '../../../lib/core/config/resolve-discovery-config.js';
import type { EndpointSet } from '../../../lib/core/endpoint-set.js';
import { createMeshRegistry, type MeshRegistry, type MeshTuning } from '../../../lib/registry/mesh/mesh.registry.js';
import type { DiscoveryLogger } from '../../../lib/registry/registry.interface.js';

/** Short timings so outages and absent resources show within a test's patience. */
export const FAST: MeshTuning = { backoffInitialMs: 50, backoffMaxMs: 400, resourceTimeoutMs: 1_500 };

/** A logger that keeps what it was told. */
export class RecordingLogger implements DiscoveryLogger {
  readonly lines: Array<{ level: string; message: string }> = [];
  log(message: string): void {
    this.lines.push({ level: 'log', message });
  }
  warn(message: string): void {
    this.lines.push({ level: 'warn', message });
  }
  error(message: string): void {
    this.lines.push({ level: 'error', message });
  }
  debug(message: string): void {
    this.lines.push({ level: 'debug', message });
  }
  warnings(): string[] {
    return this.lines.filter((l) => l.level === 'warn').map((l) => l.message);
  }
}

/** Every emission of a watch, with the time it arrived (performance clock). */
export class SetRecorder {
  readonly sets: EndpointSet[] = [];
  readonly times: number[] = [];
  completed = false;
  private readonly subscription: Subscription;

  constructor(source: Observable<EndpointSet>) {
    this.subscription = source.subscribe({
      next: (set) => {
        this.sets.push(set);
        this.times.push(performance.now());
      },
      complete: () => {
        this.completed = true;
      },
    });
  }

  get latest(): EndpointSet | undefined {
    return this.sets[this.sets.length - 1];
  }

  /** Sorted addresses of the latest set. */
  addresses(): string[] {
    return (this.latest?.endpoints ?? []).map((e) => e.address).sort();
  }

  /** The first emission at or after index `from` that satisfies `test`, with its arrival time. */
  find(test: (set: EndpointSet) => boolean, from = 0): { set: EndpointSet; at: number } | undefined {
    for (let i = from; i < this.sets.length; i++)
      if (test(this.sets[i])) return { set: this.sets[i], at: this.times[i] };
    return undefined;
  }

  unsubscribe(): void {
    this.subscription.unsubscribe();
  }
}

/** A mesh registry in data mode against `xdsServer`. */
export async function meshRegistry(
  backendConfig: Record<string, unknown>,
  options: { logger?: DiscoveryLogger; tuning?: MeshTuning; loadBalance?: string } = {},
): Promise<MeshRegistry> {
  const config = resolveDiscoveryConfig({
    backend: 'mesh',
    backendConfig,
    ...(options.loadBalance ? { loadBalance: options.loadBalance } : {}),
  });
  return createMeshRegistry(config, options.logger ?? new RecordingLogger(), options.tuning ?? FAST, {});
}
