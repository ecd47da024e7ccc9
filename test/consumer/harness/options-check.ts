// Not from the README: the consumer test's look inside the quick start's
// checkout app. Boots its AppModule as an application context and prints
// what the forFeature options of 'orders' became, as one line:
//   OPTIONS {"strategy":"least_connections","maxAttempts":4}
import { NestFactory } from '@nestjs/core';
import { AppModule } from '../checkout/app.module.js';
import { CheckoutController } from '../checkout/checkout.controller.js';

async function main(): Promise<void> {
  const app = await NestFactory.createApplicationContext(AppModule, { logger: ['error', 'warn'] });
  try {
    const { orders } = app.get(CheckoutController);
    const seen = { strategy: orders.strategy, maxAttempts: orders.retryPolicy.maxAttempts };
    console.log(`OPTIONS ${JSON.stringify(seen)}`);
  } finally {
    await app.close();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
