#!/usr/bin/env bash
# Fetches the Node.js versions CI tests besides the machine's own (see
# .ci/run and the README's "Supported versions"): the official binaries as
# published on the npm registry in the package node-linux-<arch>@<version>,
# fetched with `npm pack` (no other download), of which only bin/node is
# kept, in <repo>/.peers/node/<major>/bin/node (git-ignored).
# Idempotent: a cached binary of the pinned version is kept.
# Usage: bash scripts/peers/install-node.sh [major ...]   (default: every pinned major)
set -euo pipefail

# The newest release of each line when this was written; bump them here.
declare -A PINNED=([22]=22.23.3 [24]=24.21.0 [26]=26.10.0)

root="$(cd "$(dirname "$0")/../.." && pwd)"
case "$(uname -m)" in
  x86_64) arch=x64 ;;
  aarch64) arch=arm64 ;;
  *)
    echo "install-node: no node-linux-* package for $(uname -m)" >&2
    exit 1
    ;;
esac

mkdir -p "$root/.peers/node"
# Test files and CI legs may ask at once: one fetches, the others wait.
exec 9>"$root/.peers/node/.lock"
flock 9

majors=("$@")
if [ "${#majors[@]}" -eq 0 ]; then majors=("${!PINNED[@]}"); fi
for major in "${majors[@]}"; do
  version="${PINNED[$major]:-}"
  if [ -z "$version" ]; then
    echo "install-node: no pinned version for Node $major (pinned: ${!PINNED[*]})" >&2
    exit 1
  fi
  dir="$root/.peers/node/$major"
  if [ -x "$dir/bin/node" ] && [ "$("$dir/bin/node" --version 2>/dev/null)" = "v$version" ]; then
    echo "node $major already cached: v$version at $dir/bin/node"
    continue
  fi
  tmp="$(mktemp -d)"
  (cd "$tmp" && npm pack --silent "node-linux-$arch@$version" >/dev/null)
  tar -xzf "$tmp"/node-linux-*.tgz -C "$tmp" package/bin/node package/LICENSE
  rm -rf "$dir"
  mkdir -p "$dir"
  mv "$tmp/package/bin" "$tmp/package/LICENSE" "$dir/"
  rm -rf "$tmp"
  if [ "$("$dir/bin/node" --version 2>/dev/null)" != "v$version" ]; then
    echo "install-node: $dir/bin/node does not run as v$version" >&2
    exit 1
  fi
  echo "node $major installed: v$version at $dir/bin/node"
done
