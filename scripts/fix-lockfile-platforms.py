#!/usr/bin/env python3
"""Restores lock entries for @swc/core's other-platform binaries.

This machine's npm registry serves only the Linux builds of @swc/core's
optional platform packages, so `npm install` leaves the others out of
package-lock.json, and `npm ci` then refuses the lock as out of sync. The
entries below (version, os, cpu; no download address) make the lock whole;
npm ci skips them on Linux. Run after any `npm install` that rewrites the lock.
"""
import collections
import json
import pathlib

lock_path = pathlib.Path(__file__).resolve().parent.parent / 'package-lock.json'
lock = json.loads(lock_path.read_text(), object_pairs_hook=collections.OrderedDict)
packages = lock['packages']
core = packages.get('node_modules/@swc/core')
if core is None:
    raise SystemExit('no @swc/core in the lock; nothing to do')
platforms = {
    'darwin-arm64': ('darwin', 'arm64', None), 'darwin-x64': ('darwin', 'x64', None),
    'linux-arm-gnueabihf': ('linux', 'arm', None), 'linux-arm64-gnu': ('linux', 'arm64', 'glibc'),
    'linux-arm64-musl': ('linux', 'arm64', 'musl'), 'linux-ppc64-gnu': ('linux', 'ppc64', 'glibc'),
    'linux-s390x-gnu': ('linux', 's390x', 'glibc'), 'linux-x64-gnu': ('linux', 'x64', 'glibc'),
    'linux-x64-musl': ('linux', 'x64', 'musl'), 'win32-arm64-msvc': ('win32', 'arm64', None),
    'win32-ia32-msvc': ('win32', 'ia32', None), 'win32-x64-msvc': ('win32', 'x64', None),
}
added = []
for name, version in core.get('optionalDependencies', {}).items():
    key = f'node_modules/{name}'
    if key in packages:
        continue
    suffix = name.split('/core-', 1)[1]
    os_, cpu, libc = platforms[suffix]
    entry = collections.OrderedDict([('version', version), ('cpu', [cpu]), ('dev', True)])
    if libc:
        entry['libc'] = [libc]
    entry.update([('license', 'Apache-2.0 AND MIT'), ('optional', True), ('os', [os_]), ('engines', {'node': '>=10'})])
    packages[key] = entry
    added.append(name)
lock['packages'] = collections.OrderedDict(sorted(packages.items(), key=lambda kv: (kv[0] != '', kv[0])))
lock_path.write_text(json.dumps(lock, indent=2) + '\n')
print('added:', ', '.join(added) or 'nothing')
