import type { Endpoint } from '../../core/endpoint.js';
import { DiscoveryError } from '../../core/errors.js';
import { errorCode, isParserError } from './http-outcome.js';

/**
 * A request to one endpoint of a service failed at the transport level
 * (refused, reset, timed out, or an answer that is not HTTP — say, a gRPC
 * port). Names the service and the endpoint; keeps the socket error's
 * `code` and the original error as `cause`. fetch() rejects with a
 * TypeError whose `cause` is this error.
 *
 * @example
 * try { await client.fetch('/x'); } catch (e) { if (e.cause instanceof HttpEndpointError) console.log(e.cause.endpoint); }
 */
export class HttpEndpointError extends DiscoveryError {
  /** The socket or undici error code (`ECONNREFUSED`, `UND_ERR_SOCKET`, `HPE_INVALID_CONSTANT`, ...). */
  readonly code: string | undefined;
  /** `host:port` of the endpoint. */
  readonly endpoint: string;
  /** Instance id of the endpoint. */
  readonly instance: string;

  constructor(
    readonly service: string,
    endpoint: Endpoint,
    cause: unknown,
  ) {
    const code = errorCode(cause);
    const message = (cause as Error | undefined)?.message ?? String(cause);
    const what = isParserError(cause)
      ? `answered with something that is not HTTP: ${message}`
      : `failed: ${message}${code && !message.includes(code) ? ` (${code})` : ''}`;
    super(`service '${service}', endpoint ${endpoint.address} (instance ${endpoint.instance.id}) ${what}`, { cause });
    this.code = code;
    this.endpoint = endpoint.address;
    this.instance = endpoint.instance.id;
  }
}
