#!/usr/bin/env node
// `npm run lint:package`: lints the tarball users install, not the work tree.
// Builds and packs once (the prepack build, run first so npm's JSON answer is
// the only output of npm pack), then
//  - @arethetypeswrong/cli: every entry point's types resolve, and match the
//    JavaScript beside them, for node16 and bundler resolution from CommonJS
//    and from ESM (the `node16` profile leaves out node10, which resolves no
//    subpath such as 'switchyard/testing' and which TypeScript 6 deprecates);
//  - publint --strict: the manifest (exports, files, bin) points at files the
//    tarball holds, in the format their extension and "type" say.
// Exits non-zero when either finds a problem.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const ROOT = join(import.meta.dirname, '..');
const bin = (name) => join(ROOT, 'node_modules', '.bin', name);
const out = mkdtempSync(join(tmpdir(), 'switchyard-lint-package-'));
try {
  execFileSync(process.execPath, [join(ROOT, 'scripts/build.mjs'), '--package'], { stdio: 'inherit' });
  const [packed] = JSON.parse(
    execFileSync('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', out], {
      cwd: ROOT,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    }),
  );
  const tarball = join(out, packed.filename);
  console.log(
    `${packed.filename}: ${packed.entryCount} files, ${(packed.size / 1024).toFixed(0)} KiB packed, ${(packed.unpackedSize / 1024).toFixed(0)} KiB unpacked`,
  );
  execFileSync(bin('attw'), [tarball, '--profile', 'node16'], { stdio: 'inherit' });
  execFileSync(bin('publint'), ['run', tarball, '--strict'], { stdio: 'inherit' });
} catch (error) {
  console.error(`lint:package failed: ${error.message.split('\n')[0]}`);
  process.exitCode = 1;
} finally {
  rmSync(out, { recursive: true, force: true });
}
