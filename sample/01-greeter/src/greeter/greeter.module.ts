import { Module } from '@nestjs/common';
import { DiscoveryModule } from 'switchyard';
import { GreeterController } from './greeter.controller.js';

/**
 * One greeter instance. It registers itself as `greeter` in the embedded
 * `local` registry once its gRPC port accepts connections, and deregisters
 * on SIGTERM before the server stops accepting.
 */
@Module({
  imports: [
    DiscoveryModule.forRootAsync({
      useFactory: () => ({
        backend: 'local',
        backendConfig: { dir: process.env.DISCOVERY_DIR },
        instance: { service: 'greeter', id: process.env.INSTANCE_ID, port: Number(process.env.PORT) },
        // Short TTL so a crashed instance leaves quickly; a drain delay so
        // clients see the deregistration before the server closes.
        registration: { ttl: 6, drainMs: 800 },
      }),
    }),
  ],
  controllers: [GreeterController],
})
export class GreeterModule {}
