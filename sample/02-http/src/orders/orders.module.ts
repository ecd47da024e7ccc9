import { Module } from '@nestjs/common';
import { DiscoveryModule } from 'switchyard';
import { OrdersController } from './orders.controller.js';

/**
 * One `orders` instance: a plain HTTP app. It registers its HTTP port in
 * the embedded `local` registry once it listens; on SIGTERM it deregisters,
 * keeps answering during the drain delay (with `Connection: close`, so
 * keep-alive callers move on), then closes.
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
