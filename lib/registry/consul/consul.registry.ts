import type { Observable } from 'rxjs';
import type { ResolvedDiscoveryConfig } from '../../core/config/resolve-discovery-config.js';
import { compileQuery, type DiscoveryQuery } from '../../core/discovery-query.js';
import type { EndpointSet } from '../../core/endpoint-set.js';
import { ClosedError, DiscoveryError, RegistrationError } from '../../core/errors.js';
import { importOptionalPeer } from '../../core/optional-peer.js';
import type { ServiceInstance } from '../../core/service-instance.js';
import { configFor, type BackendFactory } from '../backend-context.js';
import type { DiscoveryLogger, Registration, RegistrationTiming, Registry } from '../registry.interface.js';
import { EndpointWatches } from '../shared/endpoint-watches.js';
import type { Reachability } from '../shared/reachability.js';
import { ConsulAgentApi, type ConsulClient } from './consul-agent-api.js';
import { ConsulCatalogWatch } from './consul-catalog-watch.js';
import { ConsulHttp, ConsulRequestError } from './consul-http.js';
import { ConsulRegistration } from './consul-registration.js';
import { followConsulService } from './consul-service-watch.js';
import { CONSUL_MIN_DEREGISTER_MS, type ConsulSettings } from './consul.schema.js';

export { ConsulRequestError } from './consul-http.js';
export { ConsulRegistration } from './consul-registration.js';
export type { ConsulSettings } from './consul.schema.js';

/** Tuning that has no configuration key (tests shorten it). */
export interface ConsulRegistryOptions {
  /** Smallest gap between two health queries of one watcher; default 250 ms. */
  minQueryIntervalMs?: number;
}

/**
 * The `consul` backend: registers instances with the local Consul agent
 * (TTL, HTTP or gRPC check) and discovers passing instances through
 * blocking health queries with a server-side filter. `reachability` says
 * whether the agent answered the last request (any HTTP answer counts, a
 * 403 too); while it does not, its reason starts with `registry unreachable:`.
 *
 * @example
 * const registry = await createRegistry({ config: resolveDiscoveryConfig({ backend: 'consul', backendConfig: { url: 'http://127.0.0.1:8500' } }), logger: consoleLogger });
 */
export class ConsulRegistry implements Registry {
  readonly backend = 'consul';
  readonly readOnly = false;
  readonly settings: ConsulSettings;
  private readonly http: ConsulHttp;
  private readonly api: ConsulAgentApi;
  private readonly logger: DiscoveryLogger;
  private readonly registrations = new Set<ConsulRegistration>();
  private readonly watches = new EndpointWatches();
  /** Watches that have a long-poll of their own now (at most `maxBlockingQueries`). */
  private blockingQueries = 0;
  private readonly catalog: ConsulCatalogWatch;
  private closed = false;

  constructor(
    private readonly config: ResolvedDiscoveryConfig,
    private readonly client: ConsulClient,
    http: ConsulHttp,
    logger: DiscoveryLogger,
  ) {
    this.settings = http.settings;
    this.http = http;
    this.api = new ConsulAgentApi(http, client);
    this.logger = logger;
    this.catalog = new ConsulCatalogWatch(http, logger);
  }

  get reachability(): Reachability {
    return this.http.reachability;
  }

  async register(instance: ServiceInstance, timing: RegistrationTiming): Promise<Registration> {
    if (this.closed) throw new ClosedError('consul registry is closed');
    for (const existing of this.registrations) {
      // The agent would silently merge two registrations of one id into one.
      if (existing.instance.id === instance.id) {
        throw new RegistrationError(
          `Instance id '${instance.id}' is already registered by this registry (service '${existing.instance.service}')`,
        );
      }
    }
    const registration = await ConsulRegistration.start(instance, timing, {
      api: this.api,
      settings: this.settings,
      logger: this.logger,
      onEnd: (ended) => this.registrations.delete(ended),
    });
    this.registrations.add(registration);
    return registration;
  }

  /**
   * Follows a query: with a blocking query of its own while fewer than
   * `max_blocking_queries` watches have one, otherwise through the
   * catalog-wide watch, so 1,000 services never hold 1,000 sockets to the
   * agent (whose default limit is 200 per client IP).
   */
  watch(query: DiscoveryQuery): Observable<EndpointSet> {
    // Validated here, so a bad query throws to the caller instead of erroring the stream.
    const compiled = compileQuery(query);
    return this.watches.stream(query.service, (publisher) => {
      if (this.blockingQueries >= this.settings.maxBlockingQueries) return this.catalog.add(query, compiled, publisher);
      this.blockingQueries++;
      const stop = followConsulService(query, compiled, { http: this.http, logger: this.logger }, publisher);
      return () => {
        this.blockingQueries--;
        stop();
      };
    });
  }

  /**
   * Stops every watcher and heartbeat. Registrations are deregistered when
   * `registration.deregister_on_shutdown` is on (the default); otherwise
   * their checks expire on their own.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.watches.close();
    const deregister = this.config.registration.deregisterOnShutdown;
    await Promise.all([...this.registrations].map((r) => (deregister ? r.deregister() : r.stop())));
    this.client.destroy();
    this.http.close();
  }
}

/**
 * Loads the optional `consul` package, or throws MissingPeerDependencyError
 * saying how to install it.
 *
 * @example
 * const Consul = await loadConsulClass();
 */
export async function loadConsulClass(
  importer: () => Promise<unknown> = () => import('consul'),
): Promise<new (options: object) => ConsulClient> {
  const module = await importOptionalPeer('consul', "backend 'consul'", importer);
  const candidate = (module as { default?: unknown }).default ?? module;
  if (typeof candidate !== 'function') {
    throw new DiscoveryError(
      "The 'consul' package does not export the client class expected from version 2.x: install consul@^2",
    );
  }
  return candidate as new (options: object) => ConsulClient;
}

/**
 * Builds a {@link ConsulRegistry}: validates `backend_config`, loads the
 * `consul` client and probes the agent. An unreachable agent is logged and
 * tolerated (registrations retry in the background) unless `strict`, which
 * makes it an error.
 */
export async function createConsulRegistry(
  config: ResolvedDiscoveryConfig,
  logger: DiscoveryLogger,
  options: ConsulRegistryOptions = {},
): Promise<ConsulRegistry> {
  const configured: ConsulSettings = configFor(config, 'consul').backendConfig;
  const settings: ConsulSettings =
    options.minQueryIntervalMs === undefined
      ? configured
      : Object.freeze({ ...configured, minQueryIntervalMs: options.minQueryIntervalMs });
  const Consul = await loadConsulClass();
  const http = new ConsulHttp(settings);
  const log = redactingLogger(logger, (text) => http.redact(text));
  const client = new Consul({
    baseUrl: `${settings.baseUrl}/v1`,
    agent: http.agent,
    ...(settings.token ? { defaults: { token: settings.token } } : {}),
  });
  const registry = new ConsulRegistry(config, client, http, log);

  if (
    settings.check.deregisterCriticalAfterMs !== undefined &&
    settings.check.deregisterCriticalAfterMs < CONSUL_MIN_DEREGISTER_MS
  ) {
    log.warn(`consul: backend_config.check.deregister_critical_after is below 1 minute; Consul raises it to 1 minute`);
  }
  const state = await registry.reachability.probe();
  if (!state.reachable) {
    if (settings.strict) {
      await registry.close();
      throw new ConsulRequestError('unreachable', undefined, `${state.reason} (backend_config.strict is on)`);
    }
    log.warn(`consul: ${state.reason}; starting anyway, registrations and watchers retry with backoff`);
  }
  return registry;
}

/** The backend entry point used by `createRegistry(config)`. */
export const createRegistry: BackendFactory = ({ config, logger }) => createConsulRegistry(config, logger);

/** A logger that removes the ACL token from every line, whatever produced it. */
function redactingLogger(logger: DiscoveryLogger, redact: (text: string) => string): DiscoveryLogger {
  return {
    log: (m) => logger.log(redact(m)),
    warn: (m) => logger.warn(redact(m)),
    error: (m) => logger.error(redact(m)),
    ...(logger.debug ? { debug: (m: string) => logger.debug!(redact(m)) } : {}),
  };
}
