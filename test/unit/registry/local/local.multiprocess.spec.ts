import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Subscription } from 'rxjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RegistrationError } from '../../../../lib/core/errors.js';
import { createServiceInstance } from '../../../../lib/core/service-instance.js';
import { LocalRegistry } from '../../../../lib/registry/local/local.registry.js';
import { PeerProcess } from '../../../support/peers/peer-process.js';
import { waitFor } from '../../../support/wait-for.js';
import { collect, hasExactly, recordingLogger } from './local-test-kit.js';

// The child runs the compiled library: `npm test` builds it first.
const CHILD_SCRIPT = join(import.meta.dirname, '../../../support/local-child/register-instance.mjs');
const COMPILED = join(import.meta.dirname, '../../../../dist/registry/local/local.registry.js');

const TTL_MS = 2_000;
const HEARTBEAT_MS = 500;

let dir: string;
const children: PeerProcess[] = [];
const registries: LocalRegistry[] = [];
const subscriptions: Subscription[] = [];

/** Starts a process that registers `id` in the shared folder; resolves once it has. */
async function startChild(id: string, port: number): Promise<PeerProcess> {
  const spec = { dir, service: 'orders', id, address: `127.0.0.1:${port}`, ttlMs: TTL_MS, heartbeatMs: HEARTBEAT_MS };
  const child: PeerProcess = new PeerProcess({
    name: `local-child ${id}`,
    command: process.execPath,
    args: [CHILD_SCRIPT, JSON.stringify(spec)],
    ready: async () => child.log.includes(`REGISTERED ${id}`),
    readyTimeoutMs: 20_000,
  });
  children.push(child);
  return child.start();
}

function registry(): LocalRegistry {
  const r = new LocalRegistry({ dir, logger: recordingLogger() });
  registries.push(r);
  return r;
}

beforeAll(async () => {
  if (!existsSync(COMPILED)) {
    throw new Error(`${COMPILED} is missing: run "npm run build" (npm test does) before these multi-process tests`);
  }
  dir = await mkdtemp(join(tmpdir(), 'switchyard-local-mp-'));
});

afterAll(async () => {
  for (const s of subscriptions.splice(0)) s.unsubscribe();
  await Promise.all(registries.splice(0).map((r) => r.close()));
  await Promise.all(children.splice(0).map((c) => c.stop()));
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('LocalRegistry shared by several processes', () => {
  it('serves instances registered by other processes, drops a SIGKILLed one once its TTL ran out, and a stopped one by deregistration', async () => {
    const watch = registry().watch({ service: 'orders' });
    const watcher = collect(watch, subscriptions);
    // When the killed child left the set, by this process's clock (the registry's expiry uses the same clock).
    let killedDroppedAt: number | undefined;
    subscriptions.push(
      watch.subscribe((set) => {
        if (killedDroppedAt === undefined && set.resolved && !set.instances.some((i) => i.id === 'killed'))
          killedDroppedAt = Date.now();
        if (set.instances.some((i) => i.id === 'killed')) killedDroppedAt = undefined;
      }),
    );
    const [killed, stopped] = await Promise.all([startChild('killed', 7101), startChild('stopped', 7102)]);
    await waitFor(() => hasExactly(watcher, ['killed', 'stopped']), { timeoutMs: 5_000, what: 'both children' });

    // Two processes with the same live id: the second one is refused, naming the holder.
    const duplicate = registry().register(
      createServiceInstance({ service: 'orders', id: 'killed', address: '127.0.0.1:7199' }),
      { ttlMs: TTL_MS, heartbeatMs: HEARTBEAT_MS },
    );
    await expect(duplicate).rejects.toThrow(RegistrationError);
    await expect(duplicate).rejects.toThrow(
      new RegExp(`'killed' is already registered by a live instance .*pid ${killed.pid}`),
    );

    killed.signal('SIGKILL');
    await killed.waitForExit();
    // Its file stays behind (a crash deregisters nothing) and says when it expires: the last heartbeat plus the TTL.
    const file = JSON.parse(readFileSync(join(dir, 'default', 'orders', 'killed.json'), 'utf8')) as {
      heartbeat_at: number;
      ttl_ms: number;
    };
    expect(file.ttl_ms).toBe(TTL_MS);
    // Patience, not a claim about speed: twice the TTL plus a loaded machine.
    await waitFor(() => hasExactly(watcher, ['stopped']), {
      timeoutMs: 2 * TTL_MS + 5_000,
      what: 'the killed child to expire',
    });
    expect(watcher.last()!.diff.removed.map((e) => e.instance.id)).toEqual(['killed']);
    // Dropped because its TTL ran out, not before.
    expect(killedDroppedAt).toBeGreaterThanOrEqual(file.heartbeat_at + file.ttl_ms);

    // A clean stop deregisters: the file is gone by the time the process has exited, long before any TTL.
    await stopped.stop();
    expect(existsSync(join(dir, 'default', 'orders', 'stopped.json'))).toBe(false);
    await waitFor(() => watcher.last()?.state === 'empty', { what: 'the stopped child to deregister' });

    // The id of the killed child is free again once expired.
    const reclaimed = await registry().register(
      createServiceInstance({ service: 'orders', id: 'killed', address: '127.0.0.1:7199' }),
      { ttlMs: TTL_MS, heartbeatMs: HEARTBEAT_MS },
    );
    await waitFor(() => hasExactly(watcher, ['killed']), { timeoutMs: 5_000 });
    expect(watcher.last()!.instances[0].address).toBe('127.0.0.1:7199');
    await reclaimed.deregister();
  });

  it('refuses, in a child process, an id this process holds', async () => {
    await registry().register(
      createServiceInstance({ service: 'orders', id: 'parent-held', address: '127.0.0.1:7201' }),
      { ttlMs: TTL_MS, heartbeatMs: HEARTBEAT_MS },
    );
    const error = await startChild('parent-held', 7202).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(error?.message).toMatch(
      new RegExp(
        `REGISTER-FAILED RegistrationError: Instance id 'parent-held' is already registered .*pid ${process.pid}`,
      ),
    );
  });
});
