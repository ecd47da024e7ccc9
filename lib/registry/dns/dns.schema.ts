import { isIP } from 'node:net';
import { z } from 'zod';
import { parseAddress } from '../../core/address.js';
import type { BackendSchemaContext } from '../../core/config/backend-schema.js';
import {
  commonBackendFields,
  hostPortList,
  nonEmpty,
  reportIssue,
  seconds,
  toMs,
} from '../../core/config/config-fields.js';
import { InvalidAddressError } from '../../core/errors.js';

// Loaded by core's configuration loader, so it imports only zod and core:
// core/config may import each registry/<backend>/<backend>.schema.ts and
// nothing else from registry/.

/** The SRV name asked for when `srv` is on and no template is given. */
export const DEFAULT_SRV_TEMPLATE = '_grpc._tcp.{service}.{domain}';

const KNOWN_PLACEHOLDERS = new Set(['service', 'domain']);
/** Shortest re-resolve interval when `ttl_floor` is not given, seconds (less when the ceiling is lower). */
const DEFAULT_TTL_FLOOR_S = 1;

/**
 * How the `dns` backend asks: `srv` follows SRV records (priority, weight,
 * port) and resolves their targets; `address` asks A/AAAA of
 * `{service}.{domain}` and uses the configured port; `static` never asks DNS
 * and serves `addresses` (a `dns` section with addresses but no domain).
 */
export type DnsMode = 'srv' | 'address' | 'static';

/**
 * `backend = "dns"`: validates `backend_config` and transforms it into the
 * backend's settings: the mode (SRV, A/AAAA or a fixed list), nameservers,
 * fallback addresses, and the re-resolve bounds in ms (the TTL ceiling
 * defaulting to `refresh_interval`).
 *
 * @example
 * dnsConfigSchema(context).parse({ domain: 'svc.cluster.local' }).mode; // 'srv'
 */
export const dnsConfigSchema = (context: BackendSchemaContext) =>
  z
    .strictObject({
      ...commonBackendFields,
      domain: nonEmpty.optional(),
      addresses: hostPortList.optional(),
      nameservers: z.array(z.unknown()).default([]),
      srv: z.union([z.boolean(), z.strictObject({ template: nonEmpty.optional() })]).optional(),
      port: z.number().int().min(1).max(65535).optional(),
      ttlFloor: seconds.optional(),
      ttlCeiling: seconds.optional(),
      timeout: seconds.default(2),
      tries: z.number().int().min(1).default(2),
    })
    .transform((raw, ctx) => {
      const domain = raw.domain?.replace(/\.$/, '') || undefined;
      if (raw.domain !== undefined && (domain === undefined || !isDnsName(domain))) {
        reportIssue(ctx, ['domain'], 'a DNS domain such as "svc.cluster.local"', raw.domain);
      }

      const nameservers: string[] = [];
      raw.nameservers.forEach((value, i) => {
        const nameserver = parseNameserver(value);
        if (nameserver) nameservers.push(nameserver);
        else
          reportIssue(
            ctx,
            ['nameservers', i],
            'a nameserver as "ip:port" (an IP address, not a host name; IPv6 in brackets, e.g. "10.96.0.10:53" or "[::1]:53")',
            value,
          );
      });

      let srvTemplate = DEFAULT_SRV_TEMPLATE;
      let customTemplate = false;
      const template = typeof raw.srv === 'object' ? raw.srv.template : undefined;
      if (template !== undefined) {
        const problem = templateProblem(template);
        if (problem) reportIssue(ctx, ['srv', 'template'], problem, template);
        else {
          srvTemplate = template;
          customTemplate = true;
        }
      }

      // A port without an explicit `srv` means "headless service": ask A/AAAA.
      const srvOn = raw.srv === undefined ? raw.port === undefined : raw.srv !== false;
      const asksDns = domain !== undefined || (srvOn && customTemplate && !srvTemplate.includes('{domain}'));
      let mode: DnsMode;
      if (!asksDns && raw.domain === undefined) {
        if (raw.addresses === undefined) {
          reportIssue(ctx, ['domain'], 'a DNS domain such as "svc.cluster.local" (or `addresses` for a fixed list)');
        }
        mode = 'static';
      } else {
        mode = srvOn ? 'srv' : 'address';
      }
      if (mode === 'address' && raw.port === undefined) {
        reportIssue(ctx, ['port'], 'a port for A/AAAA lookups (srv = false): DNS address records carry no port');
      }

      const ceilingS = raw.ttlCeiling ?? context.refreshIntervalMs / 1000;
      // A floor the user did not set gives way to a short ceiling; one they set must fit under it.
      const floorS = raw.ttlFloor ?? Math.min(DEFAULT_TTL_FLOOR_S, ceilingS);
      if (floorS > ceilingS) {
        reportIssue(
          ctx,
          ['ttlFloor'],
          `at most the TTL ceiling (${ceilingS} s${raw.ttlCeiling === undefined ? ', from refresh_interval' : ''})`,
          floorS,
        );
      }

      return {
        serviceType: raw.serviceType,
        mode,
        domain,
        srvTemplate,
        /** Port for A/AAAA mode (ignored, with a warning, in SRV mode). */
        port: raw.port,
        /** `host:port` strings for Resolver#setServers; empty = the system's resolvers. */
        nameservers,
        /** Normalised fallback addresses (see the README's DNS section for when they are served). */
        addresses: raw.addresses ?? [],
        ttlFloorMs: toMs(floorS),
        ttlCeilingMs: toMs(ceilingS),
        /** Per-try timeout of one DNS query. */
        timeoutMs: toMs(raw.timeout),
        /** Tries per nameserver. */
        tries: raw.tries,
      };
    });

/** The `dns` backend's settings (durations in ms). */
export type DnsSettings = z.output<ReturnType<typeof dnsConfigSchema>>;

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

function templateProblem(template: string): string | undefined {
  if (!template.includes('{service}'))
    return 'an SRV name template containing "{service}", e.g. "_grpc._tcp.{service}.{domain}"';
  for (const [, name] of template.matchAll(/\{([^{}]*)\}/g)) {
    if (!KNOWN_PLACEHOLDERS.has(name)) return `only the placeholders {service} and {domain} (found {${name}})`;
  }
  return undefined;
}

function isDnsName(name: string): boolean {
  return (
    name.length <= 253 &&
    name.split('.').every((label) => /^[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?$/.test(label))
  );
}
