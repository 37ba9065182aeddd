#!/usr/bin/env bash
# Builds parley's demo server (default preset) and runs it in the foreground.
# Arguments go to the server, e.g. scripts/demo.sh --help.
set -euo pipefail
cd "$(dirname "$0")/.."

# The program the demo runs, one of the examples/.
DEMO=echo_server

scripts/install-deps.sh
if [ ! -f "examples/$DEMO.cpp" ]; then
  echo "demo: examples/$DEMO.cpp does not exist yet" >&2
  exit 1
fi
cmake --preset default
cmake --build --preset default --target "$DEMO"
exec "build/default/examples/$DEMO" "$@"
