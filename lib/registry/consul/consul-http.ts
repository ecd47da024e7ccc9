import { Agent as HttpAgent, request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { DiscoveryError } from '../../core/errors.js';
import { ReachabilityTracker } from '../shared/reachability.js';
import type { ConsulSettings } from './consul.schema.js';

/** How a request to the agent failed. */
export type ConsulFailureKind =
  /** No answer: connection refused/reset, DNS failure, TLS failure. */
  | 'unreachable'
  /** No answer before the deadline. */
  | 'timeout'
  /** Cancelled by us (unsubscribe, close). */
  | 'aborted'
  /** 403: the ACL token is missing, unknown or lacks a right. */
  | 'permission'
  /** 404. */
  | 'not-found'
  /** 400 and other 4xx: the request itself is wrong. */
  | 'rejected'
  /** 5xx: the agent answered but could not serve (no leader, unknown check in 1.8). */
  | 'server';

/**
 * A failed request to the Consul agent. The message names the operation,
 * the agent URL and Consul's own answer; it never contains the ACL token.
 */
export class ConsulRequestError extends DiscoveryError {
  constructor(
    readonly kind: ConsulFailureKind,
    readonly status: number | undefined,
    message: string,
    /** Consul's answer text (trimmed), when it answered. */
    readonly detail = '',
  ) {
    super(message);
  }

  /** True when retrying later may succeed (agent down, busy, no leader). */
  get transient(): boolean {
    return this.kind === 'unreachable' || this.kind === 'timeout' || this.kind === 'server';
  }

  /** True when the agent did not answer at all. */
  get noAnswer(): boolean {
    return this.kind === 'unreachable' || this.kind === 'timeout';
  }
}

/** One HTTP answer of the agent. */
export interface ConsulResponse {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

export interface ConsulRequest {
  method: 'GET' | 'PUT';
  /** Below `/v1`, e.g. `/health/service/orders`. */
  path: string;
  query?: Record<string, string | undefined>;
  body?: unknown;
  /** Default: the settings' request timeout. */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Names the operation in errors, e.g. `register service 'orders'`. */
  what: string;
  /**
   * A long-poll's index: an answer carrying the same X-Consul-Index (its
   * wait ran out, nothing changed) is drained, and its body is `''`. Such
   * a body can be 100 KB or more, a string V8 allocates in the old
   * generation; idle long-polls would otherwise bring a full collection
   * of the whole heap every minute.
   */
  unlessIndex?: number;
}

/** Largest answer read; a health answer for thousands of instances stays far below. */
const MAX_BODY_BYTES = 64 * 1024 * 1024;

/**
 * The connection to one Consul agent: a keep-alive HTTP(S) agent carrying
 * the TLS material, the ACL token header, deadlines, cancellation, and the
 * registry's reachability, which every request updates (any HTTP answer
 * counts, a 403 too; while the agent does not answer the reason starts
 * with `registry unreachable:`).
 *
 * Node's own `http`/`https` are used here, not the `consul` client, for
 * the calls the client serves poorly: blocking health queries need an
 * `AbortSignal` and the `X-Consul-Index` header of every answer, and
 * service registration needs `Weights`, which the client's
 * `agent.service.register` silently drops (consul 2.0.1).
 *
 * @example
 * const http = new ConsulHttp(settings); const res = await http.send({ method: 'GET', path: '/status/leader', what: 'probe' });
 */
export class ConsulHttp {
  /** Shared with the `consul` client so both use one pool and one TLS setup. */
  readonly agent: HttpAgent | HttpsAgent;
  /** Whether the agent answered the latest request; `probe()` asks for the cluster leader (needs no ACL token). */
  readonly reachability = new ReachabilityTracker(() => this.checkAgent());

  constructor(readonly settings: ConsulSettings) {
    const common = { keepAlive: true, keepAliveMsecs: 1_000 };
    this.agent = settings.secure
      ? new HttpsAgent({
          ...common,
          ...(settings.tls?.ca ? { ca: settings.tls.ca } : {}),
          ...(settings.tls?.cert ? { cert: settings.tls.cert } : {}),
          ...(settings.tls?.key ? { key: settings.tls.key } : {}),
          rejectUnauthorized: settings.tls?.rejectUnauthorized ?? true,
        })
      : new HttpAgent(common);
  }

  /** Removes the token from any text that might reach a log or an error. */
  redact(text: string): string {
    const token = this.settings.token;
    return token ? text.split(token).join('[redacted]') : text;
  }

  /** Records the outcome of a request made outside {@link send} (the `consul` client). */
  noteAnswered(): void {
    this.reachability.reachable();
  }

  noteUnreachable(detail: string): void {
    this.reachability.unreachable(this.unreachableReason(detail));
  }

  private unreachableReason(detail: string): string {
    return `registry unreachable: consul agent at ${this.settings.displayUrl} (${this.redact(detail)})`;
  }

  /** `GET /v1/status/leader`: any answer proves the agent is there; rejects only when none came. */
  private async checkAgent(): Promise<void> {
    try {
      await this.send({ method: 'GET', path: '/status/leader', what: 'read the cluster leader' });
    } catch (error) {
      if (error instanceof ConsulRequestError && error.noAnswer) {
        throw new Error(this.unreachableReason(error.detail || error.kind), { cause: error });
      }
    }
  }

  /**
   * Sends one request. Resolves with any HTTP answer (check `status`);
   * rejects with {@link ConsulRequestError} when there is none.
   */
  send(req: ConsulRequest): Promise<ConsulResponse> {
    const url = new URL(`${this.settings.baseUrl}/v1${req.path}`);
    for (const [key, value] of Object.entries(req.query ?? {})) {
      if (value !== undefined) url.searchParams.set(key, value);
    }
    // Consul reads `?passing` as a flag; URLSearchParams writes `passing=`, which it accepts too.
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.settings.token) headers['x-consul-token'] = this.settings.token;
    let payload: Buffer | undefined;
    if (req.body !== undefined) {
      payload = Buffer.from(JSON.stringify(req.body));
      headers['content-type'] = 'application/json';
      headers['content-length'] = String(payload.length);
    } else if (req.method === 'PUT') {
      headers['content-length'] = '0';
    }
    const timeoutMs = req.timeoutMs ?? this.settings.requestTimeoutMs;
    const where = `${req.what} (consul agent at ${this.settings.displayUrl})`;

    return new Promise<ConsulResponse>((resolve, reject) => {
      if (req.signal?.aborted) {
        reject(new ConsulRequestError('aborted', undefined, `${where}: aborted`));
        return;
      }
      let settled = false;
      const finish = (error: ConsulRequestError | undefined, response?: ConsulResponse) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        req.signal?.removeEventListener('abort', onAbort);
        if (error) {
          if (error.noAnswer) this.noteUnreachable(error.detail || error.kind);
          reject(error);
        } else {
          this.noteAnswered();
          resolve(response!);
        }
      };
      const send = this.settings.secure ? httpsRequest : httpRequest;
      const request = send(url, { method: req.method, headers, agent: this.agent });
      const onAbort = () => {
        finish(new ConsulRequestError('aborted', undefined, `${where}: aborted`));
        request.destroy();
      };
      req.signal?.addEventListener('abort', onAbort, { once: true });
      const timer = setTimeout(() => {
        finish(
          new ConsulRequestError(
            'timeout',
            undefined,
            `${where}: no answer within ${timeoutMs} ms`,
            `no answer within ${timeoutMs} ms`,
          ),
        );
        request.destroy();
      }, timeoutMs);
      request.on('error', (error: NodeJS.ErrnoException) => {
        const detail = this.redact(error.code ? `${error.code}: ${error.message}` : error.message);
        finish(new ConsulRequestError('unreachable', undefined, `${where}: ${detail}`, detail));
      });
      request.on('response', (response) => {
        const onError = (error: Error) => {
          const detail = this.redact(error.message);
          finish(new ConsulRequestError('unreachable', undefined, `${where}: ${detail}`, detail));
        };
        response.on('error', onError);
        if (
          req.unlessIndex !== undefined &&
          response.statusCode === 200 &&
          response.headers['x-consul-index'] === String(req.unlessIndex)
        ) {
          response.on('end', () => finish(undefined, { status: 200, headers: response.headers, body: '' }));
          response.resume();
          return;
        }
        const chunks: Buffer[] = [];
        let size = 0;
        response.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_BODY_BYTES) {
            response.destroy();
            finish(
              new ConsulRequestError(
                'server',
                response.statusCode,
                `${where}: answer larger than ${MAX_BODY_BYTES} bytes`,
              ),
            );
            return;
          }
          chunks.push(chunk);
        });
        response.on('end', () => {
          finish(undefined, {
            status: response.statusCode ?? 0,
            headers: response.headers,
            body: Buffer.concat(chunks).toString('utf8'),
          });
        });
      });
      request.end(payload);
    });
  }

  /** Turns a non-2xx answer into a {@link ConsulRequestError} naming the operation. */
  failure(response: ConsulResponse, what: string): ConsulRequestError {
    return statusError(
      response.status,
      this.redact(response.body.trim().slice(0, 300)),
      `${what} (consul agent at ${this.settings.displayUrl})`,
    );
  }

  /**
   * Runs a call of the `consul` client, mapping its errors to
   * {@link ConsulRequestError} and updating reachability like {@link send}.
   */
  async viaClient<T>(what: string, call: () => Promise<T>): Promise<T> {
    const where = `${what} (consul agent at ${this.settings.displayUrl})`;
    try {
      const result = await call();
      this.noteAnswered();
      return result;
    } catch (raw) {
      if (raw instanceof ConsulRequestError) throw raw;
      const error = raw as Error & {
        isAbort?: boolean;
        isTimeout?: boolean;
        isResponse?: boolean;
        statusCode?: number;
        code?: string;
      };
      // The client prefixes messages with "consul: <operation>: ".
      const text = this.redact(String(error?.message ?? error).replace(/^consul: [\w.]+: /, ''));
      if (error?.isAbort) throw new ConsulRequestError('aborted', undefined, `${where}: aborted`);
      if (error?.isResponse && typeof error.statusCode === 'number') {
        this.noteAnswered();
        throw statusError(error.statusCode, text, where);
      }
      const failure = new ConsulRequestError(
        error?.isTimeout ? 'timeout' : 'unreachable',
        undefined,
        `${where}: ${text}`,
        text,
      );
      this.noteUnreachable(text);
      throw failure;
    }
  }

  /** Closes pooled sockets (in-flight requests are aborted by their owners first) and ends `reachability`. */
  close(): void {
    this.reachability.close();
    this.agent.destroy();
  }
}

function statusError(status: number, detail: string, where: string): ConsulRequestError {
  const kind: ConsulFailureKind =
    status === 403 ? 'permission' : status === 404 ? 'not-found' : status >= 500 ? 'server' : 'rejected';
  const hint = kind === 'permission' ? ' (ACL: set backend_config.token to a token with the needed rights)' : '';
  return new ConsulRequestError(
    kind,
    status,
    `${where}: HTTP ${status}${detail ? ` ${JSON.stringify(detail)}` : ''}${hint}`,
    detail,
  );
}
