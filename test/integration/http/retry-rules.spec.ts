import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { Discovery, HttpEndpointError, type ServiceClient } from '../../../lib/index.js';
import { findFreePort } from '../../../lib/core/tcp.js';
import { waitFor } from '../../support/wait-for.js';

const quiet = { log: () => undefined, warn: () => undefined, error: () => undefined };
const RETRIES_ON = { maxAttempts: 3, initialBackoffMs: 1, maxBackoffMs: 5, budget: { maxTokens: 100, tokenRatio: 1 } };

type Behaviour = (request: IncomingMessage, response: ServerResponse, body: string) => void;

/** A real HTTP server that counts the requests it read, per method. */
class CountingServer {
  readonly seen: Array<{ method: string; body: string }> = [];
  private server: Server | undefined;
  port = 0;

  constructor(public behaviour: Behaviour) {}

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  count(method: string): number {
    return this.seen.filter((s) => s.method === method).length;
  }

  async start(): Promise<this> {
    this.server = createServer((request, response) => {
      let body = '';
      request.on('data', (chunk: Buffer) => (body += chunk.toString()));
      request.on('end', () => {
        this.seen.push({ method: request.method ?? '?', body });
        this.behaviour(request, response, body);
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as { port: number }).port;
    return this;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise((resolve) => this.server?.close(resolve));
  }
}

const ok: Behaviour = (_request, response) => response.end('ok');

describe('HTTP retry rules (real HTTP servers that count what they read)', () => {
  const servers: CountingServer[] = [];
  const discoveries: Discovery[] = [];

  afterEach(async () => {
    await Promise.all(discoveries.splice(0).map((d) => d.close()));
    await Promise.all(servers.splice(0).map((s) => s.stop()));
  });
  afterAll(async () => {
    await Promise.all(servers.map((s) => s.stop()));
  });

  /** A client over these servers (static backend), round robin from the first. */
  async function clientOver(addresses: string[], http: Record<string, unknown> = {}): Promise<ServiceClient> {
    const discovery = await Discovery.create(
      { backend: 'static', backendConfig: { addresses }, loadBalance: 'round_robin' },
      { logger: quiet, random: () => 0 },
    );
    discoveries.push(discovery);
    const client = discovery.client({ name: 'orders', retry: RETRIES_ON, http });
    await client.ready();
    return client;
  }

  async function serve(...behaviours: Behaviour[]): Promise<CountingServer[]> {
    const started = await Promise.all(behaviours.map((b) => new CountingServer(b).start()));
    servers.push(...started);
    return started;
  }

  it('GET answered 503 with Retry-After goes to another endpoint; that endpoint is avoided for the time asked', async () => {
    const [busy, fine] = await serve((_q, r) => {
      r.writeHead(503, { 'retry-after': '30' });
      r.end('busy');
    }, ok);
    const client = await clientOver([busy.address, fine.address]);
    for (let i = 0; i < 6; i++) expect((await client.fetch('/x')).status).toBe(200);
    expect(busy.count('GET')).toBe(1);
    const endpoint = client.snapshot().endpoints.find((e) => e.address === busy.address)!;
    expect(client.avoidedUntil(endpoint)! - Date.now()).toBeGreaterThan(20_000);
    // Overload is not a failure: nothing is ejected, nothing counted against it.
    expect(client.healthStatus.ejected).toBe(0);
    expect(client.describeEndpoints().find((e) => e.endpoint.address === busy.address)?.failuresLastMinute).toBe(0);
  });

  it('POST answered 429 is not sent again: the caller gets the answer as it came', async () => {
    const [busy, fine] = await serve((_q, r) => {
      r.writeHead(429, { 'retry-after': '1', 'content-type': 'text/plain' });
      r.end('slow down');
    }, ok);
    const client = await clientOver([busy.address, fine.address]);
    // Round robin: one POST meets each server.
    const answers = await Promise.all(
      ['a', 'b'].map(async (body) => {
        const response = await client.fetch('/orders', { method: 'POST', body });
        return `${response.status} ${await response.text()}`;
      }),
    );
    expect(answers.sort()).toEqual(['200 ok', '429 slow down']);
    expect(busy.count('POST')).toBe(1);
    expect(fine.count('POST')).toBe(1);
  });

  it('every endpoint answering 429 to a GET: the last answer is delivered, body intact', async () => {
    const busy =
      (name: string): Behaviour =>
      (_q, r) => {
        r.writeHead(429, { 'retry-after': '1' });
        r.end(`busy ${name}`);
      };
    const [a, b] = await serve(busy('a'), busy('b'));
    const client = await clientOver([a.address, b.address]);
    const response = await client.fetch('/x');
    expect(response.status).toBe(429);
    expect(await response.text()).toMatch(/^busy [ab]$/);
    expect(a.count('GET') + b.count('GET')).toBe(RETRIES_ON.maxAttempts);
  });

  it("5xx is the application's answer by default; with treat5xxAsFailure a GET is retried and the 5xx counts as a failure", async () => {
    const failing: Behaviour = (_q, r) => {
      r.writeHead(500);
      r.end('boom');
    };
    const [broken, fine] = await serve(failing, ok);
    const brokenFailures = (c: ServiceClient) =>
      c.describeEndpoints().find((e) => e.endpoint.address === broken.address)?.failuresLastMinute;
    const plain = await clientOver([broken.address, fine.address]);
    const plainStatuses = [(await plain.fetch('/x')).status, (await plain.fetch('/x')).status];
    expect(plainStatuses.sort()).toEqual([200, 500]);
    expect(brokenFailures(plain)).toBe(0);

    const strict = await clientOver([broken.address, fine.address], { treat5xxAsFailure: true });
    const before = broken.count('GET');
    for (let i = 0; i < 2; i++) expect((await strict.fetch('/x')).status).toBe(200);
    // Every GET that met the broken endpoint was retried, and counted against it.
    expect(broken.count('GET') - before).toBeGreaterThanOrEqual(1);
    expect(brokenFailures(strict)).toBe(broken.count('GET') - before);
    // A POST is not idempotent: its 500 comes back as it is.
    const postStatuses = [
      (await strict.fetch('/x', { method: 'POST', body: 'b' })).status,
      (await strict.fetch('/x', { method: 'POST', body: 'b' })).status,
    ];
    expect(postStatuses.sort()).toEqual([200, 500]);
  });

  it('a POST whose connection was reset after the server read it is not sent again', async () => {
    const [resetting, fine] = await serve((request) => request.socket.resetAndDestroy(), ok);
    const client = await clientOver([resetting.address, fine.address]);
    // Round robin: one POST meets each server.
    const outcomes = await Promise.all(
      ['a', 'b'].map((body) =>
        client.fetch('/orders', { method: 'POST', body }).then(
          (r) => r.status,
          (e: Error & { cause: unknown }) => e.cause,
        ),
      ),
    );
    expect(outcomes.filter((o) => o === 200)).toHaveLength(1);
    expect(outcomes.filter((o) => o instanceof HttpEndpointError)).toHaveLength(1);
    expect(resetting.count('POST')).toBe(1);
    expect(fine.count('POST')).toBe(1);
    // A GET, idempotent, is retried on the other endpoint.
    for (let i = 0; i < 2; i++) expect((await client.fetch('/x')).status).toBe(200);
  });

  it('a PUT with a stream body is never replayed, even though PUT is idempotent', async () => {
    const [resetting, fine] = await serve((request) => request.socket.resetAndDestroy(), ok);
    const client = await clientOver([resetting.address, fine.address]);
    const put = (text: string) => {
      const body = new ReadableStream({
        start(controller) {
          controller.enqueue(new TextEncoder().encode(text));
          controller.close();
        },
      });
      return client.fetch('/x', { method: 'PUT', body, duplex: 'half' }).then(
        (r) => r.status,
        (e: Error) => e,
      );
    };
    const outcomes = [await put('first'), await put('second')];
    expect(outcomes.filter((o) => o === 200)).toHaveLength(1);
    expect(outcomes.filter((o) => o instanceof TypeError)).toHaveLength(1);
    // Each body reached one server, once.
    expect([...resetting.seen, ...fine.seen].map((s) => s.body).sort()).toEqual(['first', 'second']);
    expect(resetting.count('PUT')).toBe(1);
  });

  it('a POST to an endpoint that refuses connections provably never left: it goes to another endpoint', async () => {
    const [fine] = await serve(ok);
    const closedPort = await findFreePort();
    const client = await clientOver([`127.0.0.1:${closedPort}`, fine.address]);
    for (let i = 0; i < 4; i++)
      expect((await client.fetch('/orders', { method: 'POST', body: `${i}` })).status).toBe(200);
    expect(fine.seen.map((s) => s.body)).toEqual(['0', '1', '2', '3']);
  });

  it("the caller's abort ends the request and is never retried", async () => {
    const silent: Behaviour = () => undefined;
    const [a, b] = await serve(silent, silent);
    const client = await clientOver([a.address, b.address]);
    const controller = new AbortController();
    const pending = client.fetch('/x', { signal: controller.signal }).catch((e: Error) => e);
    await waitFor(() => a.count('GET') + b.count('GET') === 1, { what: 'the request at a server' });
    controller.abort();
    expect(((await pending) as Error).name).toBe('AbortError');
    await waitFor(() => client.describeEndpoints().every((e) => e.inFlight === 0), { what: 'nothing in flight' });
    expect(a.count('GET') + b.count('GET')).toBe(1);
    expect(client.describeEndpoints().map((e) => e.failuresLastMinute)).toEqual([0, 0]);
  });
});
