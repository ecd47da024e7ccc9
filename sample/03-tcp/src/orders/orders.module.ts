import { Module } from '@nestjs/common';
import { DiscoveryModule } from 'switchyard';
import { OrdersController } from './orders.controller.js';

/**
 * One `orders` instance: a Nest TCP microservice. It registers itself in the
 * embedded `local` registry once its port accepts connections, and on
 * SIGTERM deregisters, drains, then closes.
 */
@Module({
  imports: [
    DiscoveryModule.forRootAsync({
      useFactory: () => ({
        backend: 'local',
        backendConfig: { dir: process.env.DISCOVERY_DIR },
        instance: { service: 'orders', id: process.env.INSTANCE_ID, port: Number(process.env.PORT) },
        registration: { ttl: 6, drainMs: 800 },
      }),
    }),
  ],
  controllers: [OrdersController],
})
export class OrdersModule {}
