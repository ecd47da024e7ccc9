#!/usr/bin/env node
// Restores lock entries for @swc/core's other-platform binaries.
//
// This machine's npm registry serves only the Linux builds of @swc/core's
// optional platform packages, so `npm install` leaves the others out of
// package-lock.json, and `npm ci` then refuses the lock as out of sync. The
// entries below (version, os, cpu; no download address) make the lock whole;
// npm ci skips them on Linux. Run after any `npm install` that rewrites the lock:
//   node scripts/fix-lockfile-platforms.mjs
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const LOCK_PATH = join(import.meta.dirname, '..', 'package-lock.json');

/** @swc/core-<suffix> -> [os, cpu, libc] */
const PLATFORMS = {
  'darwin-arm64': ['darwin', 'arm64'],
  'darwin-x64': ['darwin', 'x64'],
  'linux-arm-gnueabihf': ['linux', 'arm'],
  'linux-arm64-gnu': ['linux', 'arm64', 'glibc'],
  'linux-arm64-musl': ['linux', 'arm64', 'musl'],
  'linux-ppc64-gnu': ['linux', 'ppc64', 'glibc'],
  'linux-s390x-gnu': ['linux', 's390x', 'glibc'],
  'linux-x64-gnu': ['linux', 'x64', 'glibc'],
  'linux-x64-musl': ['linux', 'x64', 'musl'],
  'win32-arm64-msvc': ['win32', 'arm64'],
  'win32-ia32-msvc': ['win32', 'ia32'],
  'win32-x64-msvc': ['win32', 'x64'],
};

const lock = JSON.parse(readFileSync(LOCK_PATH, 'utf8'));
const packages = lock.packages;
const core = packages['node_modules/@swc/core'];
if (!core) {
  console.error('no @swc/core in the lock; nothing to do');
  process.exit(1);
}

const added = [];
for (const [name, version] of Object.entries(core.optionalDependencies ?? {})) {
  const key = `node_modules/${name}`;
  if (key in packages) continue;
  const suffix = name.split('/core-')[1];
  const platform = PLATFORMS[suffix];
  if (!platform) throw new Error(`unknown @swc/core platform package ${name}: add it to PLATFORMS`);
  const [os, cpu, libc] = platform;
  // Key order as npm writes it, so a later `npm install` leaves the entry unchanged.
  packages[key] = {
    version,
    cpu: [cpu],
    dev: true,
    ...(libc ? { libc: [libc] } : {}),
    license: 'Apache-2.0 AND MIT',
    optional: true,
    os: [os],
    engines: { node: '>=10' },
  };
  added.push(name);
}

// The root entry ('') first, then by path, as npm sorts them.
lock.packages = Object.fromEntries(
  Object.entries(packages).sort(([a], [b]) => (a === '' ? -1 : b === '' ? 1 : a < b ? -1 : a > b ? 1 : 0)),
);
writeFileSync(LOCK_PATH, `${JSON.stringify(lock, null, 2)}\n`);
console.log(`added: ${added.join(', ') || 'nothing'}`);
