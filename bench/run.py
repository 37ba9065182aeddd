#!/usr/bin/env python3
"""Runs parley's benchmark matrix side by side with its peers; see bench/README.md.

    bench/run.py --quick                      # a few seconds per cell, one repetition
    bench/run.py                              # the full matrix, 3 repetitions, medians
    bench/run.py --parley-broadcast build/examples/broadcast_server \\
                 --parley-echo build/examples/echo_server

Builds what it needs into build/bench (outside git), starts each server on a
free loopback port pinned to one core with the load generator on the other,
alternates servers within each cell and rotates their order per repetition,
and writes results (JSONL, TSV, markdown tables, a gnuplot PNG) to --out.
Python 3 standard library only.
"""
import argparse
import collections
import datetime
import json
import os
import platform
import resource
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
PEERS = ("redis", "nats", "asio")  # what a user would pick instead of parley
# floor-relay: the floor sharing each read's frames as one buffer, the design
# parley's broadcast_server uses; its floor, reported beside the plain one.
ALL_SERVERS = ("floor", "floor-relay") + PEERS + ("parley", "chat")
# chat: parley's chat_server (--parley-chat), in the memory cells only: clients
# with nicknames, all in its room "lobby".


def log(*a):
    print(*a, file=sys.stderr, flush=True)


# ----------------------------------------------------------------- building
def newer(src, dst):
    return not dst.exists() or any(Path(s).stat().st_mtime > dst.stat().st_mtime for s in src)


def build(args):
    bdir = Path(args.build_dir)
    bdir.mkdir(parents=True, exist_ok=True)
    floor = bdir / "floor_server"
    if newer([BENCH / "floor_server.c"], floor):
        cmd = [args.cc, "-std=c11", "-O2", "-Wall", "-o", str(floor), str(BENCH / "floor_server.c")]
        log("build:", shlex.join(cmd))
        subprocess.run(cmd, check=True)
    loadgen = bdir / "loadgen"
    if newer([BENCH / "loadgen.cpp"], loadgen):
        cmd = [args.cxx, "-std=c++20", "-O2", "-Wall", "-o", str(loadgen), str(BENCH / "loadgen.cpp")]
        log("build:", shlex.join(cmd))
        subprocess.run(cmd, check=True)
    if "asio" in args.servers:
        env = dict(os.environ, CXX=args.cxx)
        r = subprocess.run(["sh", str(BENCH / "peers" / "build.sh"), str(bdir)], env=env)
        if r.returncode:
            log("could not build Asio's examples: skipping asio")
            args.servers.remove("asio")
    return bdir


# ------------------------------------------------------------------ servers
def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerSpec:
    """How to start one server for one job ('broadcast' or 'echo')."""

    def __init__(self, argv, proto, port=None, greeting=False):
        self.argv = argv          # command line; port 0 / None means it prints "listening on"
        self.proto = proto        # loadgen --proto
        self.port = port          # fixed port we chose, or None
        self.greeting = greeting  # parley echo_server greets each connection


def spec(name, job, args, bdir):
    """Returns a ServerSpec, or None when this server does not do this job."""
    if name in ("floor", "floor-relay"):
        if name == "floor-relay" and job != "broadcast":
            return None
        argv = [str(bdir / "floor_server"), "--mode", job, "--host", "127.0.0.1", "--port", "0"]
        if job == "broadcast" and not args.with_echo:
            argv.append("--no-echo")
        if name == "floor-relay":
            argv.append("--relay-runs")
        return ServerSpec(argv, "parley")
    if name == "redis":
        p = free_port()
        argv = ["redis-server", "--port", str(p), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning",
                "--protected-mode", "no",  # loadgen idle connects from 127.0.0.2-32 too; bound to 127.0.0.1
                "--maxclients", "20000"]
        return ServerSpec(argv, "resp", p)
    if name == "nats":
        if job != "broadcast":
            return None  # request/reply needs a responder client; not an echo server
        p = free_port()
        return ServerSpec(["nats-server", "-a", "127.0.0.1", "-p", str(p)], "nats", p)
    if name == "asio":
        p = free_port()
        if job == "broadcast":
            return ServerSpec([str(bdir / "asio_chat_server"), str(p)], "asiochat", p)
        return ServerSpec([str(bdir / "asio_echo_server"), str(p)], "parley", p)
    if name == "chat":
        if job != "broadcast" or not args.parley_chat:
            return None
        argv = [str(Path(args.parley_chat).resolve()), "--host", "127.0.0.1", "--port", "0",
                "--no-line-mode", "--no-web", "--flood-rate", "0", "--max-clients", "20000",
                "--max-per-address", "0", "--idle-timeout", "0", "--ping-interval", "0"]
        return ServerSpec(argv, "chat")
    if name == "parley":
        path = args.parley_broadcast if job == "broadcast" else args.parley_echo
        if not path:
            return None
        argv = [str(Path(path).resolve()), "--port", "0"]
        if job == "broadcast" and not args.with_echo:
            argv.append("--no-echo")
        argv += shlex.split(args.parley_broadcast_args if job == "broadcast" else args.parley_echo_args)
        return ServerSpec(argv, "parley", greeting=(job == "echo" and args.parley_greeting))
    raise SystemExit(f"unknown server {name!r}")


class Server:
    LOG_LINES = 200  # a server that logs every message must not fill the disk

    def __init__(self, name, sp, logpath, args):
        self.name = name
        self.sp = sp
        self.logpath = logpath
        self.host = "127.0.0.1"
        self.port = sp.port
        self.listening = None
        self.lines = collections.deque(maxlen=5)
        prefix = ["taskset", "-c", str(args.server_cpu)]
        if args.nice:
            prefix = ["nice", "-n", str(args.nice)] + prefix
        self.logf = open(logpath, "wb")
        # taskset and nice exec the server, so proc.pid is the server's pid.
        self.proc = subprocess.Popen(prefix + sp.argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        self.pid = self.proc.pid
        # Drain the server's output for its whole life (a full pipe would stall
        # it), keeping the first lines in the log file and the last in memory.
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        n = 0
        for raw in self.proc.stdout:
            line = raw.decode(errors="replace").rstrip("\n")
            if self.listening is None and line.startswith("listening on "):
                self.listening = line
            self.lines.append(line)
            n += 1
            if n <= self.LOG_LINES:
                self.logf.write(raw)
            elif n == self.LOG_LINES + 1:
                self.logf.write(b"[bench/run.py: further output discarded]\n")

    def wait_ready(self, timeout=10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                time.sleep(0.1)  # let the reader catch the last words
                raise RuntimeError(f"server exited with {self.proc.returncode}: {self.tail()}")
            if self.port is None and self.listening:
                host, _, port = self.listening[len("listening on "):].strip().rpartition(":")
                host = host.strip("[]")
                self.host = host if host in ("127.0.0.1", "::1", "localhost") else "127.0.0.1"
                self.port = int(port)
            if self.port is not None:
                fam = socket.AF_INET6 if ":" in self.host else socket.AF_INET
                try:
                    with socket.socket(fam, socket.SOCK_STREAM) as s:
                        s.settimeout(0.5)
                        s.connect((self.host, self.port))
                    return
                except OSError:
                    pass
            time.sleep(0.05)
        raise RuntimeError(f"server not ready within {timeout}s: {self.tail()}")

    def tail(self):
        return " | ".join(list(self.lines)[-3:])

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.reader.join(timeout=5)
        self.logf.close()


# ------------------------------------------------------------------ running
def cells(args):
    out = []
    if "fanout" in args.scenarios:
        for n in args.fanout_n:
            for s in args.fanout_s:
                if args.window == [0]:
                    out.append(("fanout", {"subs": n, "size": s}))
                else:  # a window sweep: one cell per window (0 = loadgen's default)
                    for w in args.window:
                        out.append(("fanout", {"subs": n, "size": s, "win": w}))
    if "paced" in args.scenarios:
        out.append(("paced", {"subs": args.paced_n, "size": 64, "rate": args.rate}))
    if "echo" in args.scenarios:
        for c in (1, 50):
            for w in (1, 16):
                out.append(("echo", {"conns": c, "inflight": w, "size": 64}))
    if "memory" in args.scenarios:
        for k in args.memory_k:
            out.append(("idle", {"conns": k}))
    return out


def cell_key(kind, p):
    if kind in ("fanout", "paced"):
        return (f"{kind} N={p['subs']} S={p['size']}" + (f" R={p['rate']}" if kind == "paced" else "")
                + (f" win={p['win'] or 'auto'}" if "win" in p else ""))
    if kind == "echo":
        return f"echo C={p['conns']} W={p['inflight']} S={p['size']}"
    return f"idle K={p['conns']}"


def loadgen_argv(bdir, kind, p, srv, args):
    sc = "fanout" if kind == "paced" else kind
    argv = ["taskset", "-c", str(args.client_cpu), str(bdir / "loadgen"), sc,
            "--proto", srv.sp.proto, "--host", srv.host, "--port", str(srv.port), "--label", srv.name]
    if args.nice:
        argv = ["nice", "-n", str(args.nice)] + argv
    if kind == "fanout":
        argv += ["--subs", str(p["subs"]), "--size", str(p["size"])]
        if p.get("win"):
            argv += ["--window", str(p["win"])]
    elif kind == "paced":
        argv += ["--subs", str(p["subs"]), "--size", str(p["size"]), "--rate", str(p["rate"])]
    elif kind == "echo":
        argv += ["--conns", str(p["conns"]), "--inflight", str(p["inflight"]), "--size", str(p["size"])]
    else:
        # generous: a server accepting in O(connections) per join needs it
        # (chat_server announces every join to the lobby: K^2/2 events)
        argv += ["--conns", str(p["conns"]), "--ready-timeout", "300", "--connect-timeout", "120"]
        if args.memory_settle > 0:
            argv += ["--hold", str(args.memory_settle)]  # then the RSS again
        if srv.sp.proto == "chat":
            argv.append("--nick")
        if srv.sp.proto in ("parley", "chat"):
            argv.append("--broadcast")  # then one message to all of them, timed
    argv += ["--server-pid", str(srv.pid)]
    if kind != "idle":
        argv += ["--warmup", str(args.warmup), "--duration", str(args.duration)]
    if srv.sp.greeting and kind in ("echo", "idle"):
        argv.append("--greeting")
    return argv


def run_one(bdir, kind, p, name, rep, args, logdir):
    job = "echo" if kind == "echo" else "broadcast"
    sp = spec(name, job, args, bdir)
    if sp is None or (name == "floor-relay" and kind not in ("fanout", "paced")):
        return None
    if name == "chat" and kind != "idle":
        return None
    if kind == "paced" or kind == "fanout":
        if sp.proto == "asiochat" and p["size"] > 512:
            return None
    rec = {"cell": cell_key(kind, p), "kind": kind, "server": name, "rep": rep, **p}
    tag = f"{rec['cell'].replace(' ', '_')}_{name}_r{rep}"
    srv = None
    # A port we picked free may be taken before the server binds it: retry
    # those; a server choosing its own port (--port 0) gets one try.
    attempts = 3 if sp.port is not None else 1
    for attempt in range(attempts):
        srv = Server(name, sp, logdir / f"{tag}.server.log", args)
        try:
            srv.wait_ready()
            break
        except RuntimeError as e:
            srv.stop()
            if attempt == attempts - 1:
                rec.update(ok=False, error=f"server start: {e}")
                return rec
            sp = spec(name, job, args, bdir)
    try:
        argv = loadgen_argv(bdir, kind, p, srv, args)
        budget = 120 + args.warmup + args.duration + (1200 if kind == "idle" else 0)
        try:
            cp = subprocess.run(argv, capture_output=True, text=True, timeout=budget)
            out, err, rc = cp.stdout, cp.stderr, cp.returncode
        except subprocess.TimeoutExpired as e:
            out = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
            err, rc = f"loadgen exceeded {budget:.0f}s", -1
        js = [l for l in out.splitlines() if l.startswith("{")]
        human = [l for l in out.splitlines() if l and not l.startswith("{")]
        if js:
            rec.update(json.loads(js[-1]))
        else:
            rec.update(ok=False, error=(err.strip() or f"loadgen exit {rc}")[-300:])
        rec["server"] = name  # loadgen's own fields must not overwrite ours
        rec["loadgen_rc"] = rc
        if not srv.alive():
            rec["ok"] = False
            rec["error"] = (rec.get("error") or "") + f" [server died: {srv.tail()}]"
        log(f"  {name:7s} {human[0] if human else rec.get('error')}")
        (logdir / f"{tag}.loadgen.log").write_text(shlex.join(argv) + "\n" + out + err)
    finally:
        srv.stop()
    return rec


# ---------------------------------------------------------------- reporting
METRIC = {"fanout": "msgs_per_s", "paced": "p99_us", "echo": "rtt_per_s", "idle": "bytes_per_conn"}


def med(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def summarize(records):
    """Medians per (cell, server) over successful repetitions."""
    groups = {}
    for r in records:
        groups.setdefault((r["cell"], r["server"]), []).append(r)
    summary = {}
    for (cell, server), rs in groups.items():
        good = [r for r in rs if r.get("ok")]
        for r in good:  # no message sent in the window arrived: no latency, not zero latency
            if r.get("samples") == 0:
                for f in ("p50_us", "p99_us", "p999_us", "max_us"):
                    r[f] = None
        s = {"cell": cell, "server": server, "kind": rs[0]["kind"], "runs": len(rs), "ok_runs": len(good)}
        for f in ("msgs_per_s", "mb_per_s", "rtt_per_s", "p50_us", "p99_us", "p999_us", "max_us",
                  "bytes_per_conn", "publish_rate", "server_cpu", "server_ns_per_msg", "loadgen_cpu",
                  "loadgen_ns_per_msg", "accept_s", "bcast_p50_us", "bcast_p99_us", "bcast_max_us",
                  "settled_bytes_per_conn"):
            s[f] = med([r.get(f) for r in good])
        for f in ("lost", "undrained", "out_of_order", "disconnected", "bad"):
            s[f] = sum(r.get(f, 0) or 0 for r in rs)
        summary[(cell, server)] = s
    return summary


def fmt_rate(v):
    if v is None:
        return "—"
    return f"{v / 1e6:.2f}M" if v >= 1e6 else f"{v / 1e3:.1f}k" if v >= 1e3 else f"{v:.0f}"


def fmt_us(v):
    if v is None:
        return "—"
    return f"{v / 1e3:.2f} ms" if v >= 1000 else f"{v:.0f} µs"


def ratio(a, b):
    return f"{a / b:.2f}×" if a is not None and b else "—"


GEN_BOUND = 0.9  # load generator's share of its core above which a cell measures the generator


def gen_bound(s):
    """True when the median run of a summary cell kept the generator's core over GEN_BOUND."""
    return bool(s) and (s.get("loadgen_cpu") or 0) > GEN_BOUND


def fmt_gen(s):
    """The generator's CPU for a summary cell, marked † when generator-bound."""
    cpu = s.get("loadgen_cpu") if s else None
    if cpu is None:
        return ""
    return f" [gen {cpu:.0%}{' †' if cpu > GEN_BOUND else ''}]"


def tables(summary, servers, args):
    peers = [s for s in servers if s in PEERS]
    cells_in_order = []
    for (cell, _), _s in summary.items():
        if cell not in cells_in_order:
            cells_in_order.append(cell)
    out = []

    def get(cell, server, field):
        s = summary.get((cell, server))
        return s.get(field) if s else None

    def throughput_table(kind, field, title, header):
        rows = [c for c in cells_in_order if any(summary.get((c, s), {}).get("kind") == kind for s in servers)]
        if not rows:
            return
        present = [s for s in servers if any((c, s) in summary for c in rows)]
        cols = header + present + ["best peer"]
        relay = "floor-relay" in present and "parley" in present
        if "parley" in present:
            cols += ["parley ÷ floor"] + (["parley ÷ floor-relay"] if relay else []) + ["parley ÷ best peer"]
        out.append(f"### {title}\n")
        out.append("| " + " | ".join(cols) + " |")
        out.append("|" + "---|" * len(cols))
        for c in rows:
            params = dict(kv.split("=") for kv in c.split()[1:])
            cells = [params[h.split()[0]] for h in header]
            floor = get(c, "floor", field)
            for s in present:
                v = get(c, s, field)
                cells.append(fmt_rate(v) + (f" ({ratio(v, floor)})" if s != "floor" and v else "") +
                             (fmt_gen(summary.get((c, s))) if v else ""))
            pv = [(get(c, p, field), p) for p in peers if get(c, p, field)]
            best = max(pv) if pv else (None, None)
            cells.append(f"{best[1]} {fmt_rate(best[0])}" if best[1] else "—")
            if "parley" in present:
                pl = get(c, "parley", field)

                def vs(other):
                    # A ratio with a generator-bound side is not counted as met or missed.
                    bound = gen_bound(summary.get((c, "parley"))) or gen_bound(summary.get((c, other)))
                    r = ratio(pl, get(c, other, field))
                    return r + " † generator-bound" if bound and r != "—" else r
                cells += [vs("floor")] + ([vs("floor-relay")] if relay else [])
                cells += [vs(best[1]) if best[1] else "—"]
            out.append("| " + " | ".join(cells) + " |")
        out.append("")
        out.append(f"[gen N%]: the load generator's CPU (median), † above {GEN_BOUND:.0%}: the cell may "
                   "measure the generator, so its ratios count as neither met nor missed.\n")

    def cpu_table(kind, title, header):
        # Throughput divides by wall time, which other processes on the server's
        # core steal; CPU time per message does not (as much).
        rows = [c for c in cells_in_order if any(summary.get((c, s), {}).get("kind") == kind for s in servers)]
        present = [s for s in servers if any(get(c, s, "server_ns_per_msg") for c in rows)]
        if not rows or not present:
            return
        out.append(f"### {title}\n")
        cols = header + [f"{s} (CPU %)" for s in present]
        out.append("| " + " | ".join(cols) + " |")
        out.append("|" + "---|" * len(cols))
        for c in rows:
            params = dict(kv.split("=") for kv in c.split()[1:])
            cells = [params[h] for h in header]
            for s in present:
                ns, cpu = get(c, s, "server_ns_per_msg"), get(c, s, "server_cpu")
                cells.append("—" if not ns else f"{ns:.0f} ({cpu * 100:.0f}%)")
            out.append("| " + " | ".join(cells) + " |")
        out.append("")

    fan_hdr = ["N", "S"] + (["win"] if any(" win=" in c for c in cells_in_order) else [])
    throughput_table("fanout", "msgs_per_s",
                     "Fan-out, saturating: delivered messages/s (median; in parentheses: ÷ floor)",
                     fan_hdr)
    cpu_table("fanout", "Fan-out: server CPU per delivered message, ns (median; lower is better)", fan_hdr)
    paced = [c for c in cells_in_order if c.startswith("paced")]
    for c in paced:
        out.append(f"### Paced latency, {c[len('paced '):]} msgs/s (median of per-run percentiles)\n")
        out.append("| server | p50 | p99 | p99.9 | max | p99 ÷ floor p99 | achieved publish rate | generator CPU |")
        out.append("|---|---|---|---|---|---|---|---|")
        for s in servers:
            if (c, s) not in summary:
                continue
            out.append("| " + " | ".join([s, fmt_us(get(c, s, "p50_us")), fmt_us(get(c, s, "p99_us")),
                                          fmt_us(get(c, s, "p999_us")), fmt_us(get(c, s, "max_us")),
                                          ratio(get(c, s, "p99_us"), get(c, "floor", "p99_us")),
                                          fmt_rate(get(c, s, "publish_rate")) + "/s",
                                          fmt_gen(summary.get((c, s))).strip(" []") or "—"]) + " |")
        out.append("")
    throughput_table("echo", "rtt_per_s",
                     "Echo: round trips/s, 64-byte payloads (median; in parentheses: ÷ floor)",
                     ["C", "W"])
    cpu_table("echo", "Echo: server CPU per round trip, ns (median; lower is better)", ["C", "W"])
    idle = [c for c in cells_in_order if c.startswith("idle")]
    if idle:
        out.append("### Memory: server RSS growth per idle connection (median)\n")
        out.append("K idle connections (chat: each with a nickname, all in one room); *held after*: "
                   "seconds from the first connect until the server held them all; then one message "
                   "from the first reaches every other (parley-framed servers only): its delivery "
                   "time, send to each read, measured by the one-threaded generator reading them "
                   "in turn.\n")
        out.append(f"*after {args.memory_settle:g} s idle*: the RSS growth again, once the connections "
                   "have been idle that long after the broadcast (a server that gives memory back once "
                   "the load settles shows it there).\n")
        out.append("| server | K | bytes per connection | after " + f"{args.memory_settle:g}"
                   + " s idle | held after | one broadcast: p50 | p99 | max |")
        out.append("|---|---|---|---|---|---|---|---|")
        for s in servers:
            for c in idle:
                v = get(c, s, "bytes_per_conn")
                if v is None:
                    continue
                a = get(c, s, "accept_s")
                out.append("| " + " | ".join([
                    s, f"{int(c.split('=')[1]):,}", f"{v:,.0f}", fmt_bytes(get(c, s, "settled_bytes_per_conn")),
                    f"{a:.1f} s" if a is not None and a >= 0 else "—",
                    fmt_us(get(c, s, "bcast_p50_us")), fmt_us(get(c, s, "bcast_p99_us")),
                    fmt_us(get(c, s, "bcast_max_us"))]) + " |")
        out.append("")
    return "\n".join(out)


def fmt_bytes(v):
    return "—" if v is None or v < 0 else f"{v:,.0f}"


def checks(records):
    """Lines flagging anything that makes a number suspect."""
    lines = []
    for r in records:
        what = []
        if not r.get("ok"):
            what.append(f"error: {r.get('error')}")
        for f in ("lost", "out_of_order", "disconnected", "bad", "undrained"):
            if r.get(f):
                what.append(f"{f}={r[f]}")
        if r.get("drain_timeout"):
            what.append("drain time ran out (undrained messages were still in flight, not lost)")
        if (r.get("loadgen_cpu") or 0) > 0.9:
            what.append(f"load generator at {r['loadgen_cpu']:.0%} of its core: may measure the generator")
        if r["kind"] == "paced" and r.get("publish_rate") and r.get("rate") and \
                r["publish_rate"] < 0.98 * r["rate"]:
            what.append(f"publisher fell behind ({r['publish_rate']:.0f}/s of {r['rate']}/s)")
        if what:
            lines.append(f"- {r['cell']} {r['server']} rep {r['rep']}: " + ", ".join(what))
    return lines


COLOURS = {"floor": "#7f7f7f", "floor-relay": "#bcbd22", "redis": "#d62728", "nats": "#2ca02c", "asio": "#ff7f0e",
           "parley": "#1f77b4"}


def chart(summary, servers, outdir, title):
    """Three panels: fan-out msgs/s, echo round trips/s, paced p99 (log scales)."""
    gp = shutil.which("gnuplot")
    if not gp:
        log("gnuplot not found; no chart")
        return None
    def dat(kind, field, fname, label):
        cells = []
        for (c, s), v in summary.items():
            if v["kind"] == kind and c not in cells:
                cells.append(c)
        present = [s for s in servers if any(summary.get((c, s), {}).get(field) for c in cells)]
        if not cells or not present:
            return None
        path = outdir / fname
        with open(path, "w") as f:
            f.write("# cell " + " ".join(present) + "\n")
            for c in cells:
                vals = []
                for s in present:
                    v = summary.get((c, s), {}).get(field)
                    vals.append("?" if v is None else f"{v:.6g}")
                f.write('"' + label(c) + '" ' + " ".join(vals) + "\n")
        return path, present

    def lab(c):
        return " ".join(c.split()[1:]).replace("S=", "").replace(" R=", " at ") + ("/s" if " R=" in c else "")

    panels = [
        (dat("fanout", "msgs_per_s", "fanout.dat", lab), "Fan-out: delivered msgs/s (higher is better)"),
        (dat("echo", "rtt_per_s", "echo.dat", lab), "Echo: round trips/s (higher is better)"),
        (dat("paced", "p99_us", "paced.dat", lab), "Paced fan-out: p99 latency, µs (lower is better)"),
        (dat("idle", "bytes_per_conn", "memory.dat", lab),
         "Server RSS per idle connection, bytes (lower is better)"),
    ]
    panels = [(p[0][0], p[0][1], p[1]) for p in panels if p[0]]
    if not panels:
        return None
    png = outdir / "chart.png"
    script = [
        f"set terminal pngcairo noenhanced size 1100,{360 * len(panels) + 60} font 'sans,9'",
        f"set output '{png}'",
        "set datafile missing '?'",
        "set style data histogram",
        "set style histogram clustered gap 1",
        "set style fill solid 0.85 border -1",
        "set logscale y",
        "set grid ytics",
        "set key outside right top",
        "set format y '%.0s%c'",
        f"set multiplot layout {len(panels)},1 title \"{title}\"",
    ]
    for path, present, ttl in panels:
        # one colour per server across panels
        cols = ", ".join(
            (f"'{path}' using {i + 2}:xtic(1)" if i == 0 else f"'' using {i + 2}") +
            f" title '{s}' lc rgb '{COLOURS.get(s, '#808080')}'"
            for i, s in enumerate(present))
        # memory values span 100 B..100 kB: keep the smallest bars visible
        yr = "set yrange [10:*]" if path.name == "memory.dat" else "set yrange [*:*]"
        script += [f"set title \"{ttl}\"", yr, f"plot {cols}"]
    script.append("unset multiplot")
    (outdir / "chart.gp").write_text("\n".join(script) + "\n")
    r = subprocess.run([gp, str(outdir / "chart.gp")], capture_output=True, text=True)
    if r.returncode:
        log("gnuplot failed:", r.stderr[-500:])
        return None
    return png


def machine():
    cpu = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "?"
    try:
        kb = int(open("/proc/meminfo").readline().split()[1])
        mem = f"{kb / 1048576:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    rev = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                         capture_output=True, text=True).stdout.strip()
    load = os.getloadavg()
    return {"cpu": cpu, "cores": os.cpu_count(), "memory": mem, "kernel": platform.release(),
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "git": rev, "loadavg_at_start": f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"}


# --------------------------------------------------------------------- main
def parse_args():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="short cells, one repetition")
    ap.add_argument("--servers", default=None,
                    help="comma list from floor,floor-relay,redis,nats,asio,parley (default: all available)")
    ap.add_argument("--scenarios", default="fanout,paced,echo,memory")
    ap.add_argument("--parley-broadcast", metavar="PATH", help="parley broadcast_server executable")
    ap.add_argument("--parley-echo", metavar="PATH", help="parley echo_server executable")
    ap.add_argument("--parley-chat", metavar="PATH",
                    help="parley chat_server executable (memory cells: named clients)")
    ap.add_argument("--parley-broadcast-args", default="", metavar="ARGS",
                    help="extra arguments for the parley broadcast server (e.g. '--threads 2')")
    ap.add_argument("--parley-echo-args", default="--quiet", metavar="ARGS",
                    help="extra arguments for the parley echo server (default --quiet: it would "
                         "print every frame)")
    ap.add_argument("--no-parley-greeting", dest="parley_greeting", action="store_false",
                    help="parley's echo_server sends no greeting frame")
    ap.add_argument("--with-echo", action="store_true",
                    help="floor/parley broadcast also deliver to the sender (default: --no-echo)")
    ap.add_argument("--reps", type=int, default=None, help="repetitions (default 3, quick 1)")
    ap.add_argument("--warmup", type=float, default=None, help="seconds (default 1, quick 0.5)")
    ap.add_argument("--duration", type=float, default=None, help="seconds (default 5, quick 1.5)")
    ap.add_argument("--fanout-n", default="10,100,1000")
    ap.add_argument("--fanout-s", default="64,512")
    ap.add_argument("--paced-n", type=int, default=100)
    ap.add_argument("--rate", type=int, default=2000, help="paced publishes/s")
    ap.add_argument("--window", default="0",
                    help="fan-out window in messages, or a comma list to sweep (0: loadgen's default)")
    ap.add_argument("--memory-k", default="1000,10000,19800",
                    help="idle connections per memory cell (at most the descriptor hard limit - 200)")
    ap.add_argument("--memory-settle", type=float, default=10, metavar="SEC",
                    help="memory cells: hold the idle connections this long, then read the server's "
                         "RSS again (default 10; 0: no second reading)")
    ap.add_argument("--server-cpu", default="0", help="taskset -c list for servers (e.g. 0 or 0,1)")
    ap.add_argument("--client-cpu", default="1", help="taskset -c list for the load generator")
    ap.add_argument("--nice", type=int, default=0, help="run server and loadgen under nice -n N")
    ap.add_argument("--build-dir", default=str(REPO / "build" / "bench"))
    ap.add_argument("--out", default=None, help="results directory (default build/bench/results/TIME)")
    ap.add_argument("--cc", default=os.environ.get("CC", "cc"))
    ap.add_argument("--cxx", default=os.environ.get("CXX", "g++"))
    a = ap.parse_args()
    a.reps = a.reps or (1 if a.quick else 3)
    a.warmup = a.warmup if a.warmup is not None else (0.5 if a.quick else 1.0)
    a.duration = a.duration if a.duration is not None else (1.5 if a.quick else 5.0)
    a.fanout_n = [int(x) for x in a.fanout_n.split(",") if x]
    a.fanout_s = [int(x) for x in a.fanout_s.split(",") if x]
    a.memory_k = [int(x) for x in a.memory_k.split(",") if x]
    a.window = [int(x) for x in a.window.split(",") if x] or [0]
    a.scenarios = [s for s in a.scenarios.split(",") if s]
    for s in a.scenarios:
        if s not in ("fanout", "paced", "echo", "memory"):
            ap.error(f"unknown scenario {s}")
    if a.servers:
        a.servers = [s for s in a.servers.split(",") if s]
    else:
        a.servers = [s for s in ALL_SERVERS if s not in ("parley", "chat")]
        if a.parley_broadcast or a.parley_echo:
            a.servers.append("parley")
        if a.parley_chat:
            a.servers.append("chat")
    for s in a.servers:
        if s not in ALL_SERVERS:
            ap.error(f"unknown server {s}")
    if "parley" in a.servers and not (a.parley_broadcast or a.parley_echo):
        ap.error("--servers parley needs --parley-broadcast PATH and/or --parley-echo PATH")
    if "chat" in a.servers and not a.parley_chat:
        ap.error("--servers chat needs --parley-chat PATH")
    for exe, name in (("redis-server", "redis"), ("nats-server", "nats")):
        if name in a.servers and not shutil.which(exe):
            log(f"{exe} not found: skipping {name}")
            a.servers.remove(name)
    allowed = os.sched_getaffinity(0)
    for opt in (a.server_cpu, a.client_cpu):
        try:
            cpus = {int(c) for part in opt.split(",") for c in
                    (range(int(part.split("-")[0]), int(part.split("-")[-1]) + 1))}
        except ValueError:
            ap.error(f"bad CPU list {opt!r}")
        if not cpus <= allowed:
            ap.error(f"CPU list {opt!r} is not within this machine's CPUs {sorted(allowed)}")
    return a


def main():
    args = parse_args()
    # Thousands of sockets on each side: take the hard descriptor limit.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    too_many = [k for k in args.memory_k if k + 200 > hard]
    if too_many and "memory" in args.scenarios:
        log(f"descriptor hard limit {hard} is too low for K={too_many}; skipping those")
        args.memory_k = [k for k in args.memory_k if k not in too_many]
    bdir = build(args)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    outdir = Path(args.out) if args.out else bdir / "results" / stamp
    logdir = outdir / "logs"
    logdir.mkdir(parents=True, exist_ok=True)
    meta = machine()
    meta["command"] = "bench/run.py " + shlex.join(sys.argv[1:])
    meta["servers"] = args.servers
    meta.update(reps=args.reps, warmup=args.warmup, duration=args.duration)
    (outdir / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
    log(f"results in {outdir}")
    log(f"machine: {meta['cpu']}, {meta['cores']} cores, load {meta['loadavg_at_start']}")

    records = []
    jsonl = open(outdir / "results.jsonl", "w")
    plan = cells(args)
    try:
        for rep in range(args.reps):
            for kind, p in plan:
                log(f"[rep {rep + 1}/{args.reps}] {cell_key(kind, p)}")
                # alternate servers within the cell; rotate the order each repetition
                order = args.servers[rep % len(args.servers):] + args.servers[:rep % len(args.servers)]
                for name in order:
                    rec = run_one(bdir, kind, p, name, rep, args, logdir)
                    if rec is None:
                        continue
                    records.append(rec)
                    jsonl.write(json.dumps(rec) + "\n")
                    jsonl.flush()
    except KeyboardInterrupt:
        log("interrupted; reporting what ran")
    jsonl.close()

    summary = summarize(records)
    with open(outdir / "summary.tsv", "w") as f:
        fields = ["cell", "server", "runs", "ok_runs", "msgs_per_s", "mb_per_s", "rtt_per_s", "p50_us",
                  "p99_us", "p999_us", "max_us", "bytes_per_conn", "publish_rate", "server_cpu",
                  "server_ns_per_msg", "loadgen_cpu", "loadgen_ns_per_msg", "lost", "undrained",
                  "out_of_order", "disconnected", "bad"]
        f.write("\t".join(fields) + "\n")
        for s in summary.values():
            f.write("\t".join("" if s.get(k) is None else str(s.get(k)) for k in fields) + "\n")
    md = [f"Machine: {meta['cpu']}, {meta['cores']} cores, {meta['memory']}, Linux {meta['kernel']}; "
          f"{meta['date']}; git {meta['git']}; load average at start {meta['loadavg_at_start']}.",
          f"Command: `{meta['command']}` ({args.reps} repetition(s), {args.warmup}s warm-up + "
          f"{args.duration}s measured per run; server on CPU {args.server_cpu}, load generator on "
          f"CPU {args.client_cpu}).", "", tables(summary, args.servers, args)]
    problems = checks(records)
    md.append("### Checks\n")
    md += problems if problems else ["No losses, reordering, disconnections or errors."]
    text = "\n".join(md) + "\n"
    (outdir / "tables.md").write_text(text)
    png = chart(summary, args.servers, outdir,
                f"{meta['cpu']}, {meta['cores']} cores, {meta['date']} ({args.reps} rep(s), medians)")
    print(text)
    print(f"results: {outdir}" + (f"\nchart: {png}" if png else ""))
    return 1 if any(not r.get("ok") for r in records) else 0


if __name__ == "__main__":
    sys.exit(main())
