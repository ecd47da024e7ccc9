import { afterEach, describe, expect, it } from 'vitest';
import { createServiceInstance, Discovery, type Registration } from '../../../lib/index.js';
import { MemoryRegistry, MemoryStore } from '../../../lib/testing.js';
import { waitFor } from '../../support/wait-for.js';

const TIMING = { ttlMs: 90_000, heartbeatMs: 30_000 };
const quiet = { log() {}, warn() {}, error() {} };

describe('instances a registry lists as not healthy (a terminating Kubernetes endpoint)', () => {
  const registrations: Registration[] = [];
  let discovery: Discovery | undefined;

  afterEach(async () => {
    await Promise.all(registrations.splice(0).map((r) => r.deregister()));
    await discovery?.close();
  });

  it('are known to the client but never picked; when none is healthy the reason says filtered', async () => {
    MemoryStore.reset('draining');
    const registry = new MemoryRegistry(MemoryStore.named('draining'));
    const add = async (id: string, port: number, healthy: boolean) =>
      registrations.push(
        await registry.register(
          createServiceInstance({ service: 'orders', id, address: `127.0.0.1:${port}`, healthy }),
          TIMING,
        ),
      );
    await add('ready', 1001, true);
    await add('terminating', 1002, false);
    discovery = await Discovery.create({ backend: 'memory' }, { registry, logger: quiet });
    const client = discovery.client('orders');
    await client.ready();
    await waitFor(() => client.describeEndpoints().length === 2, { what: 'both known' });
    expect(client.snapshot().endpoints.map((e) => e.instance.id)).toEqual(['ready']);
    expect(client.describeEndpoints().map((r) => [r.endpoint.instance.id, r.served])).toEqual([
      ['ready', true],
      ['terminating', false],
    ]);
    for (let i = 0; i < 20; i++) expect(client.pick().instance.id).toBe('ready');

    await registrations.shift()!.deregister();
    await waitFor(() => client.snapshot().size === 0, { what: 'the ready one gone' });
    expect(() => client.pick()).toThrow(/every known instance was filtered out or is unhealthy/);
  });
});
