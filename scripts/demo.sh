#!/usr/bin/env bash
# Builds parley's demo server (default preset) and runs it in the foreground.
# Arguments go to the server, e.g. scripts/demo.sh --help.
set -euo pipefail
cd "$(dirname "$0")/.."

# The program the demo runs, one of the examples/.
DEMO=chat_server

scripts/install-deps.sh demo
if [ ! -f "examples/$DEMO.cpp" ]; then
  echo "demo: examples/$DEMO.cpp does not exist yet" >&2
  exit 1
fi
cmake --preset default
# The clients the README points to are built too.
cmake --build --preset default --target "$DEMO" chat_client echo_server echo_client
exec "build/default/examples/$DEMO" "$@"
