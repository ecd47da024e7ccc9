#!/usr/bin/env bash
# Fetches Debian 12's kubernetes-client package (kubectl 1.20) and unpacks
# it, without installing it, into <repo>/.peers/kubernetes-client
# (git-ignored), with fetch-debian-package.sh. The Kubernetes backend's tests
# use this kubectl to prove the test API server honest. Unpacked rather than
# installed: machine images often carry another package that owns
# /usr/bin/kubectl (dpkg would refuse to overwrite it), and the tests want
# Debian's client, not whichever one is on PATH. Idempotent: a cached,
# runnable binary is kept. Fails loudly (non-zero exit) when it cannot be had.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cache="$root/.peers/kubernetes-client"
bin="$cache/usr/bin/kubectl"

# Test files may start in parallel on a fresh machine: one installs, the others wait.
mkdir -p "$root/.peers"
exec 9>"$root/.peers/kubernetes-client.lock"
flock 9

if [ -x "$bin" ] && "$bin" version --client >/dev/null 2>&1; then
  echo "kubectl already cached: $("$bin" version --client --short 2>/dev/null || "$bin" version --client) at $bin"
  exit 0
fi

# Debian 12 (bookworm) is the machine's own release; the helper takes the suite by name.
bash "$here/fetch-debian-package.sh" bookworm kubernetes-client "$cache"

if ! "$bin" version --client >/dev/null 2>&1; then
  echo "install-kubectl: unpacked binary at $bin does not run" >&2
  exit 1
fi
echo "kubectl installed: $("$bin" version --client --short 2>/dev/null || "$bin" version --client) at $bin"
