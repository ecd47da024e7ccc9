#!/usr/bin/env bash
# Fetches Debian 13's etcd-server package (etcd 3.5.16, a static binary) and
# unpacks it, without installing it, into <repo>/.peers/etcd-3.5
# (git-ignored), with fetch-debian-package.sh. The suite also tests etcd
# 3.4.23, Debian 12's own package (install-etcd.sh); test/support/peers/etcd.ts
# picks the version with SWITCHYARD_ETCD_VERSION. etcdctl stays the 3.4 one:
# the v3 API the tests use is the same.
# Idempotent: a cached, runnable binary is kept. Fails loudly otherwise.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cache="$root/.peers/etcd-3.5"
bin="$cache/usr/bin/etcd"

mkdir -p "$root/.peers"
exec 9>"$root/.peers/etcd-3.5.lock"
flock 9

# The version is read into a variable before grep looks at it: with pipefail,
# `etcd --version | grep -q` fails when grep exits at the first line and etcd,
# still writing, gets SIGPIPE (it did so on CI).
runs_as_3_5() {
  local version
  version="$("$bin" --version 2>/dev/null || true)"
  grep -q '^etcd Version: 3\.5\.' <<<"$version"
}

if [ -x "$bin" ] && runs_as_3_5; then
  echo "etcd 3.5 already cached: $("$bin" --version | sed -n 1p) at $bin"
  exit 0
fi

bash "$here/fetch-debian-package.sh" trixie etcd-server "$cache"

if ! runs_as_3_5; then
  echo "install-etcd-3.5: unpacked binary at $bin does not run as etcd 3.5: $("$bin" --version 2>&1 | sed -n 1p)" >&2
  exit 1
fi
echo "etcd 3.5 installed: $("$bin" --version | sed -n 1p) at $bin"
