import { describe, expect, it } from 'vitest';
import { GrpcHealthService, ServingStatus, shutdownGracefully } from '../../../lib/index.js';

describe('shutdownGracefully', () => {
  it('runs NOT_SERVING, deregistration, the drain delay and the close in that order, and keeps going after a failed step', async () => {
    const health = new GrpcHealthService({ '': ServingStatus.SERVING, orders: ServingStatus.SERVING });
    const steps: string[] = [];
    const errors: string[] = [];
    let deregisteredAt = 0;
    let closedAt = 0;
    await shutdownGracefully({
      health,
      deregister: async () => {
        steps.push(
          `deregister (health ${ServingStatus[health.getStatus('')!]}, orders ${ServingStatus[health.getStatus('orders')!]})`,
        );
        deregisteredAt = performance.now();
        throw new Error('registry gone');
      },
      drainMs: 50,
      close: () => {
        closedAt = performance.now();
        steps.push('close');
      },
      logger: { log: () => undefined, warn: () => undefined, error: (m) => errors.push(m) },
    });
    expect(steps).toEqual(['deregister (health NOT_SERVING, orders NOT_SERVING)', 'close']);
    expect(closedAt - deregisteredAt).toBeGreaterThanOrEqual(45);
    expect(errors).toEqual(['shutdown: deregistration failed: registry gone']);
  });
});
