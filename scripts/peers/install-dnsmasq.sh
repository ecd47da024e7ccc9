#!/usr/bin/env bash
# Installs dnsmasq (Debian's dnsmasq-base: the binary only, no system
# service) for the DNS backend's integration tests. Idempotent: does nothing
# when /usr/sbin/dnsmasq already exists. Archive locations come from the
# machine's own apt configuration.
set -euo pipefail

if command -v dnsmasq >/dev/null 2>&1 || [ -x /usr/sbin/dnsmasq ]; then
  echo "dnsmasq already installed: $( (/usr/sbin/dnsmasq --version 2>/dev/null || dnsmasq --version) | sed -n 1p)"
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-dnsmasq: apt-get not found; install the dnsmasq-base package (or any dnsmasq >= 2.80) by hand" >&2
  exit 1
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
    echo "install-dnsmasq: need root (or sudo) to install dnsmasq-base" >&2
    exit 1
  fi
fi

# A fresh machine may have empty package lists; update first.
$sudo apt-get update
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends dnsmasq-base

if [ ! -x /usr/sbin/dnsmasq ]; then
  echo "install-dnsmasq: dnsmasq-base installed but /usr/sbin/dnsmasq is missing" >&2
  exit 1
fi
/usr/sbin/dnsmasq --version | sed -n 1p
