import type { Subscription } from 'rxjs';
import {
  resolveDiscoveryConfig,
  type ResolvedDiscoveryConfig,
} from '../../../../lib/core/config/resolve-discovery-config.js';
import type { DiscoveryOptions } from '../../../../lib/core/config/discovery-options.js';
import type { EndpointSet } from '../../../../lib/core/endpoint-set.js';
import type { DiscoveryLogger, Registry } from '../../../../lib/registry/registry.interface.js';
import {
  createConsulRegistry,
  type ConsulRegistry,
  type ConsulRegistryOptions,
} from '../../../../lib/registry/consul/consul.registry.js';

/** A logger that keeps every line (tests read them, e.g. to prove the token is never logged). */
export class RecordingLogger implements DiscoveryLogger {
  readonly lines: string[] = [];
  log(message: string): void {
    this.lines.push(`log ${message}`);
  }
  warn(message: string): void {
    this.lines.push(`warn ${message}`);
  }
  error(message: string): void {
    this.lines.push(`error ${message}`);
  }
  debug(message: string): void {
    this.lines.push(`debug ${message}`);
  }
}

/** A resolved consul configuration for tests: 1 s blocking wait unless overridden. */
export function consulConfig(
  url: string,
  backendConfig: Record<string, unknown> = {},
  rest: Partial<DiscoveryOptions> = {},
): ResolvedDiscoveryConfig {
  return resolveDiscoveryConfig({
    ...rest,
    backend: 'consul',
    backendConfig: { url, wait: 1, ...backendConfig },
  });
}

/** Tracks what a test opens so afterEach/afterAll can close all of it. */
export class Closer {
  private readonly registries: Registry[] = [];
  private readonly subscriptions: Subscription[] = [];

  async registry(
    url: string,
    backendConfig: Record<string, unknown> = {},
    options: { logger?: DiscoveryLogger; rest?: Partial<DiscoveryOptions>; tuning?: ConsulRegistryOptions } = {},
  ): Promise<ConsulRegistry> {
    const registry = await createConsulRegistry(
      consulConfig(url, backendConfig, options.rest),
      options.logger ?? new RecordingLogger(),
      { minQueryIntervalMs: 50, ...options.tuning },
    );
    this.registries.push(registry);
    return registry;
  }

  /** Subscribes and records every emission; `latest()` is the last one. */
  collect(source: { subscribe: (observer: (set: EndpointSet) => void) => Subscription }): Collected {
    const sets: EndpointSet[] = [];
    this.subscriptions.push(source.subscribe((set) => sets.push(set)));
    return {
      sets,
      latest: () => sets[sets.length - 1],
      ids: () => (sets[sets.length - 1]?.instances ?? []).map((i) => i.id).sort(),
    };
  }

  async closeAll(): Promise<void> {
    for (const s of this.subscriptions.splice(0)) s.unsubscribe();
    await Promise.all(this.registries.splice(0).map((r) => r.close()));
  }
}

export interface Collected {
  sets: EndpointSet[];
  latest(): EndpointSet | undefined;
  /** Sorted instance ids of the latest set. */
  ids(): string[];
}

/** A direct agent call (PUT with a JSON body), bypassing the code under test. */
export async function agentPut(
  baseUrl: string,
  path: string,
  body?: unknown,
  token?: string,
): Promise<{ status: number; body: string }> {
  const { request } = await import('node:http');
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? '' : JSON.stringify(body);
    const req = request(
      `${baseUrl}/v1${path}`,
      {
        method: 'PUT',
        agent: false,
        headers: { 'content-length': Buffer.byteLength(payload), ...(token ? { 'x-consul-token': token } : {}) },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

/** Registers a service straight with the agent, passing TTL check included. */
export async function registerDirect(
  baseUrl: string,
  definition: Record<string, unknown>,
  token?: string,
): Promise<void> {
  const response = await agentPut(
    baseUrl,
    '/agent/service/register',
    {
      Check: { CheckID: `service:${String(definition.ID)}`, TTL: '600s', Status: 'passing' },
      ...definition,
    },
    token,
  );
  if (response.status !== 200) throw new Error(`direct register failed: ${response.status} ${response.body}`);
}
