import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { describeHttpApps } from './support/http-scenarios.js';

// Three Nest HTTP apps per platform, each in its own process, on the embedded `local` backend.
const dir = mkdtempSync(join(tmpdir(), 'switchyard-http-local-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

for (const platform of ['express', 'fastify'] as const) {
  describeHttpApps(platform, () => ({
    name: 'local',
    options: { backend: 'local', backendConfig: { dir: join(dir, platform) } },
  }));
}
