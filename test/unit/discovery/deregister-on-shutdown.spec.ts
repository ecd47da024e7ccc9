import 'reflect-metadata';
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { createServer, type Server } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { Discovery, DiscoveryModule } from '../../../lib/index.js';
import { MemoryRegistry, MemoryStore } from '../../../lib/testing.js';
import { waitFor } from '../../support/wait-for.js';

const quiet = { log() {}, warn() {}, error() {} };

function listen(): Promise<Server> {
  return new Promise((resolve) => {
    const server = createServer((socket) => socket.end());
    server.listen(0, '127.0.0.1', () => resolve(server));
  });
}

describe('registration.deregister_on_shutdown', () => {
  const servers: Server[] = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
  });

  for (const deregisterOnShutdown of [true, false]) {
    it(`${deregisterOnShutdown ? 'removes' : 'leaves'} the own instance when Discovery.close() runs with ${deregisterOnShutdown}`, async () => {
      const store = new MemoryStore();
      const discovery = await Discovery.create(
        { backend: 'memory', registration: { deregisterOnShutdown } },
        { registry: new MemoryRegistry(store), logger: quiet },
      );
      const self = discovery.self(discovery.instanceFor({ service: 'orders', port: 50051, id: 'orders-1' }));
      await self.register();
      expect(store.get('orders-1')).toBeDefined();
      await discovery.close();
      expect(store.get('orders-1') !== undefined).toBe(!deregisterOnShutdown);
      expect(self.state).toBe(deregisterOnShutdown ? 'deregistered' : 'registered');
    });
  }

  it('leaves a Nest app registered on shutdown when it is false', async () => {
    const server = await listen();
    servers.push(server);
    const port = (server.address() as { port: number }).port;
    const store = new MemoryStore();
    @Module({
      imports: [
        DiscoveryModule.forRoot({
          backend: 'memory',
          registry: new MemoryRegistry(store),
          registration: { deregisterOnShutdown: false },
          instance: { service: 'orders', port, id: 'orders-nest' },
          logger: quiet,
        }),
      ],
    })
    class AppModule {}
    const app = await NestFactory.createApplicationContext(AppModule, { logger: false, abortOnError: false });
    await waitFor(() => store.get('orders-nest') !== undefined, { what: 'the app to register' });
    await app.close();
    expect(store.get('orders-nest')).toBeDefined();
  });
});
