// One state machine (two catalog-wide long-polls, a read queue, per-service
// change detection); its length is mostly the comments that say why.
import { Backoff } from '../../core/backoff.js';
import type { CompiledQuery, DiscoveryQuery } from '../../core/discovery-query.js';
import type { DiscoveryLogger } from '../registry.interface.js';
import { abortableSleep } from '../shared/abortable-sleep.js';
import type { EndpointSetPublisher } from '../shared/endpoint-set-publisher.js';
import { RequestSlots } from '../shared/request-slots.js';
import { buildConsulFilter } from './consul-filter.js';
import { ConsulRequestError, type ConsulHttp, type ConsulResponse } from './consul-http.js';
import { healthInstances, onceWarner } from './consul-service-watch.js';

/** Service reads in flight at once in wide mode. */
const READ_SLOTS = 8;

/**
 * How often, at most, services are asked for their index after the catalog's
 * service list moved (for instances registered without a check, which the
 * health long-poll does not see): 1,000 tiny requests per round.
 */
const CATALOG_PROBE_INTERVAL_MS = 5_000;

/** A filter no entry matches: the answer is `[]`, and its X-Consul-Index is the service's. */
const MATCH_NOTHING = 'Service.ID == "" and Service.ID != ""';

/** The same for checks: `/health/state/any` answers `[]` with the index of every check. */
const NO_CHECK = 'CheckID == "" and CheckID != ""';

/** One watch followed in wide mode. */
interface Member {
  readonly service: string;
  readonly compiled: CompiledQuery;
  readonly publisher: EndpointSetPublisher;
  filter: string | undefined;
  /** The service's health index at its last read (0: never read). */
  index: number;
  /** Read queued or running. */
  reading: boolean;
  /** Another read is wanted once this one ends. */
  readAgain: boolean;
  failing: string | undefined;
}

/**
 * Consul at 1,000 services, within the agent's connection limit (200 per
 * client IP by default, shared with everything else the host sends it): not
 * one long-poll socket per service, but two catalog-wide long-polls that
 * drive reads of the services that changed.
 *
 * - `/v1/health/state/any` blocks until any check changes. Registering or
 *   deregistering an instance with a check adds or removes its check, and a
 *   check changing status changes it, so comparing each service's checks
 *   (id, status, modify index) with the previous answer says exactly which
 *   services to read again. The long-poll itself asks for no check (a
 *   filter that matches none), so its answer is tiny; every check is asked
 *   for only once its index moved. (At 100,000 instances every check is
 *   37 MB: sent each time a long-poll's `wait` ran out, it cost the idle
 *   client 5 % of a core.)
 * - `/v1/catalog/services` blocks until a service is registered or removed
 *   anywhere. It says nothing of which, and instances without a check are
 *   seen only here: then (at most every 5 s) each watched service is asked
 *   for its index with a filter that matches nothing (a tiny answer), and
 *   those whose index moved are read.
 * - Reads (`/v1/health/service/<name>?passing`, the query's filter) go
 *   through 8 slots. So a wide watch holds at most 10 sockets.
 *
 * While a long-poll fails, every member is served stale; once it answers
 * again, every member is read again through the slots. The long-polls wait
 * at least `minQueryIntervalMs` between starts, and longer after a large
 * answer (5 × the time it took to process), so churn costs the client a
 * bounded share of a core; idle, they just wait.
 *
 * @example
 * const catalog = new ConsulCatalogWatch(http, logger); const stop = catalog.add(query, compiled, publisher);
 */
export class ConsulCatalogWatch {
  private readonly members = new Set<Member>();
  private readonly reads = new RequestSlots(READ_SLOTS);
  /** Per service: its checks as last seen in /health/state/any (undefined: no answer yet). */
  private checks: Map<string, string> | undefined;
  /** The index of the last /catalog/services answer (it moves on any registration or removal). */
  private servicesIndex: number | undefined;
  private controller: AbortController | undefined;
  private lastProbeAt = 0;
  private probePending = false;
  private readonly warnOnce: (key: string, message: string) => void;

  constructor(
    private readonly http: ConsulHttp,
    private readonly logger: DiscoveryLogger,
  ) {
    this.warnOnce = onceWarner(logger);
  }

  /** Members followed now. */
  get size(): number {
    return this.members.size;
  }

  /** Follows `query` (publishing into `publisher`) until the returned function is called. */
  add(query: DiscoveryQuery, compiled: CompiledQuery, publisher: EndpointSetPublisher): () => void {
    const member: Member = {
      service: query.service,
      compiled,
      publisher,
      filter: buildConsulFilter(query),
      index: 0,
      reading: false,
      readAgain: false,
      failing: undefined,
    };
    this.members.add(member);
    if (!this.controller) this.start();
    this.read(member);
    return () => {
      this.members.delete(member);
      if (this.members.size === 0) this.stop();
    };
  }

  private start(): void {
    const controller = new AbortController();
    this.controller = controller;
    this.checks = undefined;
    this.servicesIndex = undefined;
    void this.follow('/health/state/any', controller.signal, (body) => this.onChecks(body), NO_CHECK).catch((error) =>
      this.logger.error(`consul: the catalog-wide health watch stopped: ${(error as Error).message}`),
    );
    void this.follow('/catalog/services', controller.signal, (_, index) => this.onServices(index)).catch((error) =>
      this.logger.error(`consul: the catalog-wide service watch stopped: ${(error as Error).message}`),
    );
  }

  private stop(): void {
    this.controller?.abort();
    this.controller = undefined;
  }

  /**
   * Long-polls `path` until `signal` aborts: `onAnswer` gets each answer's
   * body. With `indexFilter`, the long-poll carries that filter (an answer
   * of nothing, only an index) and, each time the index moves, `path` is
   * read once without it for `onAnswer`. On failure every member goes
   * stale; on the first answer after one, every member is read again.
   */
  private async follow(
    path: string,
    signal: AbortSignal,
    onAnswer: (body: unknown, index: number) => void,
    indexFilter?: string,
  ): Promise<void> {
    const settings = this.http.settings;
    const backoff = new Backoff({ initialMs: 200, maxMs: 10_000 });
    const dc = settings.datacenter ? { dc: settings.datacenter } : {};
    let filter = indexFilter;
    let index: number | undefined;
    let failing: string | undefined;
    while (!signal.aborted) {
      const startedAt = Date.now();
      const blocking = index !== undefined;
      let response: ConsulResponse | undefined;
      // The index to long-poll from next: the long-poll's own (a read after it may be newer, never older).
      let answered: number;
      try {
        response = await this.http.send({
          method: 'GET',
          path,
          query: {
            ...(blocking ? { index: String(index), wait: `${settings.waitMs}ms` } : {}),
            ...(filter === undefined ? {} : { filter }),
            ...dc,
          },
          timeoutMs: blocking
            ? settings.waitMs + Math.ceil(settings.waitMs / 16) + settings.requestTimeoutMs
            : settings.requestTimeoutMs,
          signal,
          what: `watch ${path}`,
          unlessIndex: index,
        });
        if (response.status !== 200) {
          const failure = this.http.failure(response, `watch ${path}`);
          if (filter !== undefined && /filter|boolean expression/i.test(failure.detail)) {
            // An agent without filters (before Consul 1.4): long-poll for every check instead.
            this.warnOnce(
              path,
              `consul: agent rejected a filter on ${path} (${failure.message}); long-polling it whole`,
            );
            filter = undefined;
            continue;
          }
          throw failure;
        }
        answered = Number(response.headers['x-consul-index']);
        if (blocking && answered === index) {
          // The wait ran out with nothing changed: nothing to read.
          response = undefined;
        } else if (filter !== undefined) {
          response = await this.http.send({
            method: 'GET',
            path,
            query: dc,
            timeoutMs: settings.requestTimeoutMs,
            signal,
            what: `read ${path}`,
          });
          if (response.status !== 200) throw this.http.failure(response, `read ${path}`);
        }
      } catch (error) {
        if (signal.aborted) return;
        const failure =
          error instanceof ConsulRequestError ? error : new ConsulRequestError('unreachable', undefined, String(error));
        const reason = failure.noAnswer
          ? (this.http.reachability.current.reason ?? `registry unreachable: ${failure.message}`)
          : `registry error: ${failure.message}`;
        if (failing !== reason) {
          this.logger.warn(
            `consul: catalog-wide watch of ${path} failing (${reason}); serving the last known endpoints as stale`,
          );
          failing = reason;
        }
        for (const member of this.members) member.publisher.publishStale(reason);
        index = undefined;
        await abortableSleep(backoff.next(), signal);
        continue;
      }
      const processing = performance.now();
      if (failing) {
        this.logger.log(`consul: catalog-wide watch of ${path} recovered; reading every watched service again`);
        failing = undefined;
        this.rereadAll();
      }
      backoff.reset();
      // Unchanged (response undefined): nothing to hand on, but the spacing below still
      // applies, so an agent that answers at once with the same index cannot make this spin.
      if (response !== undefined) {
        index = Number.isSafeInteger(answered) && answered >= 1 ? answered : 1;
        let body: unknown;
        try {
          body = JSON.parse(response.body);
        } catch {
          body = undefined;
        }
        onAnswer(body, index);
      }
      // A large answer (every check of a big datacenter) is spaced by its own cost.
      const spacingMs = Math.max(settings.minQueryIntervalMs, 5 * (performance.now() - processing));
      const elapsed = Date.now() - startedAt;
      if (elapsed < spacingMs) await abortableSleep(spacingMs - elapsed, signal);
    }
  }

  /** A /health/state/any answer: read the watched services whose checks changed. */
  private onChecks(body: unknown): void {
    if (!Array.isArray(body)) return;
    const next = new Map<string, string>();
    for (const check of body as Array<Record<string, unknown>>) {
      const service = check?.ServiceName;
      if (typeof service !== 'string' || service === '') continue;
      next.set(
        service,
        `${next.get(service) ?? ''}${String(check.CheckID)}:${String(check.Status)}:${String(check.ModifyIndex)};`,
      );
    }
    const previous = this.checks;
    this.checks = next;
    if (previous === undefined) return;
    for (const member of this.members) {
      if (previous.get(member.service) !== next.get(member.service)) this.read(member);
    }
  }

  /**
   * A /catalog/services answer: when its index moved (an instance came or
   * went somewhere; the names and tags it lists rarely change), ask each
   * watched service for its index.
   */
  private onServices(index: number): void {
    const moved = this.servicesIndex !== undefined && this.servicesIndex !== index;
    this.servicesIndex = index;
    if (moved) this.scheduleProbe();
  }

  private scheduleProbe(): void {
    if (this.probePending) return;
    this.probePending = true;
    const wait = Math.max(0, this.lastProbeAt + CATALOG_PROBE_INTERVAL_MS - Date.now());
    const signal = this.controller?.signal;
    void abortableSleep(wait, signal).then(() => {
      this.probePending = false;
      if (signal?.aborted) return;
      this.lastProbeAt = Date.now();
      for (const member of this.members) void this.probe(member);
    });
  }

  /** Reads `member` when its service's index moved since its last read (a filtered, empty answer). */
  private async probe(member: Member): Promise<void> {
    if (member.reading) return;
    try {
      const response = await this.reads.run(() =>
        this.http.send({
          method: 'GET',
          path: `/health/service/${encodeURIComponent(member.service)}`,
          query: {
            filter: MATCH_NOTHING,
            ...(this.http.settings.datacenter ? { dc: this.http.settings.datacenter } : {}),
          },
          what: `read the index of service '${member.service}'`,
        }),
      );
      const index = Number(response.headers['x-consul-index']);
      if (response.status === 200 && Number.isSafeInteger(index) && index !== member.index) this.read(member);
    } catch {
      // The long-polls report outages; a failed probe is retried with the next round.
    }
  }

  private rereadAll(): void {
    for (const member of this.members) this.read(member);
  }

  /** Reads the member's service now, or once the read in progress ends. */
  private read(member: Member): void {
    if (member.reading) {
      member.readAgain = true;
      return;
    }
    member.reading = true;
    const signal = this.controller?.signal;
    void this.reads
      .run(() => this.readOnce(member))
      // A failed read waits outside the slots, then tries again (a long-poll answering meanwhile asks too).
      .then((failed) => (failed ? abortableSleep(1_000 + Math.random() * 1_000, signal).then(() => true) : false))
      .then((retry) => {
        member.reading = false;
        if ((retry || member.readAgain) && this.members.has(member) && !signal?.aborted) {
          member.readAgain = false;
          this.read(member);
        }
      });
  }

  /** One read of the member's service; resolves true when it failed (and should be tried again). */
  private async readOnce(member: Member): Promise<boolean> {
    if (!this.members.has(member)) return false;
    const service = member.service;
    const what = `query health of service '${service}'`;
    try {
      const response = await this.http.send({
        method: 'GET',
        path: `/health/service/${encodeURIComponent(service)}`,
        query: {
          passing: '1',
          ...(member.filter ? { filter: member.filter } : {}),
          ...(this.http.settings.datacenter ? { dc: this.http.settings.datacenter } : {}),
        },
        signal: this.controller?.signal,
        what,
      });
      if (response.status !== 200) throw this.http.failure(response, what);
      const index = Number(response.headers['x-consul-index']);
      member.index = Number.isSafeInteger(index) ? index : 0;
      if (member.failing) {
        this.logger.log(`consul: watch of '${service}' recovered`);
        member.failing = undefined;
      }
      const instances = healthInstances(response.body, service, member.compiled, this.warnOnce);
      if (instances) member.publisher.publish(instances);
      return false;
    } catch (error) {
      if (!this.members.has(member) || this.controller?.signal.aborted) return false;
      const failure =
        error instanceof ConsulRequestError ? error : new ConsulRequestError('unreachable', undefined, String(error));
      if (
        (failure.kind === 'rejected' || failure.kind === 'server') &&
        member.filter &&
        /filter|boolean expression/i.test(failure.detail)
      ) {
        // Consul 1.8 answers 500 for a filter it cannot parse; without it, matches() still filters client-side.
        this.logger.warn(
          `consul: agent rejected the filter for '${service}' (${failure.message}); filtering client-side only`,
        );
        member.filter = undefined;
        member.readAgain = true;
        return false;
      }
      const reason = failure.noAnswer
        ? (this.http.reachability.current.reason ?? `registry unreachable: ${failure.message}`)
        : `registry error: ${failure.message}`;
      if (member.failing !== reason) {
        this.logger.warn(
          `consul: watch of '${service}' failing (${reason}); serving the last known endpoints as stale`,
        );
        member.failing = reason;
      }
      member.publisher.publishStale(reason);
      return true;
    }
  }
}
