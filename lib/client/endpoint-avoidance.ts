import type { EndpointSet } from '../core/endpoint-set.js';

/**
 * Endpoints a server asked callers to stay away from for a while (HTTP 429,
 * or 503 with `Retry-After`): the client's picks go around them until that
 * time has passed. An overload signal, not a health verdict: the endpoint
 * stays served, is never ejected, and is still picked when every endpoint
 * is avoided (a busy server is better than none). Checked on every pick, so
 * the common case — nothing avoided — costs one size test.
 *
 * @example
 * avoidance.avoid(endpoint.key, Date.now() + 2_000); avoidance.avoids(endpoint.key, Date.now()); // true
 */
export class EndpointAvoidance {
  private readonly until = new Map<string, number>();

  /** Endpoints currently on the list (some may have expired, until asked). */
  get size(): number {
    return this.until.size;
  }

  /** Avoids `key` until `untilMs` (epoch ms); a later time than the current one wins. */
  avoid(key: string, untilMs: number): void {
    const current = this.until.get(key);
    if (current === undefined || untilMs > current) this.until.set(key, untilMs);
  }

  /** True while `key` is avoided at `now`; an expired entry is forgotten. */
  avoids(key: string, now: number): boolean {
    const until = this.until.get(key);
    if (until === undefined) return false;
    if (now < until) return true;
    this.until.delete(key);
    return false;
  }

  /** When `key` may be picked again (undefined when it is not avoided). */
  avoidedUntil(key: string, now: number): number | undefined {
    return this.avoids(key, now) ? this.until.get(key) : undefined;
  }

  /** Forgets endpoints that left the registry's set. */
  retain(set: EndpointSet): void {
    if (this.until.size === 0) return;
    for (const key of this.until.keys()) if (!set.has(key)) this.until.delete(key);
  }
}
