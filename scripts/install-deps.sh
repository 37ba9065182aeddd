#!/usr/bin/env bash
# Installs what parley's demo, tests and full test matrix need on Debian 12
# (bookworm), starting from a bare system with git. Quick when there is
# nothing to do: apt is only run if a package of the set is missing.
#
#   scripts/install-deps.sh demo     # scripts/demo.sh: build and run the demo
#   scripts/install-deps.sh test     # scripts/test.sh: the demo's, plus the tests'
#   scripts/install-deps.sh [full]   # scripts/test.sh --full, the benchmarks: all
#   PARLEY_SKIP_DEPS=1 scripts/...   # other scripts: skip this step
# (as root, or with sudo available)
set -euo pipefail

# The one list of packages, in sets; each set includes the ones above it.
# Add what a new test or tool needs to the first set that needs it.
# demo: the compiler, build tools and libraries the default preset needs to
# configure (doctest: it builds the tests too) and build the examples.
DEMO_PACKAGES=(
  g++ cmake ninja-build ccache git
  libasio-dev doctest-dev
)
# test: scripts/test.sh, the default preset's tests and the meson build.
TEST_PACKAGES=(
  meson pkg-config
  # TLS (parley/net/tls.hpp; optional: without it the TLS tests are skipped)
  # and the openssl tool the TLS tests make certificates and connect with
  libssl-dev openssl
  # permessage-deflate (optional: without zlib its tests skip)
  zlib1g-dev
  # the Redis backplane (optional: without hiredis it is off, its tests skip)
  libhiredis-dev redis-server
  # the chat history store (optional: without SQLite its tests skip)
  libsqlite3-dev
  # test helpers (the tests that need one skip without it: python3-websockets
  # is the WebSocket interop peer) and the shell-script lint
  python3 python3-websockets tmux shellcheck
  # the WebSocket interop peer (Node's ws) and the chat page's browser test
  # (puppeteer-core driving Chromium): tests/web, `npm ci` by scripts/test.sh
  nodejs chromium
)
# full: scripts/test.sh --full (clang, its sanitizer runtimes, the fuzz
# targets) and bench/micro's Google Benchmark (skipped by CMake when missing).
FULL_PACKAGES=(
  clang libclang-rt-14-dev
  # promtool checks the chat's /metrics scrape (without it that test skips);
  # the package also brings a Prometheus service, so not in the test set
  prometheus
  libbenchmark-dev
)

set_name=${1:-full}
case $set_name in
  demo) PACKAGES=("${DEMO_PACKAGES[@]}") ;;
  test) PACKAGES=("${DEMO_PACKAGES[@]}" "${TEST_PACKAGES[@]}") ;;
  full) PACKAGES=("${DEMO_PACKAGES[@]}" "${TEST_PACKAGES[@]}" "${FULL_PACKAGES[@]}") ;;
  *)
    echo "install-deps: unknown set '$set_name' (demo, test or full)" >&2
    exit 2
    ;;
esac

if [ "${PARLEY_SKIP_DEPS:-0}" = 1 ]; then
  exit 0
fi

if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
  echo "install-deps: not a Debian-like system; make sure these (or your" \
       "distribution's equivalents) are installed: ${PACKAGES[*]}" >&2
  exit 0
fi

# npm: Debian's package, unless a Node.js that brings its own is installed
# (NodeSource's nodejs holds npm and conflicts with Debian's npm package).
if [ "$set_name" != demo ] && ! command -v npm >/dev/null 2>&1; then
  PACKAGES+=(npm)
fi

missing=()
for pkg in "${PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
  [ "$status" = installed ] || missing+=("$pkg")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages of the $set_name set already installed"
  exit 0
fi

SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
echo "install-deps: installing ${missing[*]}"
$SUDO apt-get update
$SUDO env DEBIAN_FRONTEND=noninteractive \
  apt-get install -y --no-install-recommends "${missing[@]}"
