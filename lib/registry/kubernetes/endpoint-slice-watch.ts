import { Backoff } from '../../core/backoff.js';
import type { CompiledQuery } from '../../core/discovery-query.js';
import type { DiscoveryLogger } from '../registry.interface.js';
import { abortableSleep } from '../shared/abortable-sleep.js';
import type { EndpointSetPublisher } from '../shared/endpoint-set-publisher.js';
import type { ReachabilityTracker } from '../shared/reachability.js';
import { instancesOfSlices, type EndpointSliceObject } from './endpoint-slices.js';
import { KubernetesApiError, type KubernetesApi, type WatchEvent } from './kubernetes-api.js';
import type { KubernetesSettings } from './kubernetes.schema.js';

/** A list page as the API server answers it. */
interface SliceList {
  metadata?: { resourceVersion?: string; continue?: string };
  items?: EndpointSliceObject[];
}

/** A 410 Gone: the resourceVersion we hold was compacted away; list again. */
class ResourceVersionGone extends Error {}

/** An open watch stream broke (reset, closed): not an outage until reconnecting fails too. */
class StreamBroken extends Error {}

/** A quiet watch's check of the server got no answer. */
class ServerSilent extends Error {}

/**
 * One subscription's list-then-watch of a service's EndpointSlices in one
 * namespace. It keeps every slice of the service (merged into one set),
 * resumes each watch from the last resourceVersion it saw (events and
 * bookmarks), lists again on 410 Gone while the last set stays served, and
 * reconnects with backoff; while the API server does not answer (or refuses
 * with 401/403) the set is stale with the reason, never dropped.
 */
export class EndpointSliceWatch {
  private readonly slices = new Map<string, EndpointSliceObject>();
  private resourceVersion: string | undefined;
  private readonly abort = new AbortController();
  private readonly backoff: Backoff;
  private readonly path: string;
  private readonly selector: string;
  /** Why the set is stale now (undefined while the watch is healthy). */
  private outage: string | undefined;
  private readonly reported = new Set<string>();
  /** Set when a broken stream was retried at once; cleared by the next answer. */
  private retriedAtOnce = false;
  private sliceProblems = new Set<string>();

  constructor(
    private readonly api: KubernetesApi,
    private readonly settings: KubernetesSettings,
    readonly service: string,
    /** The Kubernetes namespace watched. */
    readonly namespace: string,
    private readonly query: CompiledQuery,
    private readonly publisher: EndpointSetPublisher,
    private readonly reachability: ReachabilityTracker,
    private readonly logger: DiscoveryLogger,
  ) {
    this.path = `/apis/discovery.k8s.io/v1/namespaces/${encodeURIComponent(namespace)}/endpointslices`;
    this.selector = encodeURIComponent(`kubernetes.io/service-name=${service}`);
    this.backoff = new Backoff({ initialMs: Math.min(100, settings.idleCheckMs / 4), maxMs: settings.idleCheckMs });
  }

  start(): void {
    void this.run();
  }

  /** Ends the watch and any request in flight; idempotent. */
  stop(): void {
    this.abort.abort();
  }

  private get stopped(): boolean {
    return this.abort.signal.aborted;
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      try {
        if (this.resourceVersion === undefined) await this.list();
        await this.watch();
      } catch (error) {
        if (this.stopped) return;
        if (error instanceof StreamBroken && !this.retriedAtOnce) {
          // API servers and load balancers end long streams; reconnecting at once usually just works.
          this.retriedAtOnce = true;
          continue;
        }
        if (error instanceof ResourceVersionGone) {
          this.logger.log(
            `kubernetes: resourceVersion of '${this.service}' expired (410 Gone); listing again, serving the last known set meanwhile`,
          );
          this.resourceVersion = undefined;
          continue;
        }
        this.failed(error);
        await abortableSleep(this.backoff.next(), this.abort.signal);
      }
    }
  }

  /** Lists every slice of the service (page by page, one consistent snapshot) and replaces the cache. */
  private async list(): Promise<void> {
    const items: EndpointSliceObject[] = [];
    let resourceVersion: string | undefined;
    let next: string | undefined;
    do {
      const query = `labelSelector=${this.selector}&limit=${this.settings.pageSize}${next ? `&continue=${encodeURIComponent(next)}` : ''}`;
      let page: SliceList;
      try {
        page = await this.api.get<SliceList>(`${this.path}?${query}`, this.abort.signal);
      } catch (error) {
        // The continue token outlived the history: start the list over.
        if (error instanceof KubernetesApiError && error.status === 410 && next) throw new ResourceVersionGone();
        throw error;
      }
      items.push(...(page.items ?? []));
      resourceVersion = page.metadata?.resourceVersion;
      next = page.metadata?.continue || undefined;
    } while (next && !this.stopped);
    if (this.stopped) return;
    this.slices.clear();
    for (const item of items) if (item?.metadata?.name) this.slices.set(item.metadata.name, item);
    this.resourceVersion = resourceVersion;
    this.answered();
    this.publish();
  }

  /** One watch from the held resourceVersion, until the server ends it. */
  private async watch(): Promise<void> {
    const query =
      `labelSelector=${this.selector}&watch=1&allowWatchBookmarks=true` +
      `&timeoutSeconds=${this.settings.watchTimeoutS}&resourceVersion=${encodeURIComponent(this.resourceVersion ?? '')}`;
    let gone = false;
    let opened = false;
    try {
      await this.api.watch(
        `${this.path}?${query}`,
        {
          opened: () => {
            opened = true;
            this.answered();
            this.publish();
          },
          events: (events) => {
            if (this.apply(events)) this.publish();
            if (events.some((e) => e.type === 'ERROR' && errorCode(e) === 410)) gone = true;
          },
          malformed: (line) =>
            this.report(`kubernetes: a watch line of '${this.service}' is not JSON; skipped: ${line.slice(0, 120)}`),
        },
        {
          signal: this.abort.signal,
          idleMs: this.settings.idleCheckMs,
          // A quiet watch may be a stalled server: one cheap request tells.
          idle: () =>
            this.api.get('/version', this.abort.signal).then(
              () => undefined,
              (error: Error) => {
                throw new ServerSilent(error.message, { cause: error });
              },
            ),
          maxMs: this.settings.watchTimeoutS * 1000 + this.settings.requestTimeoutMs,
        },
      );
    } catch (error) {
      if (error instanceof KubernetesApiError && error.status === 410) throw new ResourceVersionGone();
      if (opened && !(error instanceof ServerSilent) && !this.stopped) {
        throw new StreamBroken((error as Error)?.message ?? String(error), { cause: error });
      }
      throw error;
    }
    if (gone) throw new ResourceVersionGone();
  }

  /** Applies a chunk of events; true when a slice changed. */
  private apply(events: WatchEvent[]): boolean {
    let changed = false;
    for (const event of events) {
      const object = event.object as EndpointSliceObject & WatchEvent['object'];
      if (event.type === 'ERROR') {
        if (errorCode(event) !== 410) {
          this.report(
            `kubernetes: the watch of '${this.service}' reported an error: ${JSON.stringify(event.object).slice(0, 200)}`,
          );
        }
        continue;
      }
      const version = object?.metadata?.resourceVersion;
      if (typeof version === 'string' && version) this.resourceVersion = version;
      const name = object?.metadata?.name;
      if (event.type === 'BOOKMARK' || typeof name !== 'string') continue;
      if (event.type === 'DELETED') changed = this.slices.delete(name) || changed;
      else if (event.type === 'ADDED' || event.type === 'MODIFIED') {
        this.slices.set(name, object);
        changed = true;
      }
    }
    return changed;
  }

  private publish(): void {
    if (this.stopped) return;
    let decoded: ReturnType<typeof instancesOfSlices>;
    try {
      decoded = instancesOfSlices(this.slices.values(), {
        service: this.service,
        namespace: this.query.namespace,
        portName: this.settings.portName,
      });
    } catch (error) {
      // Data we could not model must never end the watch (or the app): keep the last set.
      this.report(
        `kubernetes: the slices of '${this.service}' could not be read (${(error as Error)?.message}); keeping the last set`,
      );
      return;
    }
    const { instances, portProblems, skipped } = decoded;
    // Each problem of the slices is logged once while it lasts (fixed, then broken again: logged again).
    const now = new Set<string>();
    for (const problem of portProblems) {
      now.add(problem);
      if (!this.sliceProblems.has(problem)) this.logger.error(`kubernetes: ${problem}`);
    }
    for (const message of skipped) {
      now.add(message);
      if (!this.sliceProblems.has(message)) this.logger.warn(`kubernetes: ${message}`);
    }
    this.sliceProblems = now;
    this.publisher.publish(instances.filter(this.query.matches));
  }

  /** The server answered: reachable, and an outage (if any) is over. */
  private answered(): void {
    this.reachability.reachable();
    this.backoff.reset();
    this.retriedAtOnce = false;
    if (this.outage !== undefined) {
      this.logger.log(`kubernetes: the watch of '${this.service}' in namespace '${this.namespace}' works again`);
      this.outage = undefined;
    }
  }

  private failed(error: unknown): void {
    const reason = this.reasonOf(error);
    const refused = error instanceof KubernetesApiError && (error.status === 401 || error.status === 403);
    // A refusal is an answer; a timeout, a reset or a 5xx is a server that is not there.
    if (refused) this.reachability.reachable();
    else this.reachability.unreachable(reason);
    if (this.outage === undefined) {
      const known = this.publisher.latest.size;
      const serving = known > 0 ? `serving the last known ${known} endpoint(s)` : 'no endpoints known yet';
      const text = `kubernetes: watching '${this.service}' failed (${reason}); ${serving}, retrying`;
      if (refused) this.logger.error(text);
      else this.logger.warn(text);
    }
    this.outage = reason;
    this.publisher.publishStale(reason);
  }

  private reasonOf(error: unknown): string {
    const where = `in namespace '${this.namespace}'`;
    if (error instanceof KubernetesApiError) {
      if (error.status === 403) {
        return `forbidden: ${error.detail}. The client needs "list" and "watch" on endpointslices (API group discovery.k8s.io) ${where}: bind it a Role with them (docs/backends/kubernetes.md)`;
      }
      if (error.status === 401) {
        return `unauthorized: the API server rejected ${this.api.connection.credentials} (an expired or revoked token?)`;
      }
      return `the API server answered ${error.message}`;
    }
    const message = (error as Error)?.message ?? String(error);
    const code =
      (error as NodeJS.ErrnoException)?.code ?? ((error as Error)?.cause as NodeJS.ErrnoException | undefined)?.code;
    return `API server ${this.api.connection.server.host} unreachable: ${code && !message.includes(code) ? `${code} ` : ''}${message}`;
  }

  /** Logs a warning about the stream itself once per watch (at most 50 distinct ones). */
  private report(message: string): void {
    if (this.reported.has(message) || this.reported.size >= 50) return;
    this.reported.add(message);
    this.logger.warn(message);
  }
}

function errorCode(event: WatchEvent): number | undefined {
  const code = (event.object as { code?: unknown } | undefined)?.code;
  return typeof code === 'number' ? code : undefined;
}
