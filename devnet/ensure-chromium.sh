#!/usr/bin/env bash
# The browser the Web UI test drives (playwright-core launches it): Debian's chromium, installed once when missing.
# Root installs it with apt; anyone else gets told what to run. Prints the executable's path.
set -euo pipefail
BROWSER="${SETTLE_CHROMIUM:-/usr/bin/chromium}"
if [ ! -x "$BROWSER" ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "ensure-chromium: $BROWSER is missing; install it with: sudo apt-get install -y chromium" >&2
    exit 1
  fi
  echo "ensure-chromium: installing Debian's chromium (missing at $BROWSER)" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi
"$BROWSER" --version >&2
echo "$BROWSER"
