// A CPU profile of part of a benchmark process, written where the caller says
// (open it in Chrome's DevTools or VS Code).
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';

/**
 * Starts profiling this process; `stop(file)` writes the profile to `file`.
 *
 * @example
 * const profiler = await startCpuProfile(); ...; await profiler.stop('/tmp/churn.cpuprofile');
 */
export async function startCpuProfile() {
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.start');
  return {
    async stop(file) {
      const { profile } = await session.post('Profiler.stop');
      writeFileSync(file, JSON.stringify(profile));
      session.disconnect();
    },
  };
}
