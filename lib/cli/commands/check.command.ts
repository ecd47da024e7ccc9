import type { CheckResult } from '../admin/registry-admin.js';
import { CommandFailure, EXIT_FAILURE, EXIT_OK, formatSeconds, withDeadline } from '../cli-errors.js';
import type { CliSession } from '../cli-session.js';

/**
 * `switchyard check [service]`: can the registry be reached, and does it
 * let us in? Prints one clear sentence (or a JSON document) and exits 1
 * when not.
 *
 * @example
 * await checkCommand(session); // switchyard check --backend etcd --endpoints http://10.0.0.2:2379
 */
export async function checkCommand(session: CliSession): Promise<number> {
  const { admin, out, namespace } = session;
  let result: CheckResult;
  try {
    result = await withDeadline(admin.check(namespace, session.invocation.args[0]), session.timeoutMs, session.where);
  } catch (error) {
    if (!(error instanceof CommandFailure)) throw error;
    // Only the deadline lands here: a registry that neither answers nor refuses.
    const reason = `no answer within ${formatSeconds(session.timeoutMs)}`;
    result = { ok: false, message: `${session.where} is unreachable: ${reason}`, detail: { reachable: false, reason } };
  }
  if (out.options.json) {
    out.json({
      ok: result.ok,
      backend: admin.backend,
      target: admin.target,
      namespace,
      message: result.message,
      ...result.detail,
    });
  } else if (result.ok) {
    out.line(`ok: ${result.message}`);
  } else {
    out.error(`failed: ${result.message}`);
  }
  return result.ok ? EXIT_OK : EXIT_FAILURE;
}
