import type { Endpoint } from '../../core/endpoint.js';
import type { EndpointSet, EndpointSetState } from '../../core/endpoint-set.js';
import { EXIT_OK } from '../cli-errors.js';
import { describeInstance, instanceView } from '../cli-output.js';
import type { CliSession } from '../cli-session.js';
import { onInterrupt } from '../interrupt.js';

type Change = 'added' | 'removed' | 'updated';

/**
 * `switchyard watch <service>`: one line per change (an instance added,
 * removed or updated; the set's state moving between ok / stale / empty)
 * until Ctrl-C, which closes the watch and exits 0.
 *
 * @example
 * await watchCommand(session); // switchyard watch orders --json
 */
export async function watchCommand(session: CliSession): Promise<number> {
  const { out } = session;
  const service = session.invocation.args[0];
  const query = session.query(service);
  const interrupt = onInterrupt();
  let previous: EndpointSetState | 'pending' = 'pending';

  const print = (event: Change, endpoint: Endpoint, set: EndpointSet) => {
    const at = new Date().toISOString();
    if (out.options.json)
      out.json(
        { at, service, event, revision: set.revision, state: set.state, instance: instanceView(endpoint.instance) },
        true,
      );
    else out.line(`${at} ${service} ${event} ${describeInstance(endpoint.instance)}`);
  };
  const printState = (set: EndpointSet) => {
    const at = new Date().toISOString();
    if (out.options.json) {
      out.json(
        {
          at,
          service,
          event: 'state',
          revision: set.revision,
          from: previous,
          to: set.state,
          reason: set.reason ?? null,
          instances: set.size,
        },
        true,
      );
    } else {
      const why = set.reason ? `: ${set.reason}` : '';
      out.line(
        `${at} ${service} state ${previous} -> ${set.state}${why} (${set.size} instance${set.size === 1 ? '' : 's'})`,
      );
    }
    previous = set.state;
  };

  let ended!: () => void;
  const completed = new Promise<void>((resolve) => (ended = resolve));
  out.error(`watching '${service}' in namespace '${session.namespace}' (${session.where}); Ctrl-C to stop`);
  const subscription = session.registry.watch(query).subscribe({
    next: (set) => {
      if (previous === 'pending') {
        printState(set);
        for (const endpoint of set.endpoints) print('added', endpoint, set);
        return;
      }
      for (const endpoint of set.diff.removed) print('removed', endpoint, set);
      for (const endpoint of set.diff.added) print('added', endpoint, set);
      for (const endpoint of set.diff.updated) print('updated', endpoint, set);
      if (set.state !== previous) printState(set);
    },
    complete: () => ended(),
    error: () => ended(),
  });
  try {
    await Promise.race([interrupt.signalled, completed]);
  } finally {
    subscription.unsubscribe();
    interrupt.dispose();
  }
  out.error(`stopped watching '${service}'`);
  return EXIT_OK;
}
