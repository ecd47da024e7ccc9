import { Observable } from 'rxjs';
import { Backoff } from '../../core/backoff.js';
import type { CompiledQuery, DiscoveryQuery } from '../../core/discovery-query.js';
import { EndpointSet } from '../../core/endpoint-set.js';
import type { ServiceInstance } from '../../core/service-instance.js';
import type { DiscoveryLogger } from '../registry.interface.js';
import { buildConsulFilter } from './consul-filter.js';
import { ConsulRequestError, type ConsulHttp, type ConsulResponse } from './consul-http.js';
import { fromHealthEntry } from './consul-service-codec.js';

export interface ConsulWatchDeps {
  http: ConsulHttp;
  logger: DiscoveryLogger;
  /** Aborted when the registry closes: every watcher ends (and completes). */
  closed: AbortSignal;
}

/** Remembered warnings per watcher, so one bad record is reported once, not every round. */
const MAX_REMEMBERED_WARNINGS = 1_000;

/**
 * Streams the passing instances of one service through Consul blocking
 * queries on `/v1/health/service/<name>?passing`.
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
 * - Emits only on change (EndpointSet.next returns the same set otherwise);
 *   while the agent fails, the last good set is served once as `stale`.
 * - Unsubscribing aborts the in-flight request, so nothing stays open.
 *
 * @example
 * watchConsulService(query, compileQuery(query), deps, { waitMs: 30_000, ... }).subscribe((set) => console.log(set.size));
 */
export function watchConsulService(
  query: DiscoveryQuery,
  compiled: CompiledQuery,
  deps: ConsulWatchDeps,
): Observable<EndpointSet> {
  const { http, logger } = deps;
  const settings = http.settings;
  const service = query.service;
  return new Observable<EndpointSet>((subscriber) => {
    const controller = new AbortController();
    const onClose = () => {
      controller.abort();
      subscriber.complete();
    };
    if (deps.closed.aborted) {
      subscriber.complete();
      return undefined;
    }
    deps.closed.addEventListener('abort', onClose, { once: true });
    const signal = controller.signal;

    let current = EndpointSet.initial(service);
    let emittedOnce = false;
    const emit = (next: EndpointSet) => {
      if (next === current && emittedOnce) return;
      current = next;
      emittedOnce = true;
      subscriber.next(next);
    };

    const warned = new Set<string>();
    const warnOnce = (key: string, message: string) => {
      if (warned.has(key)) return;
      if (warned.size >= MAX_REMEMBERED_WARNINGS) warned.clear();
      warned.add(key);
      logger.warn(message);
    };

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
          });
          if (response.status !== 200) throw http.failure(response, `query health of service '${service}'`);
        } catch (error) {
          if (signal.aborted) break;
          const failure =
            error instanceof ConsulRequestError
              ? error
              : new ConsulRequestError('unreachable', undefined, String(error));
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
            ? (http.state.reason ?? `registry unreachable: ${failure.message}`)
            : `registry error: ${failure.message}`;
          if (failing !== reason) {
            logger.warn(`consul: watch of '${service}' failing (${reason}); serving the last known endpoints as stale`);
            failing = reason;
          }
          emit(current.stale(reason));
          // A fresh read after an error: the agent may have restarted with a lower index.
          index = undefined;
          await sleep(backoff.next(), signal);
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
        lastIndex = returned;
        index = returned;

        let entries: unknown;
        try {
          entries = JSON.parse(response.body);
        } catch {
          entries = undefined;
        }
        if (!Array.isArray(entries)) {
          warnOnce(
            `body:${response.body.slice(0, 40)}`,
            `consul: health answer for '${service}' is not a JSON array; keeping the last endpoints`,
          );
        } else {
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
          emit(current.next(instances));
        }

        const elapsed = Date.now() - startedAt;
        if (elapsed < settings.minQueryIntervalMs) await sleep(settings.minQueryIntervalMs - elapsed, signal);
      }
    };
    run().catch((error: unknown) => logger.error(`consul: watch of '${service}' stopped: ${(error as Error).message}`));

    return () => {
      deps.closed.removeEventListener('abort', onClose);
      controller.abort();
    };
  });
}

/** `X-Consul-Index` as a number >= 1 (0, missing or garbage would make the next query return at once). */
function parseIndex(header: string | string[] | undefined): number {
  const value = Number(Array.isArray(header) ? header[0] : header);
  return Number.isSafeInteger(value) && value >= 1 ? value : 1;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}
