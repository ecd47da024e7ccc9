// Not from the README: the consumer test's check of the 'switchyard/testing'
// entry point. An instance registered through 'switchyard' on the memory
// backend must be in the MemoryStore that 'switchyard/testing' hands out:
// both entry points load one copy of the library. Prints one line:
//   TESTING {"seenByClient":["127.0.0.1:50051"],"inStore":["orders 127.0.0.1:50051"]}
import { DiscoveryFactory } from 'switchyard';
import { MemoryRegistry, MemoryStore } from 'switchyard/testing';

async function main(): Promise<void> {
  const { registry, client } = await DiscoveryFactory.registerAndDiscover('memory', [], 'orders', { port: 50051 });
  try {
    await client.ready({ timeoutMs: 5_000 });
    const seen = {
      seenByClient: client.snapshot().endpoints.map((endpoint) => endpoint.address),
      inStore: MemoryStore.named()
        .list()
        .map((instance) => `${instance.service} ${instance.address}`),
      registryClass: typeof MemoryRegistry,
    };
    console.log(`TESTING ${JSON.stringify(seen)}`);
  } finally {
    await registry.deregister();
    await client.close();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
