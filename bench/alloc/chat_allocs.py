#!/usr/bin/env python3
"""Heap allocations per message and per recipient in examples/chat_server's fan-out.

    bench/alloc/chat_allocs.py [--chat-server build/default/examples/chat_server]

chat_server runs under LD_PRELOAD=count_allocs.so (bench/alloc/count_allocs.c:
every malloc-family call counted, printed at exit) while bench/loadgen's paced
fan-out publishes R messages/s to N subscribers in the room "lobby", over its
framed, line or WebSocket port (--protos chat,chatline,wschat). Each
configuration runs twice, for a short and a long measured time, on a fresh
server; setup and shutdown cost the same in both, so

    allocations per published message = (total_long - total_short)
                                        / (published_long - published_short)

and per delivery = that / N. If the per-message figure does not grow with N,
chat_server allocates nothing per recipient. Python 3 standard library only;
loadgen and the library are built into build/bench as bench/run.py does.
"""
import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent
PORT_NAMES = {"chat": "framed", "chatline": "line", "wschat": "WebSocket"}
REPO = BENCH.parent


def build(bdir, cc, cxx):
    bdir.mkdir(parents=True, exist_ok=True)
    lib = bdir / "count_allocs.so"
    src = BENCH / "alloc" / "count_allocs.c"
    if not lib.exists() or src.stat().st_mtime > lib.stat().st_mtime:
        subprocess.run([cc, "-O2", "-Wall", "-shared", "-fPIC", "-o", str(lib), str(src)], check=True)
    loadgen = bdir / "loadgen"
    src = BENCH / "loadgen.cpp"
    if not loadgen.exists() or src.stat().st_mtime > loadgen.stat().st_mtime:
        subprocess.run([cxx, "-std=c++20", "-O2", "-Wall", "-o", str(loadgen), str(src)], check=True)
    return lib, loadgen


def one(args, lib, loadgen, proto, subs, duration):
    """Runs chat_server + one loadgen fan-out; returns (allocations at exit, loadgen JSON)."""
    err = tempfile.TemporaryFile()
    argv = ["taskset", "-c", args.server_cpu, str(Path(args.chat_server).resolve()), "--host", "127.0.0.1",
            "--port", "0", "--line-port", "0", "--flood-rate", "0", "--max-clients", "5000",
            "--max-per-address", "0", "--idle-timeout", "0", "--ping-interval", "0",
            "--threads", str(args.threads), "--web-port", "0"]
    env = dict(os.environ, LD_PRELOAD=str(lib))
    srv = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL, env=env,
                           text=True)
    try:
        ports = {}
        deadline = time.monotonic() + 10
        while len(ports) < 3 and time.monotonic() < deadline:
            line = srv.stdout.readline()
            if not line:
                break
            m = re.match(r"(listening on|line mode on|web port on) .*:(\d+)$", line.strip())
            if m:
                ports[m.group(1)] = m.group(2)
        if len(ports) < 3:
            raise SystemExit(f"chat_server did not start: {ports}")
        port = ports[{"chat": "listening on", "chatline": "line mode on", "wschat": "web port on"}[proto]]
        lg = ["taskset", "-c", args.client_cpu, str(loadgen), "fanout", "--proto", proto,
              "--port", port, "--subs", str(subs), "--size", str(args.size),
              "--warmup", "0.5", "--duration", str(duration), "--server-pid", str(srv.pid)]
        lg += ["--rate", str(args.rate)] if args.rate else ["--window", str(args.window)]
        cp = subprocess.run(lg, capture_output=True, text=True, timeout=120 + duration)
        js = [json.loads(x) for x in cp.stdout.splitlines() if x.startswith("{")]
        if not js or not js[-1].get("ok"):
            raise SystemExit(f"loadgen failed: {cp.stdout[-400:]} {cp.stderr[-400:]}")
        result = js[-1]
    finally:
        srv.terminate()
        srv.wait(timeout=20)
    err.seek(0)
    counts = re.findall(rb"count_allocs: (\d+)", err.read())
    if not counts:
        raise SystemExit("no count_allocs line: was the library preloaded?")
    return int(counts[-1]), result


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--chat-server", default=str(REPO / "build/default/examples/chat_server"))
    ap.add_argument("--subs", default="10,100")
    ap.add_argument("--protos", default="chat,chatline,wschat",
                    help="chat (framed port), chatline (line port), wschat (web port, GET /ws)")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--rate", type=int, default=2000, help="paced publishes/s; 0 = saturating (--window)")
    ap.add_argument("--window", type=int, default=64)
    ap.add_argument("--short", type=float, default=1.0, help="measured seconds of the short run")
    ap.add_argument("--long", type=float, default=3.0, help="measured seconds of the long run")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--server-cpu", default="0")
    ap.add_argument("--client-cpu", default="1")
    ap.add_argument("--build-dir", default=str(REPO / "build" / "bench"))
    ap.add_argument("--cc", default=os.environ.get("CC", "cc"))
    ap.add_argument("--cxx", default=os.environ.get("CXX", "g++"))
    args = ap.parse_args()
    lib, loadgen = build(Path(args.build_dir), args.cc, args.cxx)
    mode = f"paced {args.rate}/s" if args.rate else f"saturating, window {args.window}"
    print(f"`bench/alloc/chat_allocs.py {shlex.join(sys.argv[1:])}`: chat_server --threads {args.threads}, "
          f"{mode}, {args.size}-byte texts, runs of {args.short} s and {args.long} s measured\n")
    print("| port | N | allocations (short / long run) | published (short / long) "
          "| allocations per published message | per delivery |")
    print("|---|---|---|---|---|---|")
    slopes = []
    for proto in [p for p in args.protos.split(",") if p]:
        pers = []
        for n in [int(x) for x in args.subs.split(",") if x]:
            a1, r1 = one(args, lib, loadgen, proto, n, args.short)
            a2, r2 = one(args, lib, loadgen, proto, n, args.long)
            dm = r2["published"] - r1["published"]
            per = (a2 - a1) / dm if dm > 0 else float("nan")
            pers.append((n, per))
            print(f"| {PORT_NAMES[proto]} | {n} | {a1} / {a2} | "
                  f"{r1['published']} / {r2['published']} | {per:.2f} | {per / n:.3f} |", flush=True)
        if len(pers) >= 2 and pers[-1][0] != pers[0][0]:
            slope = (pers[-1][1] - pers[0][1]) / (pers[-1][0] - pers[0][0])
            slopes.append(f"{PORT_NAMES[proto]} port: {slope:.2f} allocations per "
                          f"recipient per message (N = {pers[0][0]} -> {pers[-1][0]}), "
                          f"{pers[0][1] - slope * pers[0][0]:.1f} per message besides")
    if slopes:
        print("\n" + "\n".join(slopes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
