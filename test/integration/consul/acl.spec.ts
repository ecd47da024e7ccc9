import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RegistrationError } from '../../../lib/core/errors.js';
import { createServiceInstance } from '../../../lib/core/service-instance.js';
import { ConsulAgent, consulBinary, httpGet } from '../../support/peers/consul.js';
import { waitFor } from '../../support/wait-for.js';
import { agentPut, Closer, RecordingLogger } from './support/consul-kit.js';

const binary = consulBinary();

describe.skipIf(!binary)('consul: ACLs on, default deny', () => {
  const masterToken = `sy-master-${randomUUID()}`;
  let readToken = '';
  let agent: ConsulAgent;
  const closer = new Closer();
  const logger = new RecordingLogger();
  const errors: string[] = [];
  const timing = { ttlMs: 3_000, heartbeatMs: 500 };

  beforeAll(async () => {
    agent = await ConsulAgent.start({ aclMasterToken: masterToken }, binary);
    // A token that may read every service but write none.
    const policy = await agentPut(
      agent.url,
      '/acl/policy',
      { Name: 'read-all', Rules: 'service_prefix "" { policy = "read" }\nnode_prefix "" { policy = "read" }' },
      masterToken,
    );
    expect(policy.status, policy.body).toBe(200);
    const token = await agentPut(
      agent.url,
      '/acl/token',
      { Description: 'read only', Policies: [{ ID: JSON.parse(policy.body).ID }] },
      masterToken,
    );
    expect(token.status, token.body).toBe(200);
    readToken = JSON.parse(token.body).SecretID;
  });
  afterAll(async () => {
    await closer.closeAll();
    await agent?.stop();
  });

  it('registers, heartbeats and discovers with the token', async () => {
    const registry = await closer.registry(agent.url, { token: masterToken }, { logger });
    const registration = await registry.register(
      createServiceInstance({ service: 'acl-orders', id: 'acl-1', address: '127.0.0.1:7601' }),
      timing,
    );
    await registration.heartbeat();
    const seen = closer.collect(registry.watch({ service: 'acl-orders' }));
    await waitFor(() => seen.ids().join() === 'acl-1', { what: 'acl-1 discovered with the token' });
    // The token travelled as a header: the agent knows the instance.
    expect((await httpGet(`${agent.url}/v1/agent/service/acl-1`, { 'x-consul-token': masterToken })).status).toBe(200);
  });

  it('without a token, registration fails with a clear permission error', async () => {
    const registry = await closer.registry(agent.url, {}, { logger });
    const failure = await registry
      .register(createServiceInstance({ service: 'acl-orders', id: 'acl-2', address: '127.0.0.1:7602' }), timing)
      .then(
        () => undefined,
        (e: Error) => e,
      );
    expect(failure).toBeInstanceOf(RegistrationError);
    expect(failure!.message).toMatch(/permission denied/i);
    expect(failure!.message).toMatch(/Set backend_config\.token to an ACL token with service:write on 'acl-orders'/);
    errors.push(failure!.message);
    // Consul filters what an anonymous caller may not read: discovery sees nothing rather than an error.
    const seen = closer.collect(registry.watch({ service: 'acl-orders' }));
    await waitFor(() => seen.latest(), { what: 'an anonymous answer' });
    expect(seen.latest()!.state).toBe('empty');
  });

  it('a read-only token discovers but may not register', async () => {
    const registry = await closer.registry(agent.url, { token: readToken }, { logger });
    const failure = await registry
      .register(createServiceInstance({ service: 'acl-orders', id: 'acl-3', address: '127.0.0.1:7603' }), timing)
      .then(
        () => undefined,
        (e: Error) => e,
      );
    expect(failure?.message).toMatch(/permission denied/i);
    errors.push(failure!.message);
    const seen = closer.collect(registry.watch({ service: 'acl-orders' }));
    await waitFor(() => seen.ids().join() === 'acl-1', { what: 'acl-1 seen with the read-only token' });
  });

  it('with an unknown token, watchers serve stale with the permission error while the agent counts as reachable', async () => {
    const bogus = `sy-bogus-${randomUUID()}`;
    const registry = await closer.registry(agent.url, { token: bogus }, { logger });
    const seen = closer.collect(registry.watch({ service: 'acl-orders' }));
    await waitFor(() => seen.latest(), { what: 'a first emission' });
    expect(seen.latest()).toMatchObject({
      state: 'stale',
      reason: expect.stringMatching(/^registry error: .*HTTP 403 "ACL not found"/),
    });
    expect(registry.reachability.current.reachable).toBe(true);
    errors.push(seen.latest()!.reason!);
    expect(errors.concat(logger.lines).some((l) => l.includes(bogus))).toBe(false);
  });

  it('never writes a token into a log line or an error message', () => {
    expect(logger.lines.length).toBeGreaterThan(0);
    for (const line of logger.lines.concat(errors)) {
      expect(line).not.toContain(masterToken);
      expect(line).not.toContain(readToken);
    }
  });
});
