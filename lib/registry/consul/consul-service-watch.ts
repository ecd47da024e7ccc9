import { Backoff } from '../../core/backoff.js';
import type { CompiledQuery, DiscoveryQuery } from '../../core/discovery-query.js';
import type { ServiceInstance } from '../../core/service-instance.js';
import type { DiscoveryLogger } from '../registry.interface.js';
import { abortableSleep } from '../shared/abortable-sleep.js';
import type { EndpointSetPublisher } from '../shared/endpoint-set-publisher.js';
import { buildConsulFilter } from './consul-filter.js';
import { ConsulRequestError, type ConsulHttp, type ConsulResponse } from './consul-http.js';
import { fromHealthEntry } from './consul-service-codec.js';

export interface ConsulWatchDeps {
  http: ConsulHttp;
  logger: DiscoveryLogger;
}

/** Remembered warnings per watcher, so one bad record is reported once, not every round. */
const MAX_REMEMBERED_WARNINGS = 1_000;

/**
 * Publishes the passing instances of one service, followed through Consul
 * blocking queries on `/v1/health/service/<name>?passing`, until the
 * returned function stops it.
 *
 * - Blocking: each request carries the last `X-Consul-Index` and `wait`;
 *   its deadline is `wait` plus Consul's jitter (wait/16) plus the request
 *   timeout. The first request and the first after an error carry no index
 *   (a fresh read); later ones never carry 0 (an index below 1 becomes 1,
 *   or the query would answer at once, forever).
 * - An index lower than the last one (agent restarted, state reset) is
 *   adopted as the new starting point and logged.
 * - Request starts are at least `minQueryIntervalMs` apart, and errors back
 *   off with jitter, so no agent behaviour can make the loop spin.
 * - The query's namespace / exact version / tags go to the server as a
 *   `filter`; `compiled.matches` is applied to every answer as well.
 * - An answer with the index already held (the wait ran out) is drained
 *   unread.
 * - Publishes only on change; while the agent fails, the last good set is
 *   served once as `stale`.
 * - Stopping aborts the in-flight request, so nothing stays open.
 *
 * @example
 * const stop = followConsulService(query, compileQuery(query), { http, logger }, publisher);
 */
export function followConsulService(
  query: DiscoveryQuery,
  compiled: CompiledQuery,
  deps: ConsulWatchDeps,
  publisher: EndpointSetPublisher,
): () => void {
  const { http, logger } = deps;
  const settings = http.settings;
  const service = query.service;
  const controller = new AbortController();
  const signal = controller.signal;
  const warnOnce = onceWarner(logger);

  let filter = buildConsulFilter(query);
  const run = async () => {
    const backoff = new Backoff({ initialMs: 200, maxMs: 10_000 });
    let index: number | undefined;
    let lastIndex: number | undefined;
    let failing: string | undefined;
    while (!signal.aborted) {
      const startedAt = Date.now();
      const blocking = index !== undefined;
      let response: ConsulResponse;
      try {
        response = await http.send({
          method: 'GET',
          path: `/health/service/${encodeURIComponent(service)}`,
          query: {
            passing: '1',
            ...(blocking ? { index: String(index), wait: `${settings.waitMs}ms` } : {}),
            ...(filter ? { filter } : {}),
            ...(settings.datacenter ? { dc: settings.datacenter } : {}),
          },
          // Consul adds up to wait/16 of jitter to a blocking query.
          timeoutMs: blocking
            ? settings.waitMs + Math.ceil(settings.waitMs / 16) + settings.requestTimeoutMs
            : settings.requestTimeoutMs,
          signal,
          what: `query health of service '${service}'`,
          unlessIndex: index,
        });
        if (response.status !== 200) throw http.failure(response, `query health of service '${service}'`);
      } catch (error) {
        if (signal.aborted) break;
        const failure =
          error instanceof ConsulRequestError ? error : new ConsulRequestError('unreachable', undefined, String(error));
        if (
          (failure.kind === 'rejected' || failure.kind === 'server') &&
          filter &&
          /filter|boolean expression/i.test(failure.detail)
        ) {
          // Consul 1.8 answers 500 for a filter it cannot parse (older agents ignore `filter`);
          // without it the answer is unfiltered and matches() still filters client-side.
          logger.warn(
            `consul: agent rejected the filter for '${service}' (${failure.message}); filtering client-side only`,
          );
          filter = undefined;
          continue;
        }
        const reason = failure.noAnswer
          ? (http.reachability.current.reason ?? `registry unreachable: ${failure.message}`)
          : `registry error: ${failure.message}`;
        if (failing !== reason) {
          logger.warn(`consul: watch of '${service}' failing (${reason}); serving the last known endpoints as stale`);
          failing = reason;
        }
        publisher.publishStale(reason);
        // A fresh read after an error: the agent may have restarted with a lower index.
        index = undefined;
        await abortableSleep(backoff.next(), signal);
        continue;
      }

      if (failing) {
        logger.log(`consul: watch of '${service}' recovered`);
        failing = undefined;
      }
      backoff.reset();
      const returned = parseIndex(response.headers['x-consul-index']);
      if (lastIndex !== undefined && returned < lastIndex) {
        logger.debug?.(
          `consul: index of '${service}' went backwards (${lastIndex} -> ${returned}); starting over from ${returned}`,
        );
      }
      // A long-poll whose wait ran out answers the same index and the same
      // entries: nothing to read (at 100 instances, ~100 KB to parse for nothing).
      const unchanged = blocking && returned === index;
      lastIndex = returned;
      index = returned;

      if (!unchanged) {
        const instances = healthInstances(response.body, service, compiled, warnOnce);
        if (instances) publisher.publish(instances);
      }

      const elapsed = Date.now() - startedAt;
      if (elapsed < settings.minQueryIntervalMs) await abortableSleep(settings.minQueryIntervalMs - elapsed, signal);
    }
  };
  run().catch((error: unknown) => logger.error(`consul: watch of '${service}' stopped: ${(error as Error).message}`));
  return () => controller.abort();
}

/**
 * The instances of a health answer that the query keeps; undefined (with a
 * warning) when the body is not a JSON array. A record that cannot be read
 * is skipped with a warning naming it.
 *
 * @example
 * const instances = healthInstances(response.body, 'orders', compiled, warnOnce);
 */
export function healthInstances(
  body: string,
  service: string,
  compiled: CompiledQuery,
  warnOnce: (key: string, message: string) => void,
): ServiceInstance[] | undefined {
  let entries: unknown;
  try {
    entries = JSON.parse(body);
  } catch {
    entries = undefined;
  }
  if (!Array.isArray(entries)) {
    warnOnce(
      `body:${body.slice(0, 40)}`,
      `consul: health answer for '${service}' is not a JSON array; keeping the last endpoints`,
    );
    return undefined;
  }
  const instances: ServiceInstance[] = [];
  for (const entry of entries) {
    try {
      const instance = fromHealthEntry(entry);
      if (compiled.matches(instance)) instances.push(instance);
    } catch (error) {
      const id = (entry as { Service?: { ID?: unknown } })?.Service?.ID;
      const message = (error as Error).message;
      warnOnce(
        `${String(id)}:${message}`,
        `consul: skipping instance ${JSON.stringify(id ?? null)} of '${service}': ${message}`,
      );
    }
  }
  return instances;
}

/**
 * Remembers warnings (up to 1,000), so one bad record is reported once, not every round.
 *
 * @example
 * const warnOnce = onceWarner(logger); warnOnce(key, message);
 */
export function onceWarner(logger: DiscoveryLogger): (key: string, message: string) => void {
  const warned = new Set<string>();
  return (key, message) => {
    if (warned.has(key)) return;
    if (warned.size >= MAX_REMEMBERED_WARNINGS) warned.clear();
    warned.add(key);
    logger.warn(message);
  };
}

/** `X-Consul-Index` as a number >= 1 (0, missing or garbage would make the next query return at once). */
function parseIndex(header: string | string[] | undefined): number {
  const value = Number(Array.isArray(header) ? header[0] : header);
  return Number.isSafeInteger(value) && value >= 1 ? value : 1;
}
