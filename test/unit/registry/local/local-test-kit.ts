import type { Observable, Subscription } from 'rxjs';
import type { EndpointSet } from '../../../../lib/core/endpoint-set.js';
import type { DiscoveryLogger } from '../../../../lib/registry/registry.interface.js';

/** A logger that keeps what it was told, for assertions on warnings. */
export function recordingLogger(): DiscoveryLogger & { warnings: string[]; logs: string[] } {
  const warnings: string[] = [];
  const logs: string[] = [];
  return {
    warnings,
    logs,
    log: (m) => logs.push(m),
    warn: (m) => warnings.push(m),
    error: (m) => warnings.push(m),
  };
}

/** Every snapshot a watch emitted, plus shortcuts for the latest one. */
export interface Collected {
  readonly sets: EndpointSet[];
  readonly subscription: Subscription;
  completed: boolean;
  last(): EndpointSet | undefined;
  /** Sorted instance ids of the latest snapshot. */
  ids(): string[];
}

export function collect(source: Observable<EndpointSet>, into: Subscription[]): Collected {
  const sets: EndpointSet[] = [];
  const collected: Collected = {
    sets,
    completed: false,
    subscription: undefined as unknown as Subscription,
    last: () => sets.at(-1),
    ids: () => (sets.at(-1)?.instances.map((i) => i.id) ?? []).sort(),
  };
  (collected as { subscription: Subscription }).subscription = source.subscribe({
    next: (set) => sets.push(set),
    complete: () => {
      collected.completed = true;
    },
  });
  into.push(collected.subscription);
  return collected;
}

/** True when the latest snapshot holds exactly these ids. */
export function hasExactly(collected: Collected, ids: string[]): boolean {
  const last = collected.last();
  return last !== undefined && last.resolved && JSON.stringify(collected.ids()) === JSON.stringify([...ids].sort());
}
