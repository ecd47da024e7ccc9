import { Module } from '@nestjs/common';
import { ClientsModule } from '@nestjs/microservices';
import { DiscoveryClientProxy, DiscoveryModule } from 'switchyard';
import { OrdersCaller } from './orders-caller.service.js';

/**
 * A client-only app: Nest's ClientsModule with switchyard's balanced
 * ClientProxy in place of ClientTCP. `orders.get` is a read, so it is
 * declared idempotent: a send lost with its instance is retried on another.
 */
@Module({
  imports: [
    DiscoveryModule.forRootAsync({
      useFactory: () => ({
        backend: 'local',
        backendConfig: { dir: process.env.DISCOVERY_DIR },
        loadBalance: 'round_robin',
      }),
    }),
    // The options of the `orders` client: the ClientsModule proxy below and @InjectServiceClient('orders') share it.
    DiscoveryModule.forFeature([{ name: 'orders', tcp: { idempotent: ['orders.get'], timeoutMs: 2_000 } }]),
    ClientsModule.register([{ name: 'ORDERS', customClass: DiscoveryClientProxy, options: { service: 'orders' } }]),
  ],
  providers: [OrdersCaller],
})
export class CallerModule {}
