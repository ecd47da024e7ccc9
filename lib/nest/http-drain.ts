import type { Server as HttpServer, IncomingMessage, ServerResponse } from 'node:http';

/**
 * Makes every response of `server` say `Connection: close` from now on: a
 * keep-alive client gets the answer to the request it sent, then its
 * connection closes, and its next request goes to an endpoint still listed.
 * The app keeps serving — in-flight requests and new ones — during the drain
 * delay; Nest closes the server afterwards. Works for Express and Fastify
 * alike: both answer through Node's http server, and the listener runs
 * before theirs. Returns a function that removes the listener.
 *
 * @example
 * const stop = closeConnectionsAfterEachResponse(app.getHttpServer());
 */
export function closeConnectionsAfterEachResponse(server: HttpServer): () => void {
  const markClose = (_request: IncomingMessage, response: ServerResponse): void => {
    if (!response.headersSent) response.setHeader('connection', 'close');
  };
  server.prependListener('request', markClose);
  return () => server.off('request', markClose);
}

/** The Node http(s) server of an HTTP adapter, when the app has one that listens. */
export function listeningHttpServer(adapter: unknown): HttpServer | undefined {
  const server = (adapter as { getHttpServer?: () => unknown } | undefined)?.getHttpServer?.();
  const candidate = server as Partial<HttpServer> | undefined;
  return typeof candidate?.prependListener === 'function' && candidate.listening === true
    ? (candidate as HttpServer)
    : undefined;
}
