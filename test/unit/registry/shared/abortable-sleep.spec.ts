import { getEventListeners } from 'node:events';
import { describe, expect, it } from 'vitest';
import { abortableSleep } from '../../../../lib/registry/shared/abortable-sleep.js';

describe('abortableSleep', () => {
  it('leaves no abort listener behind on a long-lived signal, however many sleeps end by their timer', async () => {
    const controller = new AbortController();
    for (let i = 0; i < 50; i++) await abortableSleep(1, controller.signal);
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
  });

  it('ends at once when the signal aborts (and then holds no listener either)', async () => {
    const controller = new AbortController();
    const sleeping = abortableSleep(60_000, controller.signal);
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(1);
    controller.abort();
    await sleeping;
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
  });

  it('does not sleep at all on an aborted signal', async () => {
    const controller = new AbortController();
    controller.abort();
    await abortableSleep(60_000, controller.signal);
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
  });
});
