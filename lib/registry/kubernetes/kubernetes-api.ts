import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { KubernetesConnection } from './kubernetes-connection.js';

/** The API server answered with an error Status (401, 403, 410, 5xx...). */
export class KubernetesApiError extends Error {
  constructor(
    readonly status: number,
    /** The Status `reason` (Forbidden, Expired, ...), when the body had one. */
    readonly reason: string | undefined,
    /** The Status `message`, or the body's start. */
    readonly detail: string,
  ) {
    super(`HTTP ${status}${reason ? ` ${reason}` : ''}: ${detail}`);
  }
}

/** One watch event as the API server streams it. */
export interface WatchEvent {
  /** ADDED, MODIFIED, DELETED, BOOKMARK or ERROR. */
  type: string;
  object: Record<string, unknown> & { metadata?: { name?: string; resourceVersion?: string } };
}

/** What a watch reports while its stream is open. */
export interface WatchHandlers {
  /** The server accepted the watch (HTTP 200). */
  opened(): void;
  /** The events of one received chunk, in order (so a burst is applied and published once). */
  events(events: WatchEvent[]): void;
  /** A line that is not JSON: skipped. */
  malformed(line: string): void;
}

/**
 * A small client of the Kubernetes API over node:http(s): GET a JSON
 * document, or follow a watch (chunked JSON lines). The bearer token is
 * asked of the connection before every request, so a rotated token file is
 * picked up. Requests and watches end when their signal aborts; `close()`
 * drops the agent's sockets.
 *
 * @example
 * const api = new KubernetesApi(connection, 10_000); const version = await api.get('/version');
 */
export class KubernetesApi {
  private readonly agent: HttpAgent;

  constructor(
    readonly connection: KubernetesConnection,
    private readonly requestTimeoutMs: number,
  ) {
    const secure = connection.server.protocol === 'https:';
    this.agent = secure
      ? new HttpsAgent({
          keepAlive: true,
          ca: connection.ca,
          cert: connection.cert,
          key: connection.key,
          rejectUnauthorized: !connection.insecureSkipTlsVerify,
          servername: connection.tlsServerName,
        })
      : new HttpAgent({ keepAlive: true });
  }

  /** GETs `path` (with its query) and parses the JSON answer; throws KubernetesApiError or a network error. */
  async get<T>(path: string, signal?: AbortSignal): Promise<T> {
    const response = await this.open(path, signal, this.requestTimeoutMs);
    const body = await readAll(response, this.requestTimeoutMs);
    try {
      return JSON.parse(body) as T;
    } catch {
      throw new Error(`GET ${path}: the API server answered ${response.statusCode} with a body that is not JSON`);
    }
  }

  /**
   * Follows a watch until the server ends it (resolves) or it fails
   * (rejects). `idle` is called after `idleMs` without a byte and again
   * each such period: when it rejects, the watch is ended with its error
   * (an API server that stalled sends nothing and answers nothing).
   */
  async watch(
    path: string,
    handlers: WatchHandlers,
    options: { signal: AbortSignal; idleMs: number; idle: () => Promise<void>; maxMs: number },
  ): Promise<void> {
    const response = await this.open(path, options.signal, this.requestTimeoutMs);
    handlers.opened();
    await new Promise<void>((resolvePromise, reject) => {
      let pending = '';
      let settled = false;
      let idleTimer: NodeJS.Timeout | undefined;
      const finish = (error?: Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(idleTimer);
        clearTimeout(deadline);
        options.signal.removeEventListener('abort', onAbort);
        if (error) {
          response.destroy();
          reject(error);
        } else resolvePromise();
      };
      const armIdle = () => {
        clearTimeout(idleTimer);
        if (settled) return;
        idleTimer = setTimeout(() => {
          options.idle().then(armIdle, (error: Error) => finish(error));
        }, options.idleMs);
      };
      // A connection that died without a word outlives the server's own timeout: end it.
      const deadline = setTimeout(
        () => finish(new Error(`the watch outlived its timeout by ${this.requestTimeoutMs} ms without ending`)),
        options.maxMs,
      );
      const onAbort = () => finish(new Error('watch stopped'));
      options.signal.addEventListener('abort', onAbort, { once: true });
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => {
        armIdle();
        pending += chunk;
        const lines = pending.split('\n');
        pending = lines.pop()!;
        const events: WatchEvent[] = [];
        for (const line of lines) {
          if (line.trim() === '') continue;
          try {
            events.push(JSON.parse(line) as WatchEvent);
          } catch {
            handlers.malformed(line);
          }
        }
        if (events.length > 0) handlers.events(events);
      });
      response.on('end', () => finish());
      response.on('error', (error) => finish(error));
      response.on('close', () => finish(response.complete ? undefined : new Error('the watch connection was closed')));
      armIdle();
    });
  }

  /** Drops idle sockets; open requests end through their signals. */
  close(): void {
    this.agent.destroy();
  }

  /** Sends a GET and resolves with a 2xx response; other statuses become KubernetesApiError. */
  private async open(path: string, signal: AbortSignal | undefined, timeoutMs: number): Promise<IncomingMessage> {
    const token = await this.connection.token();
    const url = new URL(path, this.connection.server);
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
    const response = await new Promise<IncomingMessage>((resolvePromise, reject) => {
      const request = send(
        url,
        {
          agent: this.agent,
          headers: {
            accept: 'application/json',
            'user-agent': 'switchyard',
            ...(token ? { authorization: `Bearer ${token}` } : {}),
          },
          signal,
        },
        resolvePromise,
      );
      // Until the response headers: a stalled server accepts the connection and says nothing.
      const timer = setTimeout(
        () => request.destroy(new Error(`no answer from the API server ${url.host} within ${timeoutMs} ms`)),
        timeoutMs,
      );
      request.once('response', () => clearTimeout(timer));
      request.once('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
      request.end();
    });
    const status = response.statusCode ?? 0;
    if (status >= 200 && status < 300) return response;
    const body = await readAll(response, timeoutMs).catch(() => '');
    let reason: string | undefined;
    let detail = body.slice(0, 300);
    try {
      const parsed = JSON.parse(body) as { reason?: unknown; message?: unknown };
      if (typeof parsed.reason === 'string') reason = parsed.reason;
      if (typeof parsed.message === 'string') detail = parsed.message;
    } catch {
      // not a Status: keep the text
    }
    throw new KubernetesApiError(status, reason, detail || `HTTP ${status}`);
  }
}

function readAll(response: IncomingMessage, timeoutMs: number): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    const chunks: Buffer[] = [];
    const timer = setTimeout(
      () => response.destroy(new Error(`the API server's answer stalled for ${timeoutMs} ms`)),
      timeoutMs,
    );
    response.on('data', (chunk: Buffer) => chunks.push(chunk));
    response.on('end', () => {
      clearTimeout(timer);
      resolvePromise(Buffer.concat(chunks).toString('utf8'));
    });
    response.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    // Destroyed without an error (the request was aborted): no timer may outlive it.
    response.on('close', () => {
      clearTimeout(timer);
      if (!response.complete) reject(new Error('the API server connection closed before the answer ended'));
    });
  });
}
