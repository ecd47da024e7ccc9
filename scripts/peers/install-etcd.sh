#!/usr/bin/env bash
# Installs etcd (server and etcdctl) from the machine's own apt sources when
# /usr/bin/etcd is missing. Idempotent: does nothing when etcd is present.
# Debian 12 ships etcd 3.4.23 as `etcd-server` (+ `etcd-client` for etcdctl).
set -euo pipefail

if [ -x /usr/bin/etcd ] && [ -x /usr/bin/etcdctl ]; then
  echo "etcd already installed: $(/usr/bin/etcd --version | sed -n 1p)"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  sudo_cmd=sudo
else
  sudo_cmd=
fi

export DEBIAN_FRONTEND=noninteractive
# The package lists may be empty on a fresh machine; refresh only when the
# candidate is unknown, so repeated runs stay offline.
# Read into a variable first: with pipefail, `apt-cache policy | grep -q`
# fails when grep exits early and apt-cache gets SIGPIPE.
policy="$(apt-cache policy etcd-server 2>/dev/null || true)"
if ! grep -q 'Candidate: [0-9]' <<<"$policy"; then
  $sudo_cmd apt-get -o DPkg::Lock::Timeout=600 update
fi
# Installing the package starts no service here (no systemd in containers);
# policy-rc.d-less images may still try, which is harmless.
# Other installers may hold the dpkg lock (peers are installed in parallel):
# wait for it instead of failing.
$sudo_cmd apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends etcd-server etcd-client

if [ ! -x /usr/bin/etcd ]; then
  echo "install-etcd: apt-get finished but /usr/bin/etcd is missing" >&2
  exit 1
fi
# Debian's package may start a system etcd on 2379; tests use their own ports,
# but a stray daemon wastes memory, so stop it when one was started.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet etcd 2>/dev/null; then
  $sudo_cmd systemctl stop etcd || true
fi
echo "etcd installed: $(/usr/bin/etcd --version | sed -n 1p)"
