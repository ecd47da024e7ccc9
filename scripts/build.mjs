#!/usr/bin/env node
// Builds dist/ from lib/: the ES modules and their types with TypeScript,
// then the CommonJS face of the package.
//
// ESM is the only runtime code. A CommonJS app's require('switchyard') gets
// dist/cjs/<entry>.js, one line that require()s the ES module (Node >= 20.19
// and >= 22.12 load ES modules without top-level await that way, sharing
// one instance with import). What CommonJS needs besides is types that
// TypeScript reads as CommonJS: under node16/nodenext resolution a CommonJS
// file may not import an ESM declaration file, so dist/cjs/ holds a copy of
// every declaration file and a package.json saying "commonjs". The entries
// come from the exports map: each `require` condition names its wrapper, and
// the `import` condition beside it the module it loads.
//
// Usage: node scripts/build.mjs             development build (incremental, with source maps)
//        node scripts/build.mjs --package   what the tarball ships (npm pack runs it as prepack):
//                                           dist/ rebuilt from scratch, so no file of a moved or deleted
//                                           module is shipped, and without source maps (they point at
//                                           lib/*.ts, which is not shipped; see CONTRIBUTING.md)
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';

const ROOT = join(import.meta.dirname, '..');
const DIST = join(ROOT, 'dist');
const CJS = join(DIST, 'cjs');
const forPackage = process.argv.includes('--package');

if (forPackage) rmSync(DIST, { recursive: true, force: true });
const tsc = join(dirname(createRequire(import.meta.url).resolve('typescript/package.json')), 'bin', 'tsc');
execFileSync(
  process.execPath,
  [tsc, '-p', join(ROOT, 'tsconfig.build.json'), ...(forPackage ? ['--sourceMap', 'false'] : [])],
  { stdio: 'inherit' },
);

/** Declaration files under `dir`, as paths relative to it. */
function declarations(dir, base = dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return path === CJS ? [] : declarations(path, base);
    return entry.name.endsWith('.d.ts') ? [relative(base, path)] : [];
  });
}

rmSync(CJS, { recursive: true, force: true });
mkdirSync(CJS, { recursive: true });
writeFileSync(join(CJS, 'package.json'), `${JSON.stringify({ type: 'commonjs' }, null, 2)}\n`);
const typeFiles = declarations(DIST);
for (const file of typeFiles) {
  mkdirSync(dirname(join(CJS, file)), { recursive: true });
  copyFileSync(join(DIST, file), join(CJS, file));
}

const manifest = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
const wrappers = [];
for (const [subpath, target] of Object.entries(manifest.exports)) {
  const wrapper = target?.require?.default;
  const esm = target?.import?.default;
  if (!wrapper) continue;
  if (!esm) throw new Error(`exports['${subpath}'] has a require condition but no import condition to load`);
  const from = join(ROOT, wrapper);
  let specifier = relative(dirname(from), join(ROOT, esm));
  if (!specifier.startsWith('.')) specifier = `./${specifier}`;
  writeFileSync(
    from,
    `'use strict';\n// CommonJS entry of '${join(manifest.name, subpath)}': the ES module itself (see scripts/build.mjs).\nmodule.exports = require('${specifier}');\n`,
  );
  wrappers.push(relative(ROOT, from));
}
console.log(
  `dist/: ${forPackage ? 'clean build without source maps' : 'built'}; dist/cjs/: ${typeFiles.length} declaration files, entries ${wrappers.join(', ')}`,
);
