#!/usr/bin/env bash
# Install the Debian packages the tests use, only where missing (idempotent, quiet; needs root, as CI runs):
# - graphviz: the `dot` layout engine behind architecture pictures (nas show, dashboard pictures, reports);
# - chromium, chromium-driver: the headless browser the report and dashboard tests drive (through Playwright's
#   Python package with executable_path=/usr/bin/chromium; no browser is ever downloaded).
set -euo pipefail

log() { echo "install_system_packages: $*" >&2; }

missing=()
command -v dot >/dev/null 2>&1 || missing+=(graphviz)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
if [[ ${#missing[@]} -eq 0 ]]; then
    exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
    log "missing ${missing[*]} and installing needs root: the tests that need them will skip"
    exit 0
fi
log "installing Debian's ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2
apt-get install -y -qq "${missing[@]}" >/dev/null
