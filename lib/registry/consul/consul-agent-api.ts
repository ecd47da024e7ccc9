import { EventEmitter } from 'node:events';
import type Consul from 'consul';
import { ConsulRequestError, type ConsulHttp } from './consul-http.js';
import type { ConsulServiceDefinition } from './consul-service-codec.js';

/** The `consul` package's client class (a type only: the package is loaded lazily). */
export type ConsulClient = Consul;

/**
 * The agent endpoints the backend uses, each with a deadline and
 * cancellation, all failing with {@link ConsulRequestError}. Check passes
 * and deregistration go through the `consul` client;
 * registration and service reads through {@link ConsulHttp} (see there why).
 *
 * @example
 * await api.passCheck('service:orders-1', signal);
 */
export class ConsulAgentApi {
  constructor(
    readonly http: ConsulHttp,
    private readonly client: ConsulClient,
  ) {}

  /** `PUT /v1/agent/service/register` (an upsert: the same ID replaces the definition). */
  async registerService(definition: ConsulServiceDefinition, signal?: AbortSignal): Promise<void> {
    const what = `register service '${definition.Name}' instance '${definition.ID}'`;
    const response = await this.http.send({
      method: 'PUT',
      path: '/agent/service/register',
      body: definition,
      signal,
      what,
    });
    if (response.status !== 200) throw this.http.failure(response, what);
  }

  /** `GET /v1/agent/service/<id>`: false when the agent does not know the instance. */
  async hasService(id: string, signal?: AbortSignal): Promise<boolean> {
    const what = `read registration of instance '${id}'`;
    const response = await this.http.send({
      method: 'GET',
      path: `/agent/service/${encodeURIComponent(id)}`,
      signal,
      what,
    });
    if (response.status === 404) return false;
    if (response.status !== 200) throw this.http.failure(response, what);
    return true;
  }

  /** `PUT /v1/agent/check/pass/<id>`: refreshes a TTL check. */
  passCheck(checkId: string, signal?: AbortSignal): Promise<void> {
    return this.http.viaClient(`pass TTL check '${checkId}'`, () =>
      withCancel(signal, (ctx) =>
        this.client.agent.check.pass({ id: checkId, timeout: this.http.settings.requestTimeoutMs, ctx } as never),
      ),
    );
  }

  /** `PUT /v1/agent/service/deregister/<id>`. */
  deregisterService(id: string, signal?: AbortSignal): Promise<void> {
    return this.http.viaClient(`deregister instance '${id}'`, () =>
      withCancel(signal, (ctx) =>
        this.client.agent.service.deregister({ id, timeout: this.http.settings.requestTimeoutMs, ctx } as never),
      ),
    );
  }
}

/** The client cancels a request when its `ctx` emitter emits `cancel`. */
async function withCancel<T>(signal: AbortSignal | undefined, call: (ctx: EventEmitter) => Promise<T>): Promise<T> {
  const ctx = new EventEmitter();
  if (signal?.aborted) throw new ConsulRequestError('aborted', undefined, 'aborted');
  const cancel = () => ctx.emit('cancel');
  signal?.addEventListener('abort', cancel, { once: true });
  try {
    return await call(ctx);
  } finally {
    signal?.removeEventListener('abort', cancel);
  }
}
