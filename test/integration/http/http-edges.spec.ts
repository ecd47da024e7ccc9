import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Discovery, HttpEndpointError, NoEndpointsError, type DiscoveryEvent } from '../../../lib/index.js';
import type { PeerProcess } from '../../support/peers/peer-process.js';
import { startGreeterProcess } from '../../support/grpc/greeter.js';
import { startHttpApp, type HttpApp } from '../../support/http/http-apps.js';
import { waitFor } from '../../support/wait-for.js';
import { makeTlsMaterial, type TlsMaterial } from '../consul/support/tls-material.js';

const quiet = { log: () => undefined, warn: () => undefined, error: () => undefined };

/** The error fetch rejected with, and its cause. */
async function rejection(promise: Promise<unknown>): Promise<Error & { cause?: unknown }> {
  try {
    await promise;
  } catch (error) {
    return error as Error & { cause?: unknown };
  }
  throw new Error('expected a rejection');
}

describe('HTTP: bad input, TLS and active checks against real apps', () => {
  let dir: string;
  let tls: TlsMaterial;
  let plain: HttpApp;
  let secure: HttpApp;
  let greeter: { peer: PeerProcess; address: string };
  let discovery: Discovery;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'switchyard-http-edges-'));
    tls = makeTlsMaterial();
    const discoveryOptions = { backend: 'local', backendConfig: { dir } };
    [plain, secure, greeter] = await Promise.all([
      startHttpApp({ id: 'plain-1', platform: 'express', discovery: discoveryOptions }),
      startHttpApp({
        id: 'secure-1',
        platform: 'express',
        // Registered as its own service, so the plain apps' client never meets it.
        discovery: { ...discoveryOptions, instance: { service: 'secure-orders' } },
        tls: { cert: tls.serverCert, key: tls.serverKey, ca: tls.caFile },
      }),
      startGreeterProcess('grpc-only-1'),
    ]);
    discovery = await Discovery.create(discoveryOptions as never, { logger: quiet });
    // A gRPC server listed as a service that callers speak HTTP to.
    const self = discovery.self(discovery.instanceFor({ service: 'grpc-only', address: greeter.address }));
    await self.register();
  });

  afterAll(async () => {
    await discovery?.close();
    await Promise.all([plain?.peer.stop(), secure?.peer.stop(), greeter?.peer.stop()]);
    tls?.remove();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('a host that names no known service: an error naming the host and the services known', async () => {
    discovery.client('orders');
    const error = await rejection(fetch('http://ordres/api/whoami', { dispatcher: discovery.httpDispatcher() }));
    expect(error).toBeInstanceOf(TypeError);
    const cause = error.cause as Error;
    expect(cause.message).toContain("host 'ordres'");
    expect(cause.message).toContain('the services known are orders');
    expect(cause.message).toContain('fallback: true');
  });

  it('with a fallback, other hosts pass through to a normal agent', async () => {
    const dispatcher = discovery.httpDispatcher({ fallback: true });
    const response = await fetch(`${plain.url}/api/whoami`, { dispatcher });
    expect(await response.json()).toEqual({ instance: 'plain-1' });
  });

  it('a service named by a host suffix is discovered without being declared', async () => {
    const dispatcher = discovery.httpDispatcher({ hostSuffix: '.svc.discovery' });
    const response = await fetch('http://orders.svc.discovery/api/whoami', { dispatcher });
    expect(await response.json()).toEqual({ instance: 'plain-1' });
  });

  it('an invalid init fails as fetch itself fails (unknown method, body on GET)', async () => {
    const orders = discovery.client('orders');
    await orders.ready({ timeoutMs: 30_000 });
    for (const init of [{ method: 'GET', body: 'x' }, { method: 'NOT A METHOD' }]) {
      const ours = await rejection(orders.fetch('/api/whoami', init));
      const theirs = await rejection(fetch(`${plain.url}/api/whoami`, init));
      expect(ours).toBeInstanceOf(TypeError);
      expect(ours.message).toBe(theirs.message);
    }
  });

  it('a service with no endpoints: NoEndpointsError with its reason, within the ready timeout', async () => {
    const nobody = discovery.client({ name: 'nobody', readyTimeoutMs: 300 });
    const error = await rejection(nobody.fetch('/api/whoami'));
    const cause = error.cause as NoEndpointsError;
    expect(cause).toBeInstanceOf(NoEndpointsError);
    expect(cause.reason).toBe('empty');
    expect(cause.message).toContain("'nobody'");
  });

  it('a gRPC port answering garbage: an error naming the endpoint, counted as a failure of that endpoint', async () => {
    const grpcOnly = discovery.client({ name: 'grpc-only', retry: { maxAttempts: 2 } });
    await grpcOnly.ready({ timeoutMs: 30_000 });
    const error = await rejection(grpcOnly.fetch('/api/whoami'));
    const cause = error.cause as HttpEndpointError;
    expect(cause).toBeInstanceOf(HttpEndpointError);
    expect(cause.endpoint).toBe(greeter.address);
    expect(cause.message).toContain(greeter.address);
    expect(cause.message).toContain("service 'grpc-only'");
    expect(cause.message).toContain('not HTTP');
    const [report] = grpcOnly.describeEndpoints();
    expect(report.failuresLastMinute).toBeGreaterThanOrEqual(1);
  });

  it('https endpoints with a test CA and a client certificate', async () => {
    const withCertificate = discovery.client({
      name: 'secure-orders',
      http: {
        tls: {
          ca: readFileSync(tls.caFile),
          cert: readFileSync(tls.clientCert),
          key: readFileSync(tls.clientKey),
        },
      },
    });
    await withCertificate.ready({ timeoutMs: 30_000 });
    const response = await withCertificate.fetch('/api/whoami');
    expect(await response.json()).toEqual({ instance: 'secure-1' });

    // The server insists on a client certificate: without one the handshake fails, and says where.
    const withoutCertificate = discovery.client({
      name: 'secure-orders',
      retry: false,
      http: { tls: { ca: readFileSync(tls.caFile) } },
    });
    const error = await rejection(withoutCertificate.fetch('/api/whoami'));
    expect((error.cause as HttpEndpointError).endpoint).toBe(secure.address);
  });

  it("the active check of kind http passes on the app's Terminus endpoint, and fails on a missing path", async () => {
    const checked = async (path: string) => {
      const d = await Discovery.create(
        {
          backend: 'local',
          backendConfig: { dir },
          healthCheck: { enabled: true, kind: 'http', path, interval: 1, timeout: 0.5 },
        },
        { logger: quiet },
      );
      try {
        const events: DiscoveryEvent[] = [];
        const subscription = d.events$.subscribe((e) => e.type === 'health-check' && events.push(e));
        d.client('orders');
        const event = await waitFor(
          () => events.find((e) => e.type === 'health-check' && e.address === plain.address),
          {
            timeoutMs: 15_000,
            what: `a check of ${path}`,
          },
        );
        subscription.unsubscribe();
        return event as Extract<DiscoveryEvent, { type: 'health-check' }>;
      } finally {
        await d.close();
      }
    };
    const healthy = await checked('/health');
    expect(healthy).toMatchObject({ kind: 'http', ok: true });
    const missing = await checked('/no-such-endpoint');
    expect(missing).toMatchObject({ kind: 'http', ok: false, detail: 'HTTP 404' });
  });
});
