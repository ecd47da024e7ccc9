import { firstValueFrom } from 'rxjs';
import type { EndpointSet } from '../../core/endpoint-set.js';
import { receivesTraffic, type ServiceInstance } from '../../core/service-instance.js';
import type { UnservedInstance } from '../admin/registry-admin.js';
import { CommandFailure, EXIT_OK, EXIT_USAGE, withDeadline } from '../cli-errors.js';
import { describeSetState, formatTable, instanceView } from '../cli-output.js';
import type { CliSession } from '../cli-session.js';

/**
 * `switchyard ls [service]`: the services of the namespace, or one
 * service's instances as clients see them (plus, where the backend can
 * tell, registered instances it does not serve). An instance the registry
 * lists but clients never pick (weight 0: drained; `healthy: false`) shows
 * as such, with `served: false` in JSON.
 *
 * @example
 * await listCommand(session); // switchyard ls orders --json
 */
export async function listCommand(session: CliSession): Promise<number> {
  const service = session.invocation.args[0];
  return service === undefined ? listServices(session) : listInstances(session, service);
}

async function listServices(session: CliSession): Promise<number> {
  const { admin, out, namespace } = session;
  if (!admin.listServices) {
    throw new CommandFailure(
      `the ${admin.backend} backend cannot list its services: name one (switchyard ls <service>)`,
      EXIT_USAGE,
    );
  }
  const services = await admin.listServices(namespace);
  if (out.options.json) {
    out.json({ backend: admin.backend, target: admin.target, namespace, services });
    return EXIT_OK;
  }
  if (services.length === 0) {
    out.line(`no services in namespace '${namespace}' (${session.where})`);
    return EXIT_OK;
  }
  out.line(
    formatTable(
      ['SERVICE', 'INSTANCES'],
      services.map((s) => [s.name, String(s.instances)]),
    ),
  );
  return EXIT_OK;
}

async function listInstances(session: CliSession, service: string): Promise<number> {
  const { out, namespace, admin } = session;
  const query = session.query(service);
  const set: EndpointSet = await withDeadline(
    firstValueFrom(session.registry.watch(query)),
    session.timeoutMs,
    `list '${service}' in ${session.where}`,
  );
  if (set.state === 'stale' && set.size === 0) {
    throw new CommandFailure(`cannot list '${service}': ${set.reason ?? `${session.where} is unreachable`}`);
  }
  const unserved: UnservedInstance[] = admin.unservedInstances
    ? await admin.unservedInstances(service, namespace).catch(() => [])
    : [];
  // A failing instance the registry does serve (possible with server-side filters) is listed once.
  const served = new Set(set.instances.map((i) => i.id));
  const others = unserved.filter((u) => !served.has(u.instance.id));
  if (out.options.json) {
    out.json({
      service,
      namespace,
      backend: admin.backend,
      target: admin.target,
      state: set.state,
      reason: set.reason ?? null,
      revision: set.revision,
      instances: set.instances.map((i) => ({ ...instanceView(i), served: receivesTraffic(i) })),
      unserved: others.map((u) => ({ ...instanceView(u.instance), served: false, reason: u.reason })),
    });
    return EXIT_OK;
  }
  out.line(`${service} (namespace '${namespace}', ${session.where}): ${describeSetState(set)}`);
  const rows = [...set.instances.map((i) => row(i, 'yes')), ...others.map((u) => row(u.instance, `no (${u.reason})`))];
  if (rows.length) out.line(formatTable(['ID', 'ADDRESS', 'VERSION', 'ZONE', 'WEIGHT', 'HEALTHY'], rows));
  return EXIT_OK;
}

function row(instance: ServiceInstance, healthy: string): string[] {
  const listed = healthy === 'yes';
  return [
    instance.id,
    instance.address,
    instance.version || '-',
    instance.metadata.zone ?? '-',
    String(instance.weight),
    listed && !instance.healthy ? 'no' : listed && instance.weight === 0 ? 'drained (weight 0)' : healthy,
  ];
}
