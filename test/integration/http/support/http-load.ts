import type { ServiceClient } from '../../../../lib/index.js';

/** What a load run saw. */
export interface LoadReport {
  gets: number;
  getFailures: string[];
  posts: number;
  /** Ids of POSTs that got a 201. */
  postsAnswered: string[];
  postFailures: string[];
  /** Answers per instance. */
  byInstance: Map<string, number>;
}

/**
 * Closed loops of requests through `client.fetch` until `stop()` is called:
 * GETs and, when `postEvery` > 0, a POST with a unique id every n-th request.
 */
export function startLoad(
  client: ServiceClient,
  options: { concurrency?: number; postEvery?: number; prefix?: string } = {},
): { stop(): Promise<LoadReport>; report: LoadReport } {
  const report: LoadReport = {
    gets: 0,
    getFailures: [],
    posts: 0,
    postsAnswered: [],
    postFailures: [],
    byInstance: new Map(),
  };
  let running = true;
  let sequence = 0;
  const count = (instance: string) => report.byInstance.set(instance, (report.byInstance.get(instance) ?? 0) + 1);
  const loop = async (worker: number) => {
    while (running) {
      // Yield every round: a synchronous failure must not spin the loop.
      await new Promise((resolve) => setImmediate(resolve));
      const n = ++sequence;
      const post = options.postEvery !== undefined && options.postEvery > 0 && n % options.postEvery === 0;
      if (post) {
        const id = `${options.prefix ?? 'p'}-${worker}-${n}`;
        report.posts++;
        try {
          const response = await client.fetch('/api/orders', {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ id }),
          });
          const body = (await response.json()) as { instance: string };
          if (response.status === 201) {
            report.postsAnswered.push(id);
            count(body.instance);
          } else report.postFailures.push(`${id}: HTTP ${response.status}`);
        } catch (error) {
          report.postFailures.push(`${id}: ${describe(error)}`);
        }
      } else {
        report.gets++;
        try {
          const response = await client.fetch('/api/whoami');
          const body = (await response.json()) as { instance: string };
          if (response.status === 200) count(body.instance);
          else report.getFailures.push(`HTTP ${response.status}`);
        } catch (error) {
          report.getFailures.push(describe(error));
        }
      }
    }
  };
  const loops = Array.from({ length: options.concurrency ?? 8 }, (_, w) => loop(w));
  return {
    report,
    async stop() {
      running = false;
      await Promise.all(loops);
      return report;
    },
  };
}

/** fetch's TypeError with its cause, in one line. */
export function describe(error: unknown): string {
  const e = error as Error & { cause?: Error };
  return e.cause ? `${e.message}: ${e.cause.message}` : String(e?.message ?? e);
}
