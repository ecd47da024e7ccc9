import type { TcpClientTransport } from '../../client/client-transports.js';
import type { ServiceClient } from '../../client/service-client.js';
import { DiscoveryClientProxy } from './discovery-client-proxy.js';

/**
 * The TCP side of one ServiceClient: one DiscoveryClientProxy bound to the
 * client (what `client.proxy()` returns, the same object every time),
 * closed with the client.
 */
export class TcpProxyTransport implements TcpClientTransport {
  private readonly clientProxy: DiscoveryClientProxy;

  constructor(client: ServiceClient) {
    this.clientProxy = DiscoveryClientProxy.forClient(client);
  }

  proxy(): DiscoveryClientProxy {
    return this.clientProxy;
  }

  close(): Promise<void> {
    this.clientProxy.close();
    return Promise.resolve();
  }
}
