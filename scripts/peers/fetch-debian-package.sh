#!/usr/bin/env bash
# Fetches one package of another Debian release and unpacks it, without
# installing it: fetch-debian-package.sh <suite> <package> <dir>
#   e.g. fetch-debian-package.sh trixie etcd-server .peers/etcd-3.5
# leaves the package's files under <dir> (<dir>/usr/bin/etcd).
# The archive location comes from this machine's own apt configuration: the
# sources are copied with the suite switched and used for one download, so no
# host name is written here. Used by install-consul.sh (bullseye) and
# install-etcd-3.5.sh (trixie). Fails loudly (non-zero exit) when the package
# cannot be fetched.
set -euo pipefail

if [ "$#" -ne 3 ]; then
  echo "usage: $0 <suite> <package> <dir>" >&2
  exit 2
fi
suite="$1"
package="$2"
dest="$3"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# Debian 12 images use deb822 sources; older ones a one-line sources.list.
if [ -f /etc/apt/sources.list.d/debian.sources ]; then
  # Every stanza gets the one suite; the security stanza is dropped (its
  # suite name differs and the packages fetched here are not in it).
  sed -e "s/^Suites:.*/Suites: $suite/" /etc/apt/sources.list.d/debian.sources \
    | awk 'BEGIN{RS="";ORS="\n\n"} !/security/' > "$tmp/$suite.sources"
elif [ -f /etc/apt/sources.list ]; then
  # One-line format: "deb [opts] URI SUITE COMPONENTS..." -> the suite.
  grep -E '^[[:space:]]*deb[[:space:]]' /etc/apt/sources.list | grep -v security \
    | sed -E "s/^([[:space:]]*deb[[:space:]]+(\[[^]]*\][[:space:]]+)?[^[:space:]]+[[:space:]]+)[^[:space:]]+/\1$suite/" \
    > "$tmp/$suite.list"
else
  echo "fetch-debian-package: no apt sources found (/etc/apt/sources.list.d/debian.sources or /etc/apt/sources.list)" >&2
  exit 1
fi

mkdir -p "$tmp/lists/partial" "$tmp/cache/archives/partial"
if [ -f "$tmp/$suite.list" ]; then
  sources=(-o Dir::Etc::SourceList="$tmp/$suite.list" -o Dir::Etc::SourceParts=/dev/null)
else
  sources=(-o Dir::Etc::SourceList=/dev/null -o Dir::Etc::SourceParts="$tmp")
fi
apt_opts=("${sources[@]}" -o APT::Sandbox::User=root -o Dir::State::Lists="$tmp/lists" -o Dir::Cache="$tmp/cache")

apt-get "${apt_opts[@]}" update
(cd "$tmp" && apt-get "${apt_opts[@]}" download "$package")

shopt -s nullglob
debs=("$tmp/${package}"_*.deb)
if [ "${#debs[@]}" -eq 0 ]; then
  echo "fetch-debian-package: apt-get download produced no ${package}_*.deb" >&2
  exit 1
fi

rm -rf "$dest"
mkdir -p "$dest"
dpkg -x "${debs[0]}" "$dest"
echo "fetched $(basename "${debs[0]}") into $dest"
