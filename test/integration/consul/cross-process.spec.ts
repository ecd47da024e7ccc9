import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { PeerProcess } from '../../support/peers/peer-process.js';
import { ConsulAgent, consulBinary, httpGet } from '../../support/peers/consul.js';
import { waitFor } from '../../support/wait-for.js';
import { assertBuilt, startChildRegistrar } from './support/child-registrar.js';
import { Closer } from './support/consul-kit.js';
import { CountingProxy } from './support/counting-proxy.js';

const binary = consulBinary();

describe.skipIf(!binary)('consul: an instance registered by another process', () => {
  let agent: ConsulAgent;
  let proxy: CountingProxy;
  const closer = new Closer();
  const children: PeerProcess[] = [];

  beforeAll(async () => {
    assertBuilt();
    agent = await ConsulAgent.start({}, binary);
    proxy = await CountingProxy.start(agent.url);
  });
  afterEach(async () => {
    await Promise.all(children.splice(0).map((c) => c.stop()));
    await closer.closeAll();
  });
  afterAll(async () => {
    await proxy?.close();
    await agent?.stop();
  });

  it('is discovered through a blocking query, deregistered on SIGTERM, and then gone', async () => {
    // A 20 s wait: a poll would take that long; a blocking query answers on the change.
    const watcher = await closer.registry(proxy.url, { wait: 20 });
    const seen = closer.collect(watcher.watch({ service: 'xp-orders' }));
    await waitFor(() => seen.latest()?.state === 'empty', { what: 'the first (empty) answer' });
    const path = '/v1/health/service/xp-orders';
    await waitFor(() => proxy.requests.some((r) => r.path === path && r.query.has('index')), {
      what: 'a blocking query in flight',
    });
    const before = proxy.count(path);

    const child = await startChildRegistrar(
      agent.url,
      { service: 'xp-orders', id: 'xp-1', address: '127.0.0.1:7001', version: '1.0.0', tags: { tier: 'gold' } },
      { ttlMs: 5_000, heartbeatMs: 1_000 },
    );
    children.push(child);

    await waitFor(() => seen.ids().join() === 'xp-1', { timeoutMs: 10_000, what: 'xp-1 discovered' });
    // The answer came on the query that was already waiting (plus at most a re-query per index bump).
    expect(proxy.count(path) - before).toBeLessThanOrEqual(3);
    const blocking = proxy.requests.filter((r) => r.path === path).slice(1);
    expect(blocking.every((r) => r.query.get('wait') === '20000ms' && Number(r.query.get('index')) >= 1)).toBe(true);
    const found = seen.latest()!.instances[0];
    expect(found).toMatchObject({
      address: '127.0.0.1:7001',
      version: '1.0.0',
      tags: { tier: 'gold' },
      namespace: 'default',
    });

    await child.stop();
    expect(child.log).toContain('DEREGISTERED');
    await waitFor(() => seen.latest()?.state === 'empty', { timeoutMs: 10_000, what: 'xp-1 gone' });
    // Deregistered from the agent itself, not merely failing its check.
    expect((await httpGet(`${agent.url}/v1/agent/service/xp-1`)).status).toBe(404);
  });

  it('drops out of the passing set when the registering process is stalled (SIGSTOP), and returns on SIGCONT', async () => {
    const ttlMs = 2_000;
    const watcher = await closer.registry(agent.url, { wait: 5 });
    const seen = closer.collect(watcher.watch({ service: 'xp-stall' }));
    const child = await startChildRegistrar(
      agent.url,
      { service: 'xp-stall', id: 'stall-1', address: '127.0.0.1:7002' },
      { ttlMs, heartbeatMs: 500 },
    );
    children.push(child);
    await waitFor(() => seen.ids().join() === 'stall-1', { timeoutMs: 10_000, what: 'stall-1 discovered' });

    child.signal('SIGSTOP');
    // TTL plus one query round (the blocking query returns as soon as the check turns critical).
    await waitFor(() => seen.latest()?.state === 'empty', {
      timeoutMs: ttlMs + 5_000 + 1_000,
      what: 'stall-1 out of the passing set',
    });
    expect(seen.latest()!.state).toBe('empty');

    child.signal('SIGCONT');
    await waitFor(() => seen.ids().join() === 'stall-1', { timeoutMs: 10_000, what: 'stall-1 passing again' });
  });
});
