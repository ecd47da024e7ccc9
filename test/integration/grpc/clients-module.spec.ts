import 'reflect-metadata';
import { Inject, Injectable, Module, type INestApplicationContext, type OnModuleInit } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ClientsModule, Transport, type ClientGrpc } from '@nestjs/microservices';
import { firstValueFrom, type Observable } from 'rxjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServiceInstance, DiscoveryModule, type Registration } from '../../../lib/index.js';
import { MemoryRegistry, MemoryStore } from '../../../lib/testing.js';
import { GREETER_PROTO, GreeterServer } from '../../support/grpc/greeter.js';
import { waitFor } from '../../support/wait-for.js';

interface GreeterService {
  sayHello(request: { name: string }): Observable<{ message: string; instance: string }>;
}

@Injectable()
class GreeterUser implements OnModuleInit {
  greeter!: GreeterService;
  constructor(@Inject('GREETER') private readonly client: ClientGrpc) {}
  onModuleInit(): void {
    this.greeter = this.client.getService<GreeterService>('Greeter');
  }
}

describe("Nest's ClientsModule with url 'discovery:///greeter'", () => {
  const servers: GreeterServer[] = [];
  const registrations: Registration[] = [];
  let registry: MemoryRegistry;
  let app: INestApplicationContext;

  async function addServer(id: string): Promise<GreeterServer> {
    const server = await new GreeterServer(id).start();
    servers.push(server);
    registrations.push(
      await registry.register(createServiceInstance({ service: 'greeter', id, address: server.address }), {
        ttlMs: 90_000,
        heartbeatMs: 30_000,
      }),
    );
    return server;
  }

  beforeAll(async () => {
    MemoryStore.reset('clients-module');
    registry = new MemoryRegistry(MemoryStore.named('clients-module'));
    for (const id of ['n1', 'n2', 'n3']) await addServer(id);
    @Module({
      imports: [
        DiscoveryModule.forRoot({
          backend: 'memory',
          registry,
          loadBalance: 'round_robin',
          logger: { log() {}, warn() {}, error() {} },
        }),
        ClientsModule.register([
          {
            name: 'GREETER',
            transport: Transport.GRPC,
            options: { package: 'greeter', protoPath: GREETER_PROTO, url: 'discovery:///greeter' },
          },
        ]),
      ],
      providers: [GreeterUser],
    })
    class AppModule {}
    app = await NestFactory.createApplicationContext(AppModule, { logger: false, abortOnError: false });
  });

  afterAll(async () => {
    await app?.close();
    await Promise.all(registrations.map((r) => r.deregister()));
    servers.forEach((s) => s.kill());
  });

  it('spreads calls over 3 real servers and follows a fourth that registers mid-run', async () => {
    const greeter = app.get(GreeterUser).greeter;
    const call = () => firstValueFrom(greeter.sayHello({ name: 'nest' }));
    await waitFor(
      async () =>
        new Set(await Promise.all(Array.from({ length: 9 }, () => call().then((r) => r.instance)))).size === 3,
      {
        what: 'calls reaching all three servers',
      },
    );
    for (const s of servers) s.calls = 0;
    for (let i = 0; i < 150; i++) await call();
    expect(servers.map((s) => s.calls)).toEqual([50, 50, 50]);

    const fourth = await addServer('n4');
    await waitFor(async () => (await call()).instance === 'n4', { what: 'the fourth server receiving calls' });
    for (const s of servers) s.calls = 0;
    for (let i = 0; i < 200; i++) await call();
    expect(servers.map((s) => s.calls)).toEqual([50, 50, 50, 50]);
    expect(fourth.calls).toBe(50);
  });
});
