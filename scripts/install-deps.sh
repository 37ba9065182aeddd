#!/usr/bin/env bash
# Installs what parley's build, tests and demo need on Debian 12 (bookworm),
# starting from a bare system with git. Quick when there is nothing to do:
# apt is only run if a package below is missing.
#
#   scripts/install-deps.sh          # as root, or with sudo available
#   PARLEY_SKIP_DEPS=1 scripts/...   # other scripts: skip this step
set -euo pipefail

# The one list of packages. Add what a new test or tool needs here.
PACKAGES=(
  # compilers; libclang-rt-14-dev holds clang's sanitizer runtimes
  g++ clang libclang-rt-14-dev
  # build tools
  cmake ninja-build ccache meson pkg-config git
  # libraries: standalone Asio (headers only), doctest, Google Benchmark
  # (bench/micro; skipped by CMake when missing)
  libasio-dev doctest-dev libbenchmark-dev
  # TLS (parley/tls.hpp; optional: without it the TLS tests are skipped)
  # and the openssl tool the TLS tests make certificates and connect with
  libssl-dev openssl
  # the Redis backplane (optional: without hiredis it is off, its tests skip)
  libhiredis-dev redis-server
  # test and demo helpers
  python3 tmux shellcheck
)

if [ "${PARLEY_SKIP_DEPS:-0}" = 1 ]; then
  exit 0
fi

if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
  echo "install-deps: not a Debian-like system; make sure these (or your" \
       "distribution's equivalents) are installed: ${PACKAGES[*]}" >&2
  exit 0
fi

missing=()
for pkg in "${PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
  [ "$status" = installed ] || missing+=("$pkg")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages already installed"
  exit 0
fi

SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
echo "install-deps: installing ${missing[*]}"
$SUDO apt-get update
$SUDO env DEBIAN_FRONTEND=noninteractive \
  apt-get install -y --no-install-recommends "${missing[@]}"
