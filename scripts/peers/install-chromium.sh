#!/usr/bin/env bash
# Installs Debian's Chromium for the admin page's browser test (driven by
# playwright-core with executablePath; Playwright's own browser download
# cannot work here). Idempotent: does nothing when /usr/bin/chromium exists.
set -euo pipefail

if [ -x /usr/bin/chromium ]; then
  echo "chromium already installed: $(/usr/bin/chromium --version 2>/dev/null | sed -n 1p)"
  exit 0
fi
sudo_cmd=""
if [ "$(id -u)" -ne 0 ]; then sudo_cmd=sudo; fi
export DEBIAN_FRONTEND=noninteractive
# Read into a variable first: with pipefail, `apt-cache policy | grep -q`
# fails when grep exits early and apt-cache gets SIGPIPE.
policy="$(apt-cache policy chromium 2>/dev/null || true)"
if ! grep -q 'Candidate: [0-9]' <<<"$policy"; then
  $sudo_cmd apt-get -o DPkg::Lock::Timeout=600 update
fi
$sudo_cmd apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends chromium fonts-dejavu-core
/usr/bin/chromium --version | sed -n 1p
