import { isIP } from 'node:net';
import { parseAddress } from '../../core/address.js';
import { ConfigurationError, InvalidAddressError, type ConfigIssue } from '../../core/errors.js';
import type { ResolvedDiscoveryConfig } from '../../core/config/resolve-discovery-config.js';
import { parseStaticAddresses } from '../static/static-instances.js';

/** The SRV name asked for when `srv` is on and no template is given. */
export const DEFAULT_SRV_TEMPLATE = '_grpc._tcp.{service}.{domain}';
/** Default lower bound of the re-resolve interval, seconds. */
export const DEFAULT_TTL_FLOOR_S = 1;
/** Default per-try timeout of one DNS query, seconds. */
export const DEFAULT_TIMEOUT_S = 2;
/** Default number of tries per nameserver. */
export const DEFAULT_TRIES = 2;

const PLACEHOLDER = /\{([^{}]*)\}/g;
const KNOWN_PLACEHOLDERS = new Set(['service', 'domain']);
const FIELD = 'backend_config';

/**
 * How the `dns` backend asks: `srv` follows SRV records (priority, weight,
 * port) and resolves their targets; `address` asks A/AAAA of
 * `{service}.{domain}` and uses the configured port; `static` never asks DNS
 * and serves `addresses` (a `dns` section with addresses but no domain).
 */
export type DnsMode = 'srv' | 'address' | 'static';

/** The `dns` backend's options after validation, durations in ms. */
export interface DnsSettings {
  mode: DnsMode;
  domain: string | undefined;
  srvTemplate: string;
  /** Port for A/AAAA mode. */
  port: number | undefined;
  /** `host:port` strings for Resolver#setServers; empty = the system's resolvers. */
  nameservers: string[];
  /** Normalised fallback addresses (see the README's DNS section for when they are served). */
  addresses: string[];
  ttlFloorMs: number;
  ttlCeilingMs: number;
  timeoutMs: number;
  tries: number;
}

/**
 * Validates the `dns` section and fills defaults. Throws one
 * {@link ConfigurationError} listing every bad field (path, value, expectation).
 *
 * @example
 * const settings = resolveDnsSettings(config); // config from loadDiscoveryConfig('dns.toml')
 */
export function resolveDnsSettings(
  config: Pick<ResolvedDiscoveryConfig, 'backendConfig' | 'refreshIntervalMs'>,
): DnsSettings {
  const raw = (config.backendConfig ?? {}) as Record<string, unknown>;
  const issues: ConfigIssue[] = [];
  const issue = (path: string, value: unknown, message: string) =>
    issues.push({ path: `${FIELD}.${path}`, value, message });

  const domain = typeof raw.domain === 'string' && raw.domain.length > 0 ? raw.domain.replace(/\.$/, '') : undefined;
  if (raw.domain !== undefined && (domain === undefined || !isDnsName(domain))) {
    issue('domain', raw.domain, 'a DNS domain such as "svc.cluster.local"');
  }

  let addresses: string[] = [];
  if (raw.addresses !== undefined) {
    try {
      addresses = parseStaticAddresses(raw.addresses, `${FIELD}.addresses`);
    } catch (error) {
      if (!(error instanceof ConfigurationError)) throw error;
      issues.push(...error.issues);
    }
  }

  const nameservers: string[] = [];
  if (raw.nameservers !== undefined) {
    if (!Array.isArray(raw.nameservers)) issue('nameservers', raw.nameservers, 'a list of "ip:port" nameservers');
    else {
      raw.nameservers.forEach((value: unknown, i) => {
        const ns = parseNameserver(value);
        if (ns) nameservers.push(ns);
        else
          issue(
            `nameservers[${i}]`,
            value,
            'a nameserver as "ip:port" (an IP address, not a host name; IPv6 in brackets, e.g. "10.96.0.10:53" or "[::1]:53")',
          );
      });
    }
  }

  const srv = raw.srv;
  let srvTemplate = DEFAULT_SRV_TEMPLATE;
  let customTemplate = false;
  if (srv !== undefined && typeof srv !== 'boolean') {
    const template = srv && typeof srv === 'object' ? (srv as { template?: unknown }).template : srv;
    if (template !== undefined) {
      const problem = templateProblem(template);
      if (problem) issue('srv.template', template, problem);
      else {
        srvTemplate = template as string;
        customTemplate = true;
      }
    }
  }

  const port = raw.port;
  if (port !== undefined && (!Number.isInteger(port) || (port as number) < 1 || (port as number) > 65535)) {
    issue('port', port, 'an integer port 1-65535');
  }

  // A port without an explicit `srv` means "headless service": ask A/AAAA.
  const srvOn = srv === undefined ? port === undefined : srv !== false;
  const asksDns = domain !== undefined || (srvOn && customTemplate && !srvTemplate.includes('{domain}'));
  let mode: DnsMode;
  if (!asksDns && raw.domain === undefined) {
    if (addresses.length === 0 && raw.addresses === undefined) {
      issue('domain', undefined, 'a DNS domain such as "svc.cluster.local" (or `addresses` for a fixed list)');
    }
    mode = 'static';
  } else {
    mode = srvOn ? 'srv' : 'address';
  }
  if (mode === 'address' && port === undefined) {
    issue('port', undefined, 'a port for A/AAAA lookups (srv = false): DNS address records carry no port');
  }

  const floorS = positiveSeconds(raw.ttlFloor, 'ttl_floor', DEFAULT_TTL_FLOOR_S, issue);
  const ceilingS = positiveSeconds(raw.ttlCeiling, 'ttl_ceiling', config.refreshIntervalMs / 1000, issue);
  if (floorS > ceilingS) {
    issue(
      'ttl_floor',
      raw.ttlFloor ?? floorS,
      `at most the TTL ceiling (${ceilingS} s${raw.ttlCeiling === undefined ? ', from refresh_interval' : ''})`,
    );
  }
  const timeoutS = positiveSeconds(raw.timeout, 'timeout', DEFAULT_TIMEOUT_S, issue);
  const tries = raw.tries ?? DEFAULT_TRIES;
  if (!Number.isInteger(tries) || (tries as number) < 1) issue('tries', raw.tries, 'an integer >= 1');

  if (issues.length) throw new ConfigurationError(issues);
  return {
    mode,
    domain,
    srvTemplate,
    port: port as number | undefined,
    nameservers,
    addresses,
    ttlFloorMs: Math.round(floorS * 1000),
    ttlCeilingMs: Math.round(ceilingS * 1000),
    timeoutMs: Math.round(timeoutS * 1000),
    tries: tries as number,
  };
}

/** The name asked for `service`: the SRV template, or `{service}.{domain}` for A/AAAA. */
export function queryName(settings: DnsSettings, service: string): string {
  const template = settings.mode === 'srv' ? settings.srvTemplate : '{service}.{domain}';
  return template
    .replace(/\{service\}/g, service)
    .replace(/\.?\{domain\}/g, (m) => (settings.domain ? m.replace('{domain}', settings.domain) : ''));
}

function parseNameserver(value: unknown): string | undefined {
  try {
    const { host, port } = parseAddress(value, 'nameserver');
    if (isIP(host) === 0) return undefined;
    return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
  } catch (error) {
    if (error instanceof InvalidAddressError) return undefined;
    throw error;
  }
}

function templateProblem(template: unknown): string | undefined {
  if (typeof template !== 'string' || template.length === 0)
    return 'a non-empty SRV name template such as "_grpc._tcp.{service}.{domain}"';
  if (!template.includes('{service}'))
    return 'an SRV name template containing "{service}", e.g. "_grpc._tcp.{service}.{domain}"';
  for (const [, name] of template.matchAll(PLACEHOLDER)) {
    if (!KNOWN_PLACEHOLDERS.has(name)) return `only the placeholders {service} and {domain} (found {${name}})`;
  }
  return undefined;
}

function positiveSeconds(
  value: unknown,
  path: string,
  fallback: number,
  issue: (p: string, v: unknown, m: string) => void,
): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    issue(path, value, 'a number of seconds > 0');
    return fallback;
  }
  return value;
}

function isDnsName(name: string): boolean {
  return (
    name.length <= 253 &&
    name.split('.').every((label) => /^[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?$/.test(label))
  );
}
