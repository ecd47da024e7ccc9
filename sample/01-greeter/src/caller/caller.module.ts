import { Module } from '@nestjs/common';
import { DiscoveryModule } from 'switchyard';
import { GreeterCaller } from './greeter-caller.service.js';

/** A client-only app: no own instance, one dependency (`greeter`). */
@Module({
  imports: [
    DiscoveryModule.forRootAsync({
      useFactory: () => ({
        backend: 'local',
        backendConfig: { dir: process.env.DISCOVERY_DIR },
        loadBalance: 'round_robin',
      }),
    }),
  ],
  providers: [GreeterCaller],
})
export class CallerModule {}
