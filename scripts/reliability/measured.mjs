// What a reliability result measured, as a short text for a table cell.

const pct = (share) => `${(share * 100).toFixed(share < 0.001 && share > 0 ? 2 : 1)} %`;

/** A few measured numbers, readable in a table cell. */
export function measured(details = {}) {
  const parts = [];
  if (details.calls !== undefined)
    parts.push(
      `${details.calls} calls, ${details.failed} failed${details.skipped !== undefined ? `, ${details.skipped} never made (skipped by the load generator)` : ''}`,
    );
  const w = details.faultWindow;
  if (w)
    parts.push(
      `fault window ${w.windowMs} ms: ${w.skipped} of ${w.scheduled} due calls skipped (${pct(w.skippedShare)})`,
    );
  if (details.withoutRetries)
    parts.push(`without retries: ${details.withoutRetries.failed} of ${details.withoutRetries.calls} failed`);
  if (details.leftRegistryAfterMs !== undefined)
    parts.push(`left the registry ${details.leftRegistryAfterMs} ms after SIGKILL`);
  if (details.leftClientSetAfterMs !== undefined)
    parts.push(`ejected by the client after ${details.leftClientSetAfterMs} ms`);
  if (details.listedAfterExit)
    parts.push(
      `listed by a registry read after its process exited: ${Object.values(details.listedAfterExit).filter(Boolean).length} of ${Object.keys(details.listedAfterExit).length}`,
    );
  if (details.convergedAfterMs !== undefined)
    parts.push(`converged ${details.convergedAfterMs} ms after the registry came up`);
  if (details.staleAfterMs !== undefined) parts.push(`stale after ${details.staleAfterMs} ms`);
  if (details.recoveredAfterMs !== undefined) parts.push(`recovered ${details.recoveredAfterMs} ms after SIGCONT`);
  if (details.reconnectAttempts !== undefined)
    parts.push(
      `${details.reconnectAttempts} reconnect attempts while down, at most ${details.maxReconnectGapMs} ms apart`,
    );
  if (details.answeredAfterMs !== undefined) parts.push(`answered ${details.answeredAfterMs} ms after the restart`);
  if (details.clientSetChanges !== undefined)
    parts.push(
      `client set changed ${details.clientSetChanges} times, the registry's ${details.registrySetChanges} times`,
    );
  if (details.panicEvents !== undefined) parts.push(`${details.panicEvents} panic events (entered and left)`);
  if (details.healthReport)
    parts.push(
      `health report: empty "${details.healthReport.empty}", unreachable "${String(details.healthReport.unreachable ?? '').slice(0, 60)}"`,
    );
  if (details.staleSets !== undefined)
    parts.push(`${details.staleSets} stale / ${details.emptySets} empty sets during the restart`);
  if (details.unreachableReason)
    parts.push(
      `unreachable reason: "${details.unreachableReason.slice(0, 90)}${details.unreachableReason.length > 90 ? '…' : ''}"`,
    );
  if (details.runs !== undefined) parts.push(`${details.runs} runs`);
  if (details.decoded !== undefined) parts.push(`${details.decoded} decoded`);
  for (const counts of [details.counts, details.kinds])
    if (counts)
      parts.push(
        Object.entries(counts)
          .map(([k, v]) => `${v} ${k}`)
          .join(', '),
      );
  if (details.picks !== undefined) parts.push(`${details.picks} picks`);
  return parts.join('; ');
}
