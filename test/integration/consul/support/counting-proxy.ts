import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One request seen by the proxy. */
export interface SeenRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  at: number;
}

/**
 * A loopback HTTP proxy in front of the Consul agent that records every
 * request, so tests can count what a registry sends (blocking queries,
 * rate under an index reset) without instrumenting the code under test.
 *
 * @example
 * const proxy = await CountingProxy.start(agent.url); // point backend_config.url at proxy.url
 */
export class CountingProxy {
  readonly requests: SeenRequest[] = [];

  private constructor(
    private readonly server: Server,
    private readonly target: URL,
  ) {}

  /**
   * With `garbleUnchanged`, a long-poll answer whose index is the one it was
   * asked with (its wait ran out, nothing changed) reaches the client as
   * `not json`: a client that parses such answers logs a warning.
   */
  /**
   * With `answerAtOnce`, `index` and `wait` are removed before a request
   * reaches the agent: every long-poll is answered at once, with the index
   * it was asked with when nothing changed (an agent that does not block).
   */
  static async start(
    target: string,
    options: { garbleUnchanged?: boolean; answerAtOnce?: boolean } = {},
  ): Promise<CountingProxy> {
    const upstream = new URL(target);
    const server = createServer();
    const proxy = new CountingProxy(server, upstream);
    server.on('request', (req, res) => {
      const url = new URL(req.url ?? '/', 'http://proxy');
      proxy.requests.push({ method: req.method ?? 'GET', path: url.pathname, query: url.searchParams, at: Date.now() });
      let forwardPath = req.url;
      if (options.answerAtOnce) {
        const stripped = new URLSearchParams(url.searchParams);
        stripped.delete('index');
        stripped.delete('wait');
        forwardPath = `${url.pathname}?${stripped.toString()}`;
      }
      const forward = request(
        {
          host: upstream.hostname,
          port: upstream.port,
          method: req.method,
          path: forwardPath,
          headers: req.headers,
          agent: false,
        },
        (answer) => {
          const asked = url.searchParams.get('index');
          if (options.garbleUnchanged && asked !== null && answer.headers['x-consul-index'] === asked) {
            answer.resume();
            const body = 'not json';
            const { 'transfer-encoding': _chunked, ...headers } = answer.headers;
            res.writeHead(answer.statusCode ?? 502, { ...headers, 'content-length': String(body.length) });
            res.end(body);
            return;
          }
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
        },
      );
      // The agent went away: drop the client's connection the way the agent's own death would.
      forward.on('error', () => res.destroy());
      res.on('close', () => forward.destroy());
      req.pipe(forward);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return proxy;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** Requests whose path starts with `prefix`, optionally only those after `since` (ms epoch). */
  count(prefix: string, since = 0): number {
    return this.requests.filter((r) => r.path.startsWith(prefix) && r.at >= since).length;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
