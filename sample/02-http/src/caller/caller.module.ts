import { Module } from '@nestjs/common';
import { DiscoveryHttpModule, DiscoveryModule } from 'switchyard';
import { OrdersCaller } from './orders-caller.service.js';

/** A client-only app: no own instance; calls `orders` three ways. */
@Module({
  imports: [
    DiscoveryModule.forRootAsync({
      useFactory: () => ({
        backend: 'local',
        backendConfig: { dir: process.env.DISCOVERY_DIR },
        loadBalance: 'round_robin',
      }),
      clients: ['orders'],
    }),
    // @nestjs/axios's HttpService, balanced: `http://orders/...` goes to the discovered instances.
    DiscoveryHttpModule.register({ timeout: 2_000 }),
  ],
  providers: [OrdersCaller],
})
export class CallerModule {}
