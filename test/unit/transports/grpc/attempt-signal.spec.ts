import { getEventListeners } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { createServiceInstance, Discovery } from '../../../../lib/index.js';
import { MemoryRegistry, MemoryStore } from '../../../../lib/testing.js';

const quiet = { log() {}, warn() {}, error() {} };

describe("call(): the attempt's signal", () => {
  const discoveries: Discovery[] = [];
  afterEach(async () => {
    await Promise.all(discoveries.splice(0).map((d) => d.close()));
  });

  it('is one per attempt, so abort listeners that calls add do not pile up on a shared signal', async () => {
    MemoryStore.reset('signals');
    const store = MemoryStore.named('signals');
    store.put(createServiceInstance({ service: 'echo', id: 'e1', address: '127.0.0.1:1' }));
    const discovery = await Discovery.create(
      { backend: 'memory' },
      { registry: new MemoryRegistry(store), logger: quiet },
    );
    discoveries.push(discovery);
    const client = discovery.client('echo');
    await client.ready();
    const signals: AbortSignal[] = [];
    for (let i = 0; i < 200; i++) {
      await client.call(async ({ signal }) => {
        // What the docs suggest: cancel the call when the signal aborts.
        signal.addEventListener('abort', () => undefined, { once: true });
        signals.push(signal);
        return i;
      });
    }
    expect(new Set(signals).size).toBe(200);
    expect(signals.every((s) => !s.aborted)).toBe(true);
    expect(getEventListeners(signals[199], 'abort')).toHaveLength(1);
  });
});
