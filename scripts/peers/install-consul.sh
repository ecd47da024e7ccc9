#!/usr/bin/env bash
# Fetches Debian 11's consul package (1.8.7) and unpacks it, without
# installing it, into <repo>/.peers/consul (git-ignored). The archive
# location comes from this machine's own apt configuration: the sources are
# copied with the suite switched to bullseye and used for one download, so no
# host name is written here. Idempotent: a cached, runnable binary is kept.
# Fails loudly (non-zero exit) when the binary cannot be obtained.
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
cache="$root/.peers/consul"
bin="$cache/usr/bin/consul"

# Test files may start in parallel on a fresh machine: one installs, the others wait.
mkdir -p "$root/.peers"
exec 9>"$root/.peers/consul.lock"
flock 9

if [ -x "$bin" ] && "$bin" version >/dev/null 2>&1; then
  echo "consul already cached: $("$bin" version | head -n 1) at $bin"
  exit 0
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# Debian 12 images use deb822 sources; older ones a one-line sources.list.
if [ -f /etc/apt/sources.list.d/debian.sources ]; then
  # Every stanza gets the one suite; the security stanza is dropped (its
  # suite name differs and consul is not in it).
  sed -e 's/^Suites:.*/Suites: bullseye/' /etc/apt/sources.list.d/debian.sources \
    | awk 'BEGIN{RS="";ORS="\n\n"} !/security/' > "$tmp/bullseye.sources"
elif [ -f /etc/apt/sources.list ]; then
  # One-line format: "deb [opts] URI SUITE COMPONENTS..." -> suite bullseye.
  grep -E '^[[:space:]]*deb[[:space:]]' /etc/apt/sources.list | grep -v security \
    | sed -E 's/^([[:space:]]*deb[[:space:]]+(\[[^]]*\][[:space:]]+)?[^[:space:]]+[[:space:]]+)[^[:space:]]+/\1bullseye/' \
    > "$tmp/bullseye.list"
else
  echo "install-consul: no apt sources found (/etc/apt/sources.list.d/debian.sources or /etc/apt/sources.list)" >&2
  exit 1
fi

mkdir -p "$tmp/lists/partial" "$tmp/cache/archives/partial"
if [ -f "$tmp/bullseye.list" ]; then
  sources=(-o Dir::Etc::SourceList="$tmp/bullseye.list" -o Dir::Etc::SourceParts=/dev/null)
else
  sources=(-o Dir::Etc::SourceList=/dev/null -o Dir::Etc::SourceParts="$tmp")
fi
apt_opts=("${sources[@]}" -o APT::Sandbox::User=root -o Dir::State::Lists="$tmp/lists" -o Dir::Cache="$tmp/cache")

apt-get "${apt_opts[@]}" update
(cd "$tmp" && apt-get "${apt_opts[@]}" download consul)

shopt -s nullglob
debs=("$tmp"/consul_*.deb)
if [ "${#debs[@]}" -eq 0 ]; then
  echo "install-consul: apt-get download produced no consul_*.deb" >&2
  exit 1
fi

rm -rf "$cache"
mkdir -p "$cache"
dpkg -x "${debs[0]}" "$cache"

if ! "$bin" version >/dev/null 2>&1; then
  echo "install-consul: unpacked binary at $bin does not run" >&2
  exit 1
fi
echo "consul installed: $("$bin" version | head -n 1) at $bin"
