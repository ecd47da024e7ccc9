import { resolveDiscoveryConfig } from '../../../lib/core/config/resolve-discovery-config.js';
import type { DiscoveryConfigInput } from '../../../lib/core/config/discovery-options.js';
import { createServiceInstance, type ServiceInstanceInput } from '../../../lib/core/service-instance.js';
import type { EndpointSet } from '../../../lib/core/endpoint-set.js';
import { createRegistry } from '../../../lib/registry/create-registry.js';
import type { DiscoveryLogger } from '../../../lib/registry/registry.interface.js';
import type { EtcdRegistry } from '../../../lib/registry/etcd/etcd.registry.js';
import type { Observable, Subscription } from 'rxjs';

/** Short TTLs keep outage tests fast: 2 s TTL, heartbeat a third of it. */
export const TEST_TTL_S = 2;
export const TEST_TIMING = { ttlMs: TEST_TTL_S * 1000, heartbeatMs: Math.round((TEST_TTL_S * 1000) / 3) };

/** A logger that keeps every line, so tests can assert on warnings. */
export class CapturingLogger implements DiscoveryLogger {
  readonly lines: Array<{ level: 'log' | 'warn' | 'error'; message: string }> = [];
  log(message: string): void {
    this.lines.push({ level: 'log', message });
  }
  warn(message: string): void {
    this.lines.push({ level: 'warn', message });
  }
  error(message: string): void {
    this.lines.push({ level: 'error', message });
  }
  warnings(): string[] {
    return this.lines.filter((l) => l.level === 'warn').map((l) => l.message);
  }
}

/** Creates an etcd registry through the public factory path (config validation included). */
export async function openRegistry(
  endpoints: string[],
  backendConfig: Record<string, unknown> = {},
  logger: DiscoveryLogger = new CapturingLogger(),
  extra: Partial<DiscoveryConfigInput> = {},
): Promise<EtcdRegistry> {
  const config = resolveDiscoveryConfig({
    backend: 'etcd',
    backendConfig: { endpoints, ...backendConfig },
    registration: { ttl: TEST_TTL_S },
    refreshInterval: 1,
    ...extra,
  });
  return (await createRegistry(config, logger)) as EtcdRegistry;
}

let counter = 0;
/** A fresh instance of `service` on a made-up loopback port. */
export function testInstance(service: string, input: Partial<ServiceInstanceInput> = {}) {
  counter++;
  return createServiceInstance({
    service,
    address: `127.0.0.1:${40000 + counter}`,
    id: `${service}-${process.pid}-${counter}`,
    ...input,
  });
}

/** Subscribes and records every emission with its arrival time. */
export class Recorder {
  readonly sets: EndpointSet[] = [];
  readonly times: number[] = [];
  private readonly subscription: Subscription;
  constructor(source: Observable<EndpointSet>) {
    this.subscription = source.subscribe((set) => {
      this.sets.push(set);
      this.times.push(Date.now());
    });
  }
  get last(): EndpointSet | undefined {
    return this.sets.at(-1);
  }
  /** Ids in the latest set. */
  ids(): string[] {
    return (this.last?.instances ?? []).map((i) => i.id).sort();
  }
  /** Index of the first emission after `from` that satisfies `test`. */
  firstIndex(test: (set: EndpointSet) => boolean, from = 0): number {
    for (let i = from; i < this.sets.length; i++) if (test(this.sets[i])) return i;
    return -1;
  }
  stop(): void {
    this.subscription.unsubscribe();
  }
}
