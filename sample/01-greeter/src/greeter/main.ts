import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { Transport, type MicroserviceOptions } from '@nestjs/microservices';
import { GREETER_PROTO } from '../paths.js';
import { GreeterModule } from './greeter.module.js';

// A greeter instance: PORT, INSTANCE_ID and DISCOVERY_DIR come from the launcher.
const app = await NestFactory.createMicroservice<MicroserviceOptions>(GreeterModule, {
  transport: Transport.GRPC,
  options: {
    package: 'greeter',
    protoPath: GREETER_PROTO,
    url: `127.0.0.1:${process.env.PORT}`,
    gracefulShutdown: true,
  },
  logger: ['error', 'warn', 'log'],
});
app.enableShutdownHooks();
await app.listen();

// If the launcher dies without stopping us (SIGKILL), do not linger as an orphan.
const parent = process.ppid;
setInterval(() => {
  if (process.ppid !== parent) process.kill(process.pid, 'SIGTERM');
}, 1_000).unref();
