#!/usr/bin/env bash
# Fetches Debian 11's consul package (1.8.7) and unpacks it, without
# installing it, into <repo>/.peers/consul (git-ignored), with
# fetch-debian-package.sh. Idempotent: a cached, runnable binary is kept.
# Fails loudly (non-zero exit) when the binary cannot be obtained.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cache="$root/.peers/consul"
bin="$cache/usr/bin/consul"

# Test files may start in parallel on a fresh machine: one installs, the others wait.
mkdir -p "$root/.peers"
exec 9>"$root/.peers/consul.lock"
flock 9

if [ -x "$bin" ] && "$bin" version >/dev/null 2>&1; then
  echo "consul already cached: $("$bin" version | sed -n 1p) at $bin"
  exit 0
fi

bash "$here/fetch-debian-package.sh" bullseye consul "$cache"

if ! "$bin" version >/dev/null 2>&1; then
  echo "install-consul: unpacked binary at $bin does not run" >&2
  exit 1
fi
echo "consul installed: $("$bin" version | sed -n 1p) at $bin"
