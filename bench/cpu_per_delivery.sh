#!/usr/bin/env bash
# One fan-out cell, for a quick A/B of two server builds: the server's CPU
# time per delivered message, split into user and system, measured from
# /proc/PID/stat over the load generator's measured window. bench/run.py is
# the full matrix; this is the spot check used while changing the hot path.
#
#   bench/run.py --quick --scenarios memory --memory-k 10   # once: builds build/bench/{loadgen,floor_server}
#   bench/cpu_per_delivery.sh build/default/examples/broadcast_server --no-echo
#   SUBS=10 bench/cpu_per_delivery.sh build/bench/floor_server --mode broadcast --no-echo
#
# Environment: SUBS (100), SIZE (64), DURATION (3 s), SERVER_CPU (0), CLIENT_CPU (1).
set -euo pipefail
cd "$(dirname "$0")/.."
loadgen=build/bench/loadgen
[ -x "$loadgen" ] || { echo "build $loadgen first (bench/run.py builds it)" >&2; exit 1; }
[ $# -ge 1 ] || { echo "usage: $0 SERVER [ARGS...]" >&2; exit 2; }
subs=${SUBS:-100} size=${SIZE:-64} duration=${DURATION:-3}
out=$(mktemp) lg=$(mktemp)
trap 'rm -f "$out" "$lg"' EXIT

taskset -c "${SERVER_CPU:-0}" "$@" --port 0 >"$out" 2>&1 &
server=$!
port=
for _ in $(seq 100); do
  port=$(sed -n 's/.*listening on .*:\([0-9][0-9]*\).*/\1/p' "$out" | head -n 1)
  [ -n "$port" ] && break
  sleep 0.05
done
[ -n "$port" ] || { echo "server did not say 'listening on'" >&2; kill "$server"; exit 1; }

taskset -c "${CLIENT_CPU:-1}" "$loadgen" fanout --proto parley --port "$port" --subs "$subs" \
  --size "$size" --warmup 1 --duration "$duration" >"$lg" 2>&1 &
client=$!
ticks() { awk '{print $14, $15}' "/proc/$server/stat"; }
sleep 1.2                        # connection set-up and warm-up
read -r u0 s0 < <(ticks)
sleep "$(awk -v d="$duration" 'BEGIN{print d - 0.4}')"
read -r u1 s1 < <(ticks)
wait "$client" || true
kill "$server"; wait "$server" 2>/dev/null || true

rate=$(grep -o '"msgs_per_s":[0-9.]*' "$lg" | cut -d: -f2)
[ -n "$rate" ] || { cat "$lg" >&2; exit 1; }
awk -v r="$rate" -v u=$((u1 - u0)) -v s=$((s1 - s0)) -v d="$duration" -v hz="$(getconf CLK_TCK)" 'BEGIN {
  w = d - 0.4; n = r * w
  printf "N=%s S=%s: %.2fM msgs/s, server CPU per delivery: user %.1f ns, system %.1f ns (%.0f%% of a core)\n",
         ENVIRON["SUBS"] ? ENVIRON["SUBS"] : 100, ENVIRON["SIZE"] ? ENVIRON["SIZE"] : 64,
         r / 1e6, u * 1e9 / hz / n, s * 1e9 / hz / n, 100 * (u + s) / hz / w }'
