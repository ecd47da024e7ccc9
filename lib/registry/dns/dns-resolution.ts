import type { promises as dns } from 'node:dns';
import { isIP } from 'node:net';
import { formatAddress } from '../../core/address.js';
import { createServiceInstance, type ServiceInstance } from '../../core/service-instance.js';
import type { DnsSettings } from './dns.schema.js';

/**
 * The weight an SRV record of weight 0 gets. RFC 2782: such targets "should
 * have a very small chance of being selected" when others weigh more, and an
 * equal chance among themselves; endpoint weights must be > 0.
 */
export const SRV_ZERO_WEIGHT = 0.01;

/** The name asked for `service`: the SRV template, or `{service}.{domain}` for A/AAAA. */
export function queryName(settings: DnsSettings, service: string): string {
  const template = settings.mode === 'srv' ? settings.srvTemplate : '{service}.{domain}';
  return template
    .replace(/\{service\}/g, service)
    .replace(/\.?\{domain\}/g, (m) => (settings.domain ? m.replace('{domain}', settings.domain) : ''));
}

/** What one round of queries for a service found. */
export type DnsAnswer =
  /** Usable records; `ttlS` is the smallest TTL seen (undefined when none was reported). */
  | { kind: 'records'; name: string; instances: ServiceInstance[]; ttlS: number | undefined; skippedTargets: string[] }
  /** The name does not exist or holds no usable record: the service has zero instances. */
  | { kind: 'none'; name: string; detail: string; skippedTargets: string[] }
  /** The nameservers could not answer (refused, timeout, unreachable, SERVFAIL): keep the last good set. */
  | { kind: 'unreachable'; name: string; reason: string };

/** The part of node's `dns.promises.Resolver` a round of queries uses. */
export type DnsLookup = Pick<dns.Resolver, 'resolveSrv' | 'resolve4' | 'resolve6'>;

/** DNS answer codes meaning "nothing there" rather than "could not ask". */
const NEGATIVE_CODES = new Set(['ENOTFOUND', 'ENODATA']);

class TransientDnsError extends Error {
  constructor(
    readonly queried: string,
    readonly code: string,
  ) {
    super(`${queried}: ${code}`);
  }
}

interface TargetAddress {
  ip: string;
  ttl: number | undefined;
}

/**
 * Asks DNS once for `service` as `settings` say (SRV or A/AAAA) and turns
 * the answer into instances of namespace `namespace`. Never throws for DNS
 * failures: they come back as `unreachable`.
 *
 * @example
 * const answer = await resolveService(new dns.promises.Resolver(), settings, 'orders', 'default');
 */
export async function resolveService(
  lookup: DnsLookup,
  settings: DnsSettings,
  service: string,
  namespace: string,
): Promise<DnsAnswer> {
  const name = queryName(settings, service);
  try {
    return settings.mode === 'srv'
      ? await resolveSrvService(lookup, name, service, namespace)
      : await resolveAddressService(lookup, name, service, namespace, settings.port!);
  } catch (error) {
    if (error instanceof TransientDnsError) {
      return { kind: 'unreachable', name, reason: `DNS query for ${error.queried} failed: ${error.code}` };
    }
    const code = (error as NodeJS.ErrnoException).code;
    return { kind: 'unreachable', name, reason: `DNS query for ${name} failed: ${code ?? (error as Error).message}` };
  }
}

async function resolveAddressService(
  lookup: DnsLookup,
  name: string,
  service: string,
  namespace: string,
  port: number,
): Promise<DnsAnswer> {
  const addresses = await resolveTarget(lookup, name);
  if (addresses.length === 0)
    return { kind: 'none', name, detail: `${name} has no A/AAAA records`, skippedTargets: [] };
  const instances = addresses.map(({ ip }) => instanceAt(service, namespace, ip, port, 1, { 'dns.name': name }));
  return { kind: 'records', name, instances, ttlS: minTtl(addresses.map((a) => a.ttl)), skippedTargets: [] };
}

async function resolveSrvService(
  lookup: DnsLookup,
  name: string,
  service: string,
  namespace: string,
): Promise<DnsAnswer> {
  let records: Awaited<ReturnType<DnsLookup['resolveSrv']>>;
  try {
    records = await lookup.resolveSrv(name);
  } catch (error) {
    if (isNegative(error))
      return { kind: 'none', name, detail: `${name} has no SRV records (${codeOf(error)})`, skippedTargets: [] };
    throw new TransientDnsError(name, codeOf(error));
  }
  // RFC 2782: a target of "." means the service is decidedly not offered here.
  const usable = records.filter((r) => r.name !== '' && r.name !== '.' && r.port > 0);
  const priorities = [...new Set(usable.map((r) => r.priority))].sort((a, b) => a - b);
  const skippedTargets: string[] = [];
  for (const priority of priorities) {
    const group = usable.filter((r) => r.priority === priority);
    const targets = [...new Set(group.map((r) => r.name))];
    const resolved = new Map(await Promise.all(targets.map(async (t) => [t, await resolveTarget(lookup, t)] as const)));
    const byAddress = new Map<
      string,
      { ip: string; port: number; weight: number; targets: string[]; srvWeights: number[] }
    >();
    const ttls: Array<number | undefined> = [];
    for (const record of group) {
      const addresses = resolved.get(record.name)!;
      if (addresses.length === 0) continue;
      // A target's share is split over its addresses, so a target with two
      // IPs does not get twice the traffic its SRV weight asks for.
      const weight = (record.weight > 0 ? record.weight : SRV_ZERO_WEIGHT) / addresses.length;
      for (const { ip, ttl } of addresses) {
        ttls.push(ttl);
        const key = formatAddress(ip, record.port);
        const entry = byAddress.get(key);
        if (entry) {
          entry.weight += weight;
          entry.targets.push(record.name);
          entry.srvWeights.push(record.weight);
        } else
          byAddress.set(key, { ip, port: record.port, weight, targets: [record.name], srvWeights: [record.weight] });
      }
    }
    for (const target of targets) if (resolved.get(target)!.length === 0) skippedTargets.push(target);
    if (byAddress.size === 0) continue; // nothing resolvable at this priority: fall through to the next group
    const instances = [...byAddress.values()].map((e) =>
      instanceAt(service, namespace, e.ip, e.port, roundWeight(e.weight), {
        'dns.name': name,
        'dns.target': e.targets.join(','),
        'dns.priority': String(priority),
        'dns.weight': e.srvWeights.join(','),
      }),
    );
    return { kind: 'records', name, instances, ttlS: minTtl(ttls), skippedTargets };
  }
  const detail =
    usable.length === 0 ? `${name} has no usable SRV target` : `no SRV target of ${name} resolves to an address`;
  return { kind: 'none', name, detail, skippedTargets };
}

/**
 * A and AAAA of one name. Negative answers count as "no address"; a
 * transient failure matters only when the other family found nothing
 * (some servers mishandle AAAA, which must not hide working A records).
 */
async function resolveTarget(lookup: DnsLookup, name: string): Promise<TargetAddress[]> {
  if (isIP(name)) return [{ ip: name, ttl: undefined }];
  const [v4, v6] = await Promise.allSettled([
    lookup.resolve4(name, { ttl: true }),
    lookup.resolve6(name, { ttl: true }),
  ]);
  const found: TargetAddress[] = [];
  let transient: unknown;
  for (const result of [v4, v6]) {
    if (result.status === 'fulfilled') for (const r of result.value) found.push({ ip: r.address, ttl: r.ttl });
    else if (!isNegative(result.reason)) transient ??= result.reason;
  }
  if (found.length === 0 && transient !== undefined) throw new TransientDnsError(name, codeOf(transient));
  return found;
}

function instanceAt(
  service: string,
  namespace: string,
  ip: string,
  port: number,
  weight: number,
  custom: Record<string, string>,
): ServiceInstance {
  const address = formatAddress(ip, port);
  return createServiceInstance({ service, address, id: `dns-${address}`, namespace, weight, metadata: { custom } });
}

function roundWeight(weight: number): number {
  // Keeps snapshots stable (no 0.30000000000000004 flapping) and > 0.
  return Math.max(Math.round(weight * 10_000) / 10_000, 0.0001);
}

function minTtl(ttls: Array<number | undefined>): number | undefined {
  let min: number | undefined;
  for (const ttl of ttls) if (ttl !== undefined && (min === undefined || ttl < min)) min = ttl;
  return min;
}

/**
 * Asks the nameservers one cheap question (the SOA of the domain, or the
 * name of a service that does not exist) and resolves when they answered,
 * "no such name" included; rejects with the reason when they did not.
 *
 * @example
 * await probeNameservers(resolver, settings);
 */
export async function probeNameservers(
  lookup: Pick<dns.Resolver, 'resolveSoa' | 'resolveSrv'>,
  settings: DnsSettings,
): Promise<void> {
  if (settings.mode === 'static') return;
  const name = settings.domain ?? queryName(settings, 'switchyard-probe');
  try {
    if (settings.domain) await lookup.resolveSoa(name);
    else await lookup.resolveSrv(name);
  } catch (error) {
    if (!isNegative(error)) throw new Error(`DNS query for ${name} failed: ${codeOf(error)}`, { cause: error });
  }
}

function isNegative(error: unknown): boolean {
  return NEGATIVE_CODES.has(codeOf(error));
}

function codeOf(error: unknown): string {
  return (error as NodeJS.ErrnoException)?.code ?? String((error as Error)?.message ?? error);
}
