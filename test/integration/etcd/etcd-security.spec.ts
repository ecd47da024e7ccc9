import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { EtcdRegistry } from '../../../lib/registry/etcd/etcd.registry.js';
import { EtcdPeer, type EtcdTlsFiles } from '../../support/peers/etcd.js';
import { waitFor } from '../../support/wait-for.js';
import { CapturingLogger, openRegistry, Recorder, TEST_TIMING, testInstance } from './etcd-test-kit.js';

/** A CA, a server certificate for 127.0.0.1 and a client certificate, made with openssl. */
async function makeCertificates(dir: string): Promise<EtcdTlsFiles & { clientCert: string; clientKey: string }> {
  const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  ssl('req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=switchyard test CA');
  await writeFile(
    join(dir, 'server.ext'),
    'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n',
  );
  await writeFile(join(dir, 'client.ext'), 'extendedKeyUsage=clientAuth\n');
  for (const [name, cn] of [
    ['server', '127.0.0.1'],
    ['client', 'switchyard-client'],
  ] as const) {
    ssl('req', ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`);
    ssl(
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      'ca.crt',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-out',
      `${name}.crt`,
      '-days',
      '2',
      '-extfile',
      `${name}.ext`,
    );
  }
  return {
    ca: join(dir, 'ca.crt'),
    cert: join(dir, 'server.crt'),
    key: join(dir, 'server.key'),
    clientCert: join(dir, 'client.crt'),
    clientKey: join(dir, 'client.key'),
  };
}

describe('etcd backend: TLS with client certificates', () => {
  let etcd: EtcdPeer;
  let dir: string;
  let certs: Awaited<ReturnType<typeof makeCertificates>>;
  const opened: EtcdRegistry[] = [];
  const recorders: Recorder[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'switchyard-etcd-tls-'));
    certs = await makeCertificates(dir);
    etcd = await EtcdPeer.start({ tls: certs });
  });
  afterEach(async () => {
    for (const r of recorders.splice(0)) r.stop();
    await Promise.all(opened.splice(0).map((r) => r.close()));
  });
  afterAll(async () => {
    await etcd?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('registers and discovers over TLS with a client certificate (files or inline PEM)', async () => {
    expect(etcd.endpoint).toMatch(/^https:\/\//);
    const writer = await openRegistry(etcd.endpoints, {
      tls: { ca: certs.ca, cert: certs.clientCert, key: certs.clientKey },
      strict: true,
    });
    const pem = async (path: string) => (await readFile(path)).toString();
    const reader = await openRegistry(etcd.endpoints, {
      tls: { ca: await pem(certs.ca), cert: await pem(certs.clientCert), key: await pem(certs.clientKey) },
      strict: true,
    });
    opened.push(writer, reader);
    const watch = new Recorder(reader.watch({ service: 'tls-svc' }));
    recorders.push(watch);
    const mine = testInstance('tls-svc');
    const registration = await writer.register(mine, TEST_TIMING);
    await waitFor(() => watch.ids().includes(mine.id), { what: 'discovered over TLS' });
    await registration.deregister();
    await waitFor(() => watch.last?.state === 'empty', { what: 'deregistered over TLS' });
  });

  it('is refused without a client certificate, and says so at start-up in strict mode', async () => {
    await expect(openRegistry(etcd.endpoints, { tls: { ca: certs.ca }, strict: true, dialTimeout: 2 })).rejects.toThrow(
      /etcd is unreachable at https:\/\/127\.0\.0\.1:\d+ \(backend_config\.strict is set\)/,
    );
  });
});

describe('etcd backend: username and password', () => {
  let etcd: EtcdPeer;
  const opened: EtcdRegistry[] = [];
  const recorders: Recorder[] = [];

  beforeAll(async () => {
    etcd = await EtcdPeer.start();
    etcd.etcdctl(['user', 'add', 'root:root-secret']);
    etcd.etcdctl(['user', 'grant-role', 'root', 'root']);
    // A service account that may only touch the services of namespace "default" (not the Rust crate's
    // "flare" and "flare-test" roots, which a default-namespace query also reads).
    etcd.etcdctl(['role', 'add', 'svc']);
    etcd.etcdctl(['role', 'grant-permission', 'svc', '--prefix=true', 'readwrite', 'default/services/']);
    etcd.etcdctl(['user', 'add', 'svc:svc-secret']);
    etcd.etcdctl(['user', 'grant-role', 'svc', 'svc']);
    etcd.etcdctl(['auth', 'enable']);
  });
  afterEach(async () => {
    for (const r of recorders.splice(0)) r.stop();
    await Promise.all(opened.splice(0).map((r) => r.close()));
  });
  afterAll(async () => {
    await etcd?.stop();
  });

  it('registers and discovers as a user limited to the service prefix', async () => {
    const auth = { username: 'svc', password: 'svc-secret' };
    const logger = new CapturingLogger();
    const writer = await openRegistry(etcd.endpoints, { auth, strict: true });
    const reader = await openRegistry(etcd.endpoints, { auth, strict: true }, logger);
    opened.push(writer, reader);
    const watch = new Recorder(reader.watch({ service: 'auth-svc' }));
    recorders.push(watch);
    const mine = testInstance('auth-svc');
    const registration = await writer.register(mine, TEST_TIMING);
    await waitFor(() => watch.ids().includes(mine.id), { what: 'discovered with auth' });
    expect(reader.reachability.current.reachable).toBe(true);
    expect(watch.last!.state).toBe('ok');
    // The roots it may not read are left out, each said once; the one it may read is served.
    const refused = logger.warnings().filter((w) => /etcd refused reading flare(-test)?\/services\/auth-svc\//.test(w));
    expect(refused).toHaveLength(2);
    expect(refused[0]).toMatch(/permission denied/);
    // Heartbeats keep working under auth.
    await registration.heartbeat();
    expect(
      etcd.etcdctl(['get', `default/services/auth-svc/${mine.id}`, '--print-value-only'], ['--user=root:root-secret']),
    ).toContain(mine.id);
    await registration.deregister();
    await waitFor(() => watch.last?.state === 'empty', { what: 'deregistered with auth' });
  });

  it('rejects a wrong password clearly in strict mode', async () => {
    await expect(
      openRegistry(etcd.endpoints, { auth: { username: 'svc', password: 'wrong' }, strict: true }),
    ).rejects.toThrow(/refused the start-up check \(backend_config\.strict is set\): .*authentication failed/);
  });
});
