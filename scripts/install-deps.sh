#!/usr/bin/env bash
# Installs the Debian 12 packages msinfer builds and tests with (DESIGN.md §9).
set -euo pipefail
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends \
  build-essential cmake ninja-build pkg-config \
  nlohmann-json3-dev libfmt-dev libspdlog-dev libcli11-dev libopenblas-dev \
  libcpp-httplib-dev libpcre2-dev libutf8proc-dev \
  libgtest-dev libgmock-dev libbenchmark-dev \
  python3 python3-numpy python3-jinja2 python3-pytest >/dev/null
# Node.js and npm fetch the pinned test packages (tests/npm); use the machine's own if present.
if ! command -v npm >/dev/null 2>&1; then
  $SUDO apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi
echo "install-deps: done"
