/**
 * Resolves after `ms`, or at once when `signal` aborts (never rejects). The
 * abort listener is removed when the timer fires, so a loop that sleeps on
 * one long-lived signal does not pile up listeners.
 *
 * @example
 * await abortableSleep(backoff.next(), this.abort.signal);
 */
export function abortableSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const onAbort = () => {
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
