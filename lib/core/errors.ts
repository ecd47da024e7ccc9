/**
 * Errors raised by switchyard. Every error carries enough context (field,
 * value, service) that the message alone tells an operator what to fix.
 */
export class DiscoveryError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** One problem found while validating options or a configuration file. */
export interface ConfigIssue {
  /** Dotted path as the user wrote it, e.g. `discovery.backend_config.ttl`. */
  path: string;
  /** What was expected there. */
  message: string;
  /** The value found, when there was one. */
  value?: unknown;
}

/**
 * Invalid configuration. Thrown before anything is started, so a bad
 * configuration never half-starts the module.
 *
 * @example
 * try { await loadDiscoveryConfig('discovery.toml') } catch (e) { if (e instanceof ConfigurationError) console.error(e.issues) }
 */
export class ConfigurationError extends DiscoveryError {
  readonly issues: readonly ConfigIssue[];

  constructor(
    issues: readonly ConfigIssue[],
    readonly source?: string,
  ) {
    const safe = issues.map(redactIssue);
    super(ConfigurationError.format(safe, source));
    this.issues = safe;
  }

  static single(path: string, value: unknown, message: string, source?: string): ConfigurationError {
    return new ConfigurationError([{ path, value, message }], source);
  }

  private static format(issues: readonly ConfigIssue[], source?: string): string {
    const where = source ? ` in ${source}` : '';
    const lines = issues.map((issue) => {
      const got = 'value' in issue && issue.value !== undefined ? ` (got ${describeValue(issue.value)})` : '';
      return `  - ${issue.path || '<root>'}: ${redactUrlCredentials(issue.message)}${got}`;
    });
    return `Invalid discovery configuration${where}:\n${lines.join('\n')}`;
  }
}

/** Why no endpoint could be picked. */
export type NoEndpointsReason = 'empty' | 'unreachable' | 'pending' | 'filtered' | 'too-few';

const REASON_TEXT: Record<NoEndpointsReason, string> = {
  empty: 'the registry reports zero instances',
  unreachable: 'the registry is unreachable and no last known endpoints exist',
  pending: 'no answer from the registry yet',
  filtered: 'every known instance was filtered out or is unhealthy',
  'too-few': 'fewer endpoints are served than wanted',
};

/**
 * Thrown by `ServiceClient.pick()` when there is nothing to pick. `reason`
 * separates "the service has zero instances" from "the registry is down".
 */
export class NoEndpointsError extends DiscoveryError {
  constructor(
    readonly service: string,
    readonly reason: NoEndpointsReason,
    detail?: string,
  ) {
    super(`No endpoints for service '${service}': ${REASON_TEXT[reason]}${detail ? ` (${detail})` : ''}`);
  }
}

/** Why a call was refused before it was sent. */
export type OverloadReason = 'max-requests' | 'max-requests-per-endpoint' | 'max-pending' | 'throttled';

/**
 * A call refused on the client, before it was sent, to protect the service:
 * a circuit-breaker limit was reached, or adaptive throttling shed it while
 * the service rejects most calls. Never retried; the caller decides what to
 * do (fail fast, degrade, queue elsewhere).
 *
 * @example
 * try { await orders.call(send) } catch (e) { if (e instanceof OverloadedError) return fallback(); throw e; }
 */
export class OverloadedError extends DiscoveryError {
  constructor(
    readonly service: string,
    readonly reason: OverloadReason,
    /** The limit reached (or, when throttled, the share of calls being shed, percent). */
    readonly limit: number,
    /** The endpoint, for a per-endpoint limit. */
    readonly endpoint?: string,
  ) {
    super(OverloadedError.describe(service, reason, limit, endpoint));
  }

  private static describe(service: string, reason: OverloadReason, limit: number, endpoint?: string): string {
    switch (reason) {
      case 'max-requests':
        return `Overloaded: '${service}' already has ${limit} calls in flight (circuit_breaker.max_requests = ${limit})`;
      case 'max-requests-per-endpoint':
        return `Overloaded: every endpoint of '${service}' tried has ${limit} calls in flight${endpoint ? ` (${endpoint})` : ''} (circuit_breaker.max_requests_per_endpoint = ${limit})`;
      case 'max-pending':
        return `Overloaded: ${limit} calls already wait for an endpoint of '${service}' (circuit_breaker.max_pending = ${limit})`;
      case 'throttled':
        return `Overloaded: '${service}' rejects most calls; this client sheds about ${limit}% of its calls (adaptive throttling)`;
    }
  }
}

/** An address that is not `host:port`. */
export class InvalidAddressError extends DiscoveryError {
  constructor(
    readonly value: unknown,
    readonly field = 'address',
  ) {
    super(`Invalid ${field} ${describeValue(value)}: expected "host:port" (IPv6 in brackets, e.g. "[::1]:50051")`);
  }
}

/** A registration the backend refused (duplicate id, unwritable store, ...). */
export class RegistrationError extends DiscoveryError {}

/** An operation the chosen backend does not offer (e.g. registering in DNS). */
export class NotSupportedError extends DiscoveryError {}

/** Used after `close()`. */
export class ClosedError extends DiscoveryError {}

export function describeValue(value: unknown): string {
  if (typeof value === 'string')
    return JSON.stringify(redactUrlCredentials(value.length > 200 ? `${value.slice(0, 197)}...` : value));
  if (value === undefined) return 'undefined';
  try {
    const text = redactUrlCredentials(JSON.stringify(value) ?? `[${typeof value}]`);
    return text.length > 120 ? `${text.slice(0, 117)}...` : text;
  } catch {
    // Cyclic or absurdly deep values: say what it is, never recurse again.
    return Array.isArray(value) ? '[array]' : `[${typeof value}]`;
  }
}

/** Field names whose values are secrets: never echoed in an error. */
const SECRET_FIELD = /(^|[._[])(password|passwd|token|secret|key|credentials?|auth)(\]|$)/i;

/** `scheme://user:password@host` → `scheme://user:***@host`. */
export function redactUrlCredentials(text: string): string {
  return text.replace(/(\b[a-z][a-z0-9+.-]*:\/\/[^\s/:@"']*):[^\s/@"']*@/gi, '$1:***@');
}

function redactIssue(issue: ConfigIssue): ConfigIssue {
  if (!('value' in issue) || issue.value === undefined) return issue;
  if (
    SECRET_FIELD.test(issue.path) ||
    (issue.value !== null && typeof issue.value === 'object' && containsSecretKey(issue.value))
  ) {
    return { ...issue, value: '<redacted>' };
  }
  if (typeof issue.value === 'string') return { ...issue, value: redactUrlCredentials(issue.value) };
  return issue;
}

function containsSecretKey(value: object, depth = 0): boolean {
  if (depth > 4) return false;
  for (const [key, inner] of Object.entries(value)) {
    if (SECRET_FIELD.test(key)) return true;
    if (inner && typeof inner === 'object' && containsSecretKey(inner, depth + 1)) return true;
  }
  return false;
}
