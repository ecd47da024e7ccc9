#!/usr/bin/env bash
# Installs every real server the integration tests use (etcd, Consul,
# dnsmasq, ...): runs each scripts/peers/install-*.sh. Each one is idempotent
# and fails loudly when its peer cannot be installed.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
shopt -s nullglob
for script in "$here"/install-*.sh; do
  echo "==> $(basename "$script")"
  bash "$script"
done
