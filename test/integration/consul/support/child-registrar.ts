import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { ServiceInstanceInput } from '../../../../lib/core/service-instance.js';
import type { RegistrationTiming } from '../../../../lib/registry/registry.interface.js';
import { PeerProcess } from '../../../support/peers/peer-process.js';

const ROOT = join(import.meta.dirname, '../../../..');
const BUILT_ENTRY = join(ROOT, 'dist/registry/consul/consul.registry.js');
const CHILD_SCRIPT = join(import.meta.dirname, 'register-child.mjs');

/** Fails with a clear message when dist/ was not built (`npm test` builds it first). */
export function assertBuilt(): void {
  if (!existsSync(BUILT_ENTRY)) {
    throw new Error(
      `${BUILT_ENTRY} is missing: run \`npx tsc -p tsconfig.build.json\` (npm test builds before running)`,
    );
  }
}

/**
 * Starts a child process that registers `instance` with the agent at `url`
 * through the built backend; ready once it printed REGISTERED. Stop it with
 * `stop()` (SIGTERM: it deregisters first), stall it with `signal('SIGSTOP')`.
 */
export async function startChildRegistrar(
  url: string,
  instance: ServiceInstanceInput,
  timing: RegistrationTiming,
): Promise<PeerProcess> {
  assertBuilt();
  const peer: PeerProcess = new PeerProcess({
    name: `consul registrar ${instance.id ?? instance.service}`,
    command: process.execPath,
    args: [CHILD_SCRIPT],
    env: { SWITCHYARD_CHILD: JSON.stringify({ url, instance, timing }) },
    ready: async () => peer.log.includes('REGISTERED'),
    readyTimeoutMs: 15_000,
  });
  return peer.start();
}
