import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { Transport, type MicroserviceOptions } from '@nestjs/microservices';
import { OrdersModule } from './orders.module.js';

// An orders instance: PORT, INSTANCE_ID and DISCOVERY_DIR come from the launcher.
const app = await NestFactory.createMicroservice<MicroserviceOptions>(OrdersModule, {
  transport: Transport.TCP,
  options: { host: '127.0.0.1', port: Number(process.env.PORT) },
  logger: ['error', 'warn', 'log'],
});
app.enableShutdownHooks(); // SIGTERM: deregister, drain, then close the TCP server
await app.listen();

// If the launcher dies without stopping us (SIGKILL), do not linger as an orphan.
const parent = process.ppid;
setInterval(() => {
  if (process.ppid !== parent) process.kill(process.pid, 'SIGTERM');
}, 1_000).unref();
