import type { Channel, Client, ServiceClientConstructor } from '@grpc/grpc-js';
import type { ClientProxy } from '@nestjs/microservices';
import type { Dispatcher } from 'undici';
import type { Endpoint } from '../core/endpoint.js';
import type { PickContext } from '../balancing/picker.js';
import type { CallOptions, HttpFetchInit } from './client-options.js';
import type { ServiceClient } from './service-client.js';

/** What `call()` hands its function on each attempt. */
export interface CallAttempt {
  channel: Channel;
  endpoint: Endpoint;
  /** The call's overall deadline (pass it to the stub). */
  deadline: Date | undefined;
  /** 1 for the first attempt. */
  attempt: number;
  /** Aborted when another (hedged) attempt won and `hedging.cancel` is on: cancel the call (e.g. `call.cancel()`). */
  signal: AbortSignal;
}

/** The gRPC side of a ServiceClient (lib/transports/grpc implements it). */
export interface GrpcClientTransport {
  getChannel(context?: PickContext): Promise<Channel>;
  getService<T = Client>(service: string | ServiceClientConstructor): T;
  call<T>(fn: (attempt: CallAttempt) => Promise<T>, options?: CallOptions): Promise<T>;
  /** grpc-js target of the balanced channel, e.g. `discovery://d1/orders`. */
  readonly balancedTarget: string;
  close(): void;
}

/** The HTTP side of a ServiceClient (lib/transports/http implements it). */
export interface HttpClientTransport {
  /** WHATWG fetch, balanced per request over the service's endpoints. */
  fetch(input: string | URL, init?: HttpFetchInit): Promise<Response>;
  /** Sends one undici dispatch to this service, whatever its origin names (the discovery-wide dispatcher routes here). */
  send(options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean;
  close(): Promise<void>;
}

/** The Nest TCP side of a ServiceClient (lib/transports/tcp implements it). */
export interface TcpClientTransport {
  /** A ClientProxy balanced per send() / emit(). */
  proxy(): ClientProxy;
  close(): Promise<void>;
}

/**
 * Transports a ServiceClient can use, each made on first use. The client
 * core knows only these shapes; the discovery layer supplies the
 * implementations, so the core never imports a transport.
 */
export interface ClientTransports {
  grpc?: (client: ServiceClient) => GrpcClientTransport;
  http?: (client: ServiceClient) => HttpClientTransport;
  tcp?: (client: ServiceClient) => TcpClientTransport;
}
