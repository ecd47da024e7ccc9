import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { OrdersModule } from './orders.module.js';

// An orders instance (Express): PORT, INSTANCE_ID and DISCOVERY_DIR come from the launcher.
const app = await NestFactory.create(OrdersModule, { logger: ['error', 'warn', 'log'] });
app.enableShutdownHooks();
await app.listen(Number(process.env.PORT), '127.0.0.1');

// If the launcher dies without stopping us (SIGKILL), do not linger as an orphan.
const parent = process.ppid;
setInterval(() => {
  if (process.ppid !== parent) process.kill(process.pid, 'SIGTERM');
}, 1_000).unref();
