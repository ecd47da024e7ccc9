import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect } from 'vitest';
import {
  Discovery,
  EndpointSet,
  resolveDiscoveryConfig,
  type DiscoveryOptions,
  type ServiceClient,
} from '../../lib/index.js';
import { parseDiscoveryConfig } from '../../lib/core/config/load-discovery-config.js';
import { createRegistry } from '../../lib/registry/create-registry.js';
import type { Registry } from '../../lib/registry/registry.interface.js';
import { reliabilityTest, ResultsFile, type ResultSpec } from '../faults/support/reliability-results.js';
import { makeTlsMaterial, type TlsMaterial } from '../integration/consul/support/tls-material.js';
import { ConsulAgent, consulBinary } from '../support/peers/consul.js';
import { EtcdPeer } from '../support/peers/etcd.js';
import { waitFor } from '../support/wait-for.js';
import { pemBodyLines, SecretCapture } from './support/secret-capture.js';

const results = new ResultsFile('security-secrets');
const spec = (scenario: string, title: string, backend: string, asserted: string): ResultSpec => ({
  suite: 'security',
  scenario,
  title,
  backend,
  asserted,
});
const TIMING_OPTIONS = { registration: { ttl: 2, heartbeatInterval: 0.5 }, refreshInterval: 1 } as const;

/** Subscribes to a client's sets and records every reason it ever gives (they reach logs and health output). */
function recordReasons(client: ServiceClient, capture: SecretCapture): () => void {
  const subscription = client.endpoints$.subscribe((set: EndpointSet) => capture.note(set.reason));
  return () => subscription.unsubscribe();
}

describe('security: secrets in configuration errors', () => {
  const secret = `S3cret-${randomUUID()}`;
  const keyBody = 'MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg' + 'Zm9yLXRlc3RzLW9ubHktbm90LWEtcmVhbC1rZXk';

  /** Resolves a config and opens its backend (settings are validated there), recording what either step throws. */
  async function provoke(capture: SecretCapture, options: DiscoveryOptions): Promise<void> {
    await capture.attempt(async () => {
      const registry = await createRegistry(resolveDiscoveryConfig(options), capture);
      await registry.close();
    });
  }

  reliabilityTest(
    results,
    spec(
      'secret-config-token-line-break',
      'config error: malformed Consul token',
      'any',
      'a token that cannot be sent (line break) is refused without echoing it',
    ),
    async () => {
      const capture = new SecretCapture();
      await provoke(capture, { backend: 'consul', backendConfig: { url: 'http://127.0.0.1:1', token: `${secret}\n` } });
      expect(capture.texts.join('\n')).toMatch(/backendConfig\.token: a token on one line/);
      expect(capture.leaks([secret])).toEqual([]);
    },
  );

  reliabilityTest(
    results,
    spec(
      'secret-config-url-credentials',
      'config error: credentials in a URL',
      'any',
      'an etcd endpoint or Consul URL carrying user:password is refused without echoing the password',
    ),
    async () => {
      const capture = new SecretCapture();
      await provoke(capture, { backend: 'consul', backendConfig: { url: `http://admin:${secret}@127.0.0.1:8500` } });
      await provoke(capture, {
        backend: 'etcd',
        backendConfig: { endpoints: [`http://root:${secret}@127.0.0.1:2379`] },
      });
      capture.note(
        await capture.attempt(() =>
          parseDiscoveryConfig(
            `[discovery]\nbackend = "consul"\n[discovery.backend_config]\nurl = "https://admin:${secret}@127.0.0.1:8501"\n`,
            'toml',
          ),
        ),
      );
      expect(capture.texts.length).toBe(3);
      expect(capture.leaks([secret])).toEqual([]);
    },
  );

  reliabilityTest(
    results,
    spec(
      'secret-config-wrong-type',
      'config error: a secret of the wrong type',
      'any',
      'a Consul token or etcd password given as a number is refused without echoing the value',
    ),
    async () => {
      const capture = new SecretCapture();
      await provoke(capture, { backend: 'consul', backendConfig: { token: 918273645546372 as unknown as string } });
      await provoke(capture, {
        backend: 'etcd',
        backendConfig: { auth: { username: 'svc', password: 918273645546372 as unknown as string } },
      });
      expect(capture.texts.length).toBe(2);
      expect(capture.leaks(['918273645546372']).length).toBe(0);
    },
  );

  reliabilityTest(
    results,
    spec(
      'secret-config-tls-key',
      'config error: key material where a path was expected',
      'any',
      'a TLS key pasted without a valid PEM header (so read as a file path) is refused without echoing the key',
    ),
    async () => {
      const capture = new SecretCapture();
      await provoke(capture, {
        backend: 'etcd',
        backendConfig: {
          endpoints: ['https://127.0.0.1:2379'],
          tls: {
            cert: '/nonexistent/cert.pem',
            key: `----BEGIN PRIVATE KEY-----\n${keyBody}\n-----END PRIVATE KEY-----\n`,
          },
        },
      });
      await provoke(capture, {
        backend: 'consul',
        backendConfig: { url: 'https://127.0.0.1:8501', tls: { cert: '/nonexistent/cert.pem', key: keyBody } },
      });
      expect(capture.texts.length).toBe(2);
      expect(capture.leaks([keyBody])).toEqual([]);
    },
  );
});

const binary = consulBinary();

describe.skipIf(!binary)('security: the Consul ACL token never reaches a log or an error', () => {
  const token = `sy-master-${randomUUID()}`;
  const bogus = `sy-bogus-${randomUUID()}`;
  let agent: ConsulAgent;
  const capture = new SecretCapture();
  const opened: Discovery[] = [];
  const stops: Array<() => void> = [];

  async function open(withToken: string): Promise<Discovery> {
    const discovery = await Discovery.create(
      { backend: 'consul', backendConfig: { url: agent.url, token: withToken, wait: 1 }, ...TIMING_OPTIONS },
      { logger: capture },
    );
    opened.push(discovery);
    return discovery;
  }

  beforeAll(async () => {
    agent = await ConsulAgent.start({ aclMasterToken: token }, binary);
    capture.captureConsole();
  });
  afterAll(async () => {
    stops.forEach((stop) => stop());
    await Promise.all(opened.map((d) => d.close()));
    capture.restoreConsole();
    await agent?.stop();
  });

  reliabilityTest(
    results,
    spec(
      'secret-consul-token',
      'secrets: Consul ACL token',
      'consul',
      'while registering, watching, being refused (403) and losing the agent (stop, restart), no log line, error, event or endpoint-set reason contains the token',
    ),
    async (details) => {
      const good = await open(token);
      const self = good.self(good.instanceFor({ service: 'sec-orders', id: 'sec-1', port: 7701 }));
      self.events$.subscribe((event) => capture.note(event));
      await self.register();
      const client = good.client('sec-orders');
      stops.push(recordReasons(client, capture));
      await client.ready();

      // Refused: a token the agent does not know.
      const bad = await open(bogus);
      const refused = bad.self(bad.instanceFor({ service: 'sec-orders', id: 'sec-2', port: 7702 }));
      await capture.attempt(() => refused.register());
      const badClient = bad.client('sec-orders');
      stops.push(recordReasons(badClient, capture));
      await waitFor(() => badClient.snapshot().state === 'stale', { what: 'the bogus token answered 403' });
      await capture.attempt(() => badClient.pick());

      // The agent goes away and comes back (dev mode: every registration is gone).
      await agent.stop();
      await waitFor(() => client.snapshot().state === 'stale', {
        timeoutMs: 15_000,
        what: 'the good client notices the agent is gone',
      });
      await capture.attempt(() => self.heartbeat());
      await agent.restart();
      await waitFor(() => client.snapshot().state === 'ok' && client.snapshot().size === 1, {
        timeoutMs: 20_000,
        what: 'registration restored after the restart',
      });

      details.lines = capture.texts.length;
      expect(capture.texts.some((t) => /stale|unreachable|403|permission/i.test(t))).toBe(true);
      expect(capture.leaks([token, bogus])).toEqual([]);
    },
    { timeout: 60_000 },
  );
});

describe('security: the etcd password never reaches a log or an error', () => {
  const password = `pw-${randomUUID()}`;
  const wrong = `wrong-${randomUUID()}`;
  const rootPassword = `root-${randomUUID()}`;
  let etcd: EtcdPeer;
  const capture = new SecretCapture();
  const opened: Array<Discovery | Registry> = [];
  const stops: Array<() => void> = [];

  beforeAll(async () => {
    etcd = await EtcdPeer.start();
    etcd.etcdctl(['user', 'add', `root:${rootPassword}`]);
    etcd.etcdctl(['user', 'grant-role', 'root', 'root']);
    etcd.etcdctl(['role', 'add', 'svc']);
    etcd.etcdctl(['role', 'grant-permission', 'svc', '--prefix=true', 'readwrite', 'default/services/']);
    etcd.etcdctl(['user', 'add', `svc:${password}`]);
    etcd.etcdctl(['user', 'grant-role', 'svc', 'svc']);
    etcd.etcdctl(['auth', 'enable']);
    capture.captureConsole();
  });
  afterAll(async () => {
    stops.forEach((stop) => stop());
    await Promise.all(opened.map((o) => o.close()));
    capture.restoreConsole();
    await etcd?.stop();
  });

  reliabilityTest(
    results,
    spec(
      'secret-etcd-password',
      'secrets: etcd password',
      'etcd',
      'with a wrong password (strict and not), and while etcd is killed and restarted under a registration and a watch, no log line, error or reason contains a password',
    ),
    async (details) => {
      const options = (pw: string, strict = false): DiscoveryOptions => ({
        backend: 'etcd',
        backendConfig: { endpoints: etcd.endpoints, auth: { username: 'svc', password: pw }, strict, dialTimeout: 2 },
        ...TIMING_OPTIONS,
      });
      // Wrong password: strict start-up fails, a lenient one serves stale with the reason.
      await capture.attempt(() =>
        Discovery.create(options(wrong, true), { logger: capture }).then((d) => opened.push(d)),
      );
      const lenient = await Discovery.create(options(wrong), { logger: capture });
      opened.push(lenient);
      const refused = lenient.client('sec-orders');
      stops.push(recordReasons(refused, capture));
      await waitFor(() => refused.snapshot().state === 'stale', { what: 'the wrong password is refused' });
      await capture.attempt(() => refused.ready({ timeoutMs: 100 }));

      const good = await Discovery.create(options(password), { logger: capture });
      opened.push(good);
      const self = good.self(good.instanceFor({ service: 'sec-orders', id: 'sec-1', port: 7701 }));
      self.events$.subscribe((event) => capture.note(event));
      await self.register();
      const client = good.client('sec-orders');
      stops.push(recordReasons(client, capture));
      await client.ready();

      await etcd.members[0].kill();
      await waitFor(() => client.snapshot().state === 'stale', {
        timeoutMs: 15_000,
        what: 'the watch notices etcd is gone',
      });
      await capture.attempt(() => self.heartbeat());
      await etcd.members[0].start();
      await waitFor(() => client.snapshot().state === 'ok' && client.snapshot().size === 1, {
        timeoutMs: 20_000,
        what: 'back after the restart',
      });

      details.lines = capture.texts.length;
      expect(capture.texts.some((t) => /authentication|stale|unreachable/i.test(t))).toBe(true);
      expect(capture.leaks([password, wrong, rootPassword])).toEqual([]);
    },
    { timeout: 60_000 },
  );
});

describe('security: TLS key contents never reach a log or an error', () => {
  let material: TlsMaterial;
  let otherCa: TlsMaterial;
  let etcd: EtcdPeer;
  const capture = new SecretCapture();
  const opened: Discovery[] = [];
  const stops: Array<() => void> = [];

  beforeAll(async () => {
    material = makeTlsMaterial();
    otherCa = makeTlsMaterial();
    etcd = await EtcdPeer.start({ tls: { ca: material.caFile, cert: material.serverCert, key: material.serverKey } });
    capture.captureConsole();
  });
  afterAll(async () => {
    stops.forEach((stop) => stop());
    await Promise.all(opened.map((d) => d.close()));
    capture.restoreConsole();
    await etcd?.stop();
    material?.remove();
    otherCa?.remove();
  });

  reliabilityTest(
    results,
    spec(
      'secret-tls-key',
      'secrets: TLS private key',
      'etcd',
      'with the client key given inline, neither a refused handshake (unknown CA), nor etcd being killed and restarted, puts any line of the key into a log, error or reason',
    ),
    async (details) => {
      const key = readFileSync(material.clientKey, 'utf8');
      const cert = readFileSync(material.clientCert, 'utf8');
      const options = (ca: string, strict = false): DiscoveryOptions => ({
        backend: 'etcd',
        backendConfig: { endpoints: etcd.endpoints, tls: { ca, cert, key }, strict, dialTimeout: 2 },
        ...TIMING_OPTIONS,
      });
      // A CA that did not sign the server's certificate: the handshake fails.
      await capture.attempt(() =>
        Discovery.create(options(readFileSync(otherCa.caFile, 'utf8'), true), { logger: capture }).then((d) =>
          opened.push(d),
        ),
      );
      const untrusting = await Discovery.create(options(readFileSync(otherCa.caFile, 'utf8')), { logger: capture });
      opened.push(untrusting);
      const refused = untrusting.client('tls-orders');
      stops.push(recordReasons(refused, capture));
      await waitFor(() => refused.snapshot().state === 'stale', { what: 'the handshake is refused' });

      const good = await Discovery.create(options(material.caFile), { logger: capture });
      opened.push(good);
      const self = good.self(good.instanceFor({ service: 'tls-orders', id: 'tls-1', port: 7801 }));
      self.events$.subscribe((event) => capture.note(event));
      await self.register();
      const client = good.client('tls-orders');
      stops.push(recordReasons(client, capture));
      await client.ready();
      await etcd.members[0].kill();
      await waitFor(() => client.snapshot().state === 'stale', {
        timeoutMs: 15_000,
        what: 'the watch notices etcd is gone',
      });
      await etcd.members[0].start();
      await waitFor(() => client.snapshot().state === 'ok' && client.snapshot().size === 1, {
        timeoutMs: 20_000,
        what: 'back after the restart',
      });

      const lines = pemBodyLines(key);
      details.keyLines = lines.length;
      details.lines = capture.texts.length;
      expect(lines.length).toBeGreaterThan(0);
      expect(capture.leaks(lines)).toEqual([]);
    },
    { timeout: 60_000 },
  );
});
