import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ConsulAgent, consulBinary } from '../../support/peers/consul.js';
import { waitFor } from '../../support/wait-for.js';
import { configFor } from '../../../lib/registry/backend-context.js';
import { ConsulHttp } from '../../../lib/registry/consul/consul-http.js';
import { agentPut, Closer, consulConfig, RecordingLogger, registerDirect } from './support/consul-kit.js';
import { CountingProxy } from './support/counting-proxy.js';

const binary = consulBinary();

// More services than long-polls: past backend_config.max_blocking_queries,
// watches are served by one catalog-wide watch (two long-polls driving reads
// of the services that changed), so 1,000 services never need 1,000 sockets
// against the agent's 200 per client IP.
describe.skipIf(!binary)('consul: more watched services than blocking queries', () => {
  let agent: ConsulAgent;
  const closer = new Closer();

  beforeAll(async () => {
    agent = await ConsulAgent.start({}, binary);
  });
  afterEach(() => closer.closeAll());
  afterAll(async () => {
    await agent?.stop();
  });

  const register = (service: string, id: string, port: number, check = true) =>
    check
      ? registerDirect(agent.url, {
          ID: id,
          Name: service,
          Address: '127.0.0.1',
          Port: port,
          Meta: { namespace: 'default' },
        })
      : agentPut(agent.url, '/agent/service/register', {
          ID: id,
          Name: service,
          Address: '127.0.0.1',
          Port: port,
          Meta: { namespace: 'default' },
        });

  it('follows 12 services with 2 long-polls: joins, leaves and failing checks, on a bounded number of queries', async () => {
    const services = Array.from({ length: 12 }, (_, i) => `wide-${i}`);
    for (const [i, service] of services.entries()) await register(service, `${service}-a`, 7000 + i);
    const proxy = await CountingProxy.start(agent.url);
    try {
      // A 1 s wait, so that long-polls run out of it while idle below.
      const registry = await closer.registry(proxy.url, { maxBlockingQueries: 2, wait: 1 });
      const watches = services.map((service) => closer.collect(registry.watch({ service })));
      await waitFor(() => watches.every((w, i) => w.ids().join() === `${services[i]}-a`), {
        what: 'every service read',
      });

      await register('wide-7', 'wide-7-b', 7100);
      await waitFor(() => watches[7].ids().join() === 'wide-7-a,wide-7-b', { what: 'a join in a wide-mode service' });
      await agentPut(agent.url, '/agent/service/deregister/wide-9-a');
      await waitFor(() => watches[9].latest()?.state === 'empty', { what: 'a leave in a wide-mode service' });
      await agentPut(agent.url, '/agent/check/fail/service:wide-5-a');
      await waitFor(() => watches[5].ids().length === 0, { what: 'a failing check taken out' });
      await agentPut(agent.url, '/agent/check/pass/service:wide-5-a');
      await waitFor(() => watches[5].ids().join() === 'wide-5-a', { what: 'the check passing again' });

      // Idle now: the catalog-wide long-polls block and run out of their wait
      // with nothing changed; nothing is read, every check list included
      // (37 MB at 100,000 instances).
      const before = proxy.requests.length;
      const isChecksPoll = (r: (typeof proxy.requests)[number]) =>
        r.path === '/v1/health/state/any' && r.query.has('index');
      await waitFor(() => proxy.requests.slice(before).filter(isChecksPoll).length >= 3, {
        what: 'the health long-poll running out of its wait at least twice',
      });
      const during = proxy.requests.slice(before).filter((r) => !r.query.has('index'));
      expect(during.map((r) => r.path)).toEqual([]);
      // The health long-poll asks for no check: its answers are an index only.
      const checksPolls = proxy.requests.filter(isChecksPoll);
      expect(checksPolls.length).toBeGreaterThan(2);
      expect(checksPolls.every((r) => r.query.get('filter') === 'CheckID == "" and CheckID != ""')).toBe(true);
      // Two services have long-polls of their own; the other ten are read without one.
      const blockingPaths = new Set(proxy.requests.filter((r) => r.query.has('index')).map((r) => r.path));
      expect([...blockingPaths].filter((p) => p.startsWith('/v1/health/service/'))).toHaveLength(2);
      expect(blockingPaths).toContain('/v1/health/state/any');
      expect(blockingPaths).toContain('/v1/catalog/services');
      expect(watches.every((w) => w.sets.every((s) => s.state !== 'stale'))).toBe(true);
    } finally {
      await proxy.close();
    }
  });

  it('does not read a long-poll answer whose wait ran out with nothing changed', async () => {
    await register('quiet', 'quiet-a', 7600);
    const proxy = await CountingProxy.start(agent.url, { garbleUnchanged: true });
    try {
      const logger = new RecordingLogger();
      // One service, its own long-poll (per-service mode), 1 s wait.
      const registry = await closer.registry(proxy.url, { wait: 1 }, { logger });
      const watch = closer.collect(registry.watch({ service: 'quiet' }));
      await waitFor(() => watch.ids().join() === 'quiet-a', { what: 'the service read' });
      const since = Date.now();
      // Three more long-polls: at least two of them answered unchanged, garbled by the proxy.
      await waitFor(() => proxy.requests.filter((r) => r.query.has('index') && r.at >= since).length >= 3, {
        what: 'the long-poll running out of its wait twice',
      });
      expect(logger.lines.filter((line) => line.startsWith('warn'))).toEqual([]);
      expect(watch.latest()?.state).toBe('ok');
      expect(watch.ids().join()).toBe('quiet-a');
    } finally {
      await proxy.close();
    }
  });

  it('does not spin on an agent that answers long-polls at once with an unchanged index', async () => {
    await register('hasty', 'hasty-a', 7800);
    const proxy = await CountingProxy.start(agent.url, { answerAtOnce: true });
    try {
      // Every service through the catalog-wide watch, at most one long-poll start per 100 ms each.
      const registry = await closer.registry(
        proxy.url,
        { maxBlockingQueries: 0 },
        { tuning: { minQueryIntervalMs: 100 } },
      );
      const watch = closer.collect(registry.watch({ service: 'hasty' }));
      await waitFor(() => watch.ids().join() === 'hasty-a', { what: 'the service read' });
      const since = Date.now();
      const polls = () => proxy.requests.filter((r) => r.path === '/v1/health/state/any' && r.at >= since);
      // A measurement window, not synchronisation: count the long-polls sent in it.
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      const sent = polls().filter((r) => r.query.has('index')).length;
      // 100 ms apart: about 10 (a spin would be hundreds), and no read of every check (nothing changed).
      expect(sent).toBeGreaterThanOrEqual(3);
      expect(sent).toBeLessThanOrEqual(13);
      expect(polls().filter((r) => !r.query.has('index'))).toEqual([]);
    } finally {
      await proxy.close();
    }
  });

  it('drains a long-poll answer whose index did not move, keeping none of its body', async () => {
    await register('drained', 'drained-a', 7700);
    const http = new ConsulHttp(configFor(consulConfig(agent.url), 'consul').backendConfig);
    try {
      const ask = (query: Record<string, string>, unlessIndex?: number) =>
        http.send({ method: 'GET', path: '/health/service/drained', query, what: 'test', unlessIndex });
      const first = await ask({});
      const index = Number(first.headers['x-consul-index']);
      expect(first.body).toContain('drained-a');
      // The wait runs out with nothing changed: same index, and the body is not kept.
      const unchanged = await ask({ index: String(index), wait: '100ms' }, index);
      expect(unchanged.headers['x-consul-index']).toBe(String(index));
      expect(unchanged.body).toBe('');
      // An answer with another index is read as usual.
      const other = await ask({}, index - 1);
      expect(other.body).toContain('drained-a');
    } finally {
      http.agent.destroy();
    }
  });

  it('sees an instance registered without a check through the service list, within the probe interval', async () => {
    for (let i = 0; i < 4; i++) await register(`nocheck-${i}`, `nocheck-${i}-a`, 7200 + i);
    const registry = await closer.registry(agent.url, { maxBlockingQueries: 0 });
    const watches = [0, 1, 2, 3].map((i) => closer.collect(registry.watch({ service: `nocheck-${i}` })));
    await waitFor(() => watches.every((w) => w.ids().length === 1), { what: 'every service read' });
    await register('nocheck-2', 'nocheck-2-b', 7300, false);
    await waitFor(() => watches[2].ids().join() === 'nocheck-2-a,nocheck-2-b', {
      what: 'a check-less join',
      timeoutMs: 15_000,
    });
  });

  it('serves stale while the agent is gone, and reads every service again once it is back', async () => {
    for (let i = 0; i < 3; i++) await register(`back-${i}`, `back-${i}-a`, 7400 + i);
    const registry = await closer.registry(agent.url, { maxBlockingQueries: 0 });
    const watches = [0, 1, 2].map((i) => closer.collect(registry.watch({ service: `back-${i}` })));
    await waitFor(() => watches.every((w) => w.ids().length === 1), { what: 'every service read' });
    await agent.restart();
    await waitFor(() => watches.every((w) => w.sets.some((s) => s.state === 'stale')), {
      what: 'stale while the agent was down',
      timeoutMs: 20_000,
    });
    // Dev mode lost everything: register again, and every watch follows.
    for (let i = 0; i < 3; i++) await register(`back-${i}`, `back-${i}-b`, 7500 + i);
    await waitFor(() => watches.every((w, i) => w.latest()?.state === 'ok' && w.ids().join() === `back-${i}-b`), {
      what: 'every service current again',
      timeoutMs: 20_000,
    });
  });
});
