import { CommandFailure, EXIT_OK, EXIT_USAGE } from '../cli-errors.js';
import type { CliSession } from '../cli-session.js';

/**
 * `switchyard deregister <id> [--name <service>]`: removes an instance by
 * id (etcd: its key; consul: through the agent; local: its file). Exits 1
 * when no such instance exists.
 *
 * @example
 * await deregisterCommand(session); // switchyard deregister orders-7f3a --name orders
 */
export async function deregisterCommand(session: CliSession): Promise<number> {
  const { admin, out, namespace } = session;
  const id = session.invocation.args[0];
  const service = session.invocation.options.name;
  if (!admin.deregister) {
    throw new CommandFailure(
      `the ${admin.backend} backend has no instances to deregister (it is read-only)`,
      EXIT_USAGE,
    );
  }
  const removed = await admin.deregister(id, namespace, service);
  if (removed.length === 0) {
    const of = service ? ` of service '${service}'` : '';
    throw new CommandFailure(
      `no instance '${id}'${of} in namespace '${namespace}' (${session.where}): nothing removed`,
    );
  }
  if (out.options.json) {
    out.json({ backend: admin.backend, target: admin.target, namespace, removed });
    return EXIT_OK;
  }
  for (const r of removed) {
    const held = r.heldBy
      ? ` (still held by ${r.heldBy}: a running instance registers it again at its next heartbeat)`
      : '';
    out.line(`deregistered ${r.id}${r.service ? ` of service '${r.service}'` : ''}: removed ${r.where}${held}`);
  }
  return EXIT_OK;
}
