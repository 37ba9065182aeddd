#!/usr/bin/env bash
# One echo cell, for an A/B of two echo_server builds run alternately (A, B,
# A, B ...), so that a machine whose speed drifts between runs is shared
# alike: round trips/s, the server's CPU per round trip (ns) and the load
# generator's CPU, one line per run (marked when the generator was at 90 % of
# its core or more: that run measured it). bench/run.py is the full matrix.
#
#   bench/run.py --quick --scenarios memory --memory-k 10   # once: builds build/bench/loadgen
#   bench/echo_ab.sh old/echo_server build/default/examples/echo_server 50 1 4
#
# Arguments: A B CONNS INFLIGHT [REPS (3)]. Environment: DURATION (4 s),
# WARMUP (1 s), SERVER_CPU (0), CLIENT_CPU (1), PORT (10812).
set -euo pipefail
cd "$(dirname "$0")/.."
loadgen=build/bench/loadgen
[ -x "$loadgen" ] || { echo "build $loadgen first (bench/run.py builds it)" >&2; exit 1; }
[ $# -ge 4 ] || { echo "usage: $0 A B CONNS INFLIGHT [REPS]" >&2; exit 2; }
a=$1 b=$2 conns=$3 inflight=$4 reps=${5:-3}
port=${PORT:-10812}
for ((r = 1; r <= reps; r++)); do
  for server in "$a" "$b"; do
    taskset -c "${SERVER_CPU:-0}" "$server" --port "$port" --quiet >/dev/null 2>&1 &
    pid=$!
    sleep 0.3
    line=$(taskset -c "${CLIENT_CPU:-1}" "$loadgen" echo --proto parley --port "$port" \
      --conns "$conns" --inflight "$inflight" --warmup "${WARMUP:-1}" --duration "${DURATION:-4}" \
      --greeting --server-pid "$pid" 2>/dev/null | tail -n 1) || true
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    printf '%s\t' "$server"
    python3 -c 'import json, sys
d = json.loads(sys.argv[1] or "{}")
rate, ns, gen = d.get("rtt_per_s", 0), d.get("server_ns_per_msg", -1), d.get("loadgen_cpu", 0)
# As bench/run.py: a generator at 90 % of its core or more may be what was measured.
mark = "\tgenerator-bound: not counted" if gen >= 0.9 else ""
print(f"{rate:.0f} round trips/s\t{ns:.0f} ns/round trip\tgenerator {gen:.0%}{mark}")' "$line"
  done
done
