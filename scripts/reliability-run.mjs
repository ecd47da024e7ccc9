#!/usr/bin/env node
// `npm run reliability`: one full run of the reliability suites on a clean
// tree, then RELIABILITY.md rendered from that run alone.
//   1. refuses a working tree with uncommitted or untracked changes (the
//      table must describe a commit), and names the commit and a run id;
//   2. clears test-artifacts/reliability, builds dist/;
//   3. runs test/faults, test/fuzz and test/security, then the soak, every
//      result line stamped with the run id and commit (environment);
//   4. refuses to render when HEAD or the tree changed meanwhile;
//   5. renders RELIABILITY.md (scripts/reliability-table.mjs --run <id>).
// Exit: 0 when every suite and every row passed; 1 when a suite or a row
// failed (RELIABILITY.md shows which); 2 when nothing could be rendered.
import { execFileSync, spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';

const ROOT = join(import.meta.dirname, '..');
const git = (...args) => execFileSync('git', args, { cwd: ROOT, encoding: 'utf8' }).trim();

function treeChanges() {
  return git('status', '--porcelain');
}

function step(what, command, args, env = {}) {
  console.log(`\n[reliability] ${what}: ${command} ${args.join(' ')}`);
  const result = spawnSync(command, args, { cwd: ROOT, stdio: 'inherit', env: { ...process.env, ...env } });
  if (result.error) throw result.error;
  return result.status ?? 1;
}

const changes = treeChanges();
if (changes) {
  console.error(
    `[reliability] refused: the working tree has changes, so the table could not say which code it measured.\n${changes}\nCommit or stash them, then run again.`,
  );
  process.exit(2);
}
const commit = git('rev-parse', 'HEAD');
const run = `${new Date().toISOString().replace(/[:.]/g, '-')}-${commit.slice(0, 7)}`;
const stamp = {
  SWITCHYARD_RELIABILITY_RUN: run,
  SWITCHYARD_RELIABILITY_COMMIT: commit,
  SWITCHYARD_RELIABILITY_DIRTY: '0',
};
console.log(`[reliability] run ${run} at ${commit}`);
rmSync(join(ROOT, 'test-artifacts/reliability'), { recursive: true, force: true });

const npx = process.platform === 'win32' ? 'npx.cmd' : 'npx';
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
let failed = step('build', npm, ['run', 'build']) !== 0;
if (failed) {
  console.error('[reliability] the build failed: nothing was measured');
  process.exit(1);
}
failed =
  step('faults, fuzz, security', npx, ['vitest', 'run', 'test/faults', 'test/fuzz', 'test/security'], stamp) !== 0 ||
  failed;
failed = step('soak', npx, ['vitest', 'run', '--config', 'vitest.soak.config.ts'], stamp) !== 0 || failed;

if (git('rev-parse', 'HEAD') !== commit || treeChanges()) {
  console.error(
    `[reliability] refused to render: HEAD or the working tree changed during the run (it started at ${commit}); run again.`,
  );
  process.exit(2);
}
const rendered = step('render', process.execPath, [join(ROOT, 'scripts/reliability-table.mjs'), '--run', run]);
if (rendered === 2) process.exit(2);
process.exit(failed || rendered !== 0 ? 1 : 0);
