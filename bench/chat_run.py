#!/usr/bin/env python3
"""The chat fan-out: parley's chat_server beside real chat servers; see bench/README.md.

    bench/chat_run.py --quick       # one repetition, short cells (< 8 minutes)
    bench/chat_run.py               # 3 repetitions, medians

One publisher and N subscribers in one room or channel, every server started
fresh for every run on a free loopback port, pinned to CPU 0 (the load
generator to CPU 1): chat_server's framed and line ports with 1 and 2 I/O
threads, InspIRCd and ngircd (IRC), Asio's chat example, Redis pub/sub and
parley's broadcast_server (the upper bound: no nicknames, no rooms, no JSON).
Prints markdown tables (also written to --out with JSONL, TSV and a gnuplot
chart). Reuses bench/run.py's building, server handling and reporting.
Python 3 standard library only.
"""
import argparse
import datetime
import json
import os
import resource
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run  # noqa: E402  (bench/run.py)

BENCH = run.BENCH
REPO = run.REPO
CHAT = ("chat", "chat-2t", "chatline", "chatline-2t")
PEERS = ("inspircd", "ngircd", "redis")       # the targets compare against the best of these
OTHERS = ("asio", "broadcast")
ALL_SERVERS = CHAT + ("inspircd", "ngircd", "asio", "redis", "broadcast")
# Not in the default set: "chat" with --history-db (a fresh SQLite file per run), for the cost
# of storing every message (docs/BENCHMARKS.md, issue 14).
EXTRA = ("chat-db",)
IRC_OPER = "bench bench"                        # bench/chatpeers/inspircd.conf.in
log = run.log

run.COLOURS.update({
    "chat": "#1f77b4", "chat-2t": "#17becf", "chatline": "#9467bd", "chatline-2t": "#e377c2",
    "inspircd": "#8c564b", "ngircd": "#bcbd22", "redis": "#d62728", "asio": "#ff7f0e",
    "broadcast": "#2ca02c", "chat-db": "#aec7e8"})


def irc_config(name, port, bdir):
    """Writes NAME's config for PORT from bench/chatpeers/NAME.conf.in; returns its path."""
    d = bdir / "chat" / f"{name}-{port}"
    d.mkdir(parents=True, exist_ok=True)
    (d / "motd.txt").write_text("parley chat benchmark\n")
    text = (BENCH / "chatpeers" / f"{name}.conf.in").read_text()
    conf = d / f"{name}.conf"
    conf.write_text(text.replace("@PORT@", str(port)).replace("@DIR@", str(d)))
    return conf


def spec(name, args, bdir):
    if name in CHAT or name == "chat-db":
        threads = "2" if name.endswith("-2t") else "1"
        argv = [str(Path(args.chat_server).resolve()), "--host", "127.0.0.1", "--port", "0",
                "--flood-rate", "0", "--max-clients", "5000", "--max-per-address", "0",
                "--idle-timeout", "0", "--ping-interval", "0", "--threads", threads]
        argv += ["--line-port", "0"] if name.startswith("chatline") else ["--no-line-mode"]
        argv += ["--no-web"]
        if name == "chat-db":
            d = bdir / "chat" / "history-db"
            d.mkdir(parents=True, exist_ok=True)
            for old in d.glob("run-*.db*"):
                old.unlink()
            argv += ["--history-db", str(d / f"run-{time.time_ns()}.db")]
        return run.ServerSpec(argv, "chatline" if name.startswith("chatline") else "chat")
    if name == "broadcast":
        return run.ServerSpec([str(Path(args.broadcast_server).resolve()), "--port", "0", "--no-echo"],
                              "parley")
    if name == "inspircd":
        p = run.free_port()
        conf = irc_config("inspircd", p, bdir)
        return run.ServerSpec(["inspircd", "--nofork", "--runasroot", "--config", str(conf)], "irc", p)
    if name == "ngircd":
        p = run.free_port()
        conf = irc_config("ngircd", p, bdir)
        return run.ServerSpec(["ngircd", "--nodaemon", "--config", str(conf)], "irc", p)
    if name == "redis":
        p = run.free_port()
        return run.ServerSpec(["redis-server", "--port", str(p), "--bind", "127.0.0.1", "--save", "",
                               "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning",
                               "--maxclients", "11000"], "resp", p)
    if name == "asio":
        p = run.free_port()
        return run.ServerSpec([str(bdir / "asio_chat_server"), str(p)], "asiochat", p)
    raise SystemExit(f"unknown server {name!r}")


class Server(run.Server):
    """run.Server that also notes chat_server's "line mode on HOST:PORT" line."""

    def __init__(self, name, sp, logpath, args):
        self.line_mode = None
        cpu = args.server_cpu_2t if name.endswith("-2t") else args.server_cpu
        super().__init__(name, sp, logpath, argparse.Namespace(server_cpu=cpu, nice=args.nice))

    def _read(self):
        # Wrap the pipe so the base reader sees every line and we see it first.
        proc_stdout = self.proc.stdout

        class Tap:
            def __iter__(tap):
                for raw in proc_stdout:
                    line = raw.decode(errors="replace")
                    if self.line_mode is None and line.startswith("line mode on "):
                        self.line_mode = line[len("line mode on "):].strip()
                    yield raw
        self.proc.stdout = Tap()
        super()._read()

    def wait_line_port(self, timeout=10.0):
        deadline = time.monotonic() + timeout
        while self.line_mode is None and time.monotonic() < deadline and self.alive():
            time.sleep(0.02)
        if self.line_mode is None:
            raise RuntimeError(f"no 'line mode on' line: {self.tail()}")
        self.port = int(self.line_mode.rpartition(":")[2])


def cells(args):
    out = []
    if "fanout" in args.scenarios:
        for n in args.fanout_n:
            for s in args.fanout_s:
                for w in args.window:
                    out.append(("fanout", {"subs": n, "size": s, "win": w}))
    if "paced" in args.scenarios:
        out.append(("paced", {"subs": args.paced_n, "size": 64, "rate": args.rate}))
    return out


def cell_key(kind, p):
    key = f"{kind} N={p['subs']} S={p['size']}" + (f" R={p['rate']}" if kind == "paced" else "")
    if kind == "fanout" and len(ARGS.window) > 1:
        key += f" win={p['win']}"
    return key


def loadgen_argv(bdir, kind, p, srv, args):
    argv = ["taskset", "-c", str(args.client_cpu), str(bdir / "loadgen"), "fanout",
            "--proto", srv.sp.proto, "--host", srv.host, "--port", str(srv.port), "--label", srv.name,
            "--subs", str(p["subs"]), "--size", str(p["size"]), "--server-pid", str(srv.pid),
            "--warmup", str(args.warmup), "--duration", str(args.duration),
            "--connect-timeout", "30", "--ready-timeout", "120"]
    if args.nice:
        argv = ["nice", "-n", str(args.nice)] + argv
    if kind == "paced":
        argv += ["--rate", str(p["rate"])]
    elif p.get("win"):
        argv += ["--window", str(p["win"])]
    if srv.name == "inspircd":
        argv += ["--irc-oper", IRC_OPER]
    return argv


def run_one(bdir, kind, p, name, rep, args, logdir):
    if name == "asio" and p["size"] > 512:
        return None
    sp = spec(name, args, bdir)
    load = open("/proc/loadavg").read().split()[:3]
    rec = {"cell": cell_key(kind, p), "kind": kind, "server": name, "rep": rep,
           "loadavg": " ".join(load), **p}
    tag = f"{rec['cell'].replace(' ', '_')}_{name}_r{rep}"
    srv = None
    attempts = 3 if sp.port is not None else 1
    for attempt in range(attempts):
        srv = Server(name, sp, logdir / f"{tag}.server.log", args)
        try:
            srv.wait_ready()
            if name.startswith("chatline"):
                srv.wait_line_port()
            break
        except RuntimeError as e:
            srv.stop()
            if attempt == attempts - 1:
                rec.update(ok=False, error=f"server start: {e}")
                return rec
            sp = spec(name, args, bdir)
    try:
        argv = loadgen_argv(bdir, kind, p, srv, args)
        budget = 200 + args.warmup + args.duration
        try:
            cp = subprocess.run(argv, capture_output=True, text=True, timeout=budget)
            out, err, rc = cp.stdout, cp.stderr, cp.returncode
        except subprocess.TimeoutExpired as e:
            out = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
            err, rc = f"loadgen exceeded {budget:.0f}s", -1
        js = [line for line in out.splitlines() if line.startswith("{")]
        human = [line for line in out.splitlines() if line and not line.startswith("{")]
        if js:
            rec.update(json.loads(js[-1]))
        else:
            rec.update(ok=False, error=(err.strip() or f"loadgen exit {rc}")[-300:])
        rec["server"] = name
        rec["loadgen_rc"] = rc
        if not srv.alive():
            rec["ok"] = False
            rec["error"] = (rec.get("error") or "") + f" [server died: {srv.tail()}]"
        log(f"  {name:11s} {human[0] if human else rec.get('error')}  (load {rec['loadavg']})")
        (logdir / f"{tag}.loadgen.log").write_text(shlex.join(argv) + "\n" + out + err)
    finally:
        srv.stop()
    return rec


# ---------------------------------------------------------------- reporting
def gen_bound(s):
    return (s.get("loadgen_cpu") or 0) > 0.9


def tables(summary, servers, args):
    cells_in_order = []
    for (cell, _), _s in summary.items():
        if cell not in cells_in_order:
            cells_in_order.append(cell)

    def get(cell, server, field):
        s = summary.get((cell, server))
        return s.get(field) if s else None

    out = []
    fan = [c for c in cells_in_order if c.startswith("fanout")]
    present = [s for s in servers if any((c, s) in summary for c in fan)]
    peers = [s for s in PEERS if s in present]
    if fan and present:
        out.append("### Saturating fan-out: messages/s delivered to subscribers (medians)\n")
        out.append("`*` = the load generator used over 90 % of its core in that cell (generator-bound); "
                   "`!` = a run of that cell lost messages, disconnected or failed (see *Checks*).\n")
        cols = ["N", "S"] + present + ["best of " + "/".join(peers), "chat ÷ best peer",
                                       "chat ÷ broadcast"]
        out.append("| " + " | ".join(cols) + " |")
        out.append("|" + "---|" * len(cols))
        for c in fan:
            params = dict(kv.split("=") for kv in c.split()[1:])
            row = [params["N"], params["S"] + (f" w{params['win']}" if "win" in params else "")]
            for s in present:
                sm = summary.get((c, s))
                if not sm:
                    row.append("—")
                    continue
                flag = ("*" if gen_bound(sm) else "") + (
                    "!" if (sm["ok_runs"] < sm["runs"] or sm["lost"] or sm["disconnected"]) else "")
                row.append(run.fmt_rate(sm["msgs_per_s"]) + flag)
            pv = [(get(c, p, "msgs_per_s"), p) for p in peers if get(c, p, "msgs_per_s")]
            best = max(pv) if pv else (None, None)
            row.append(f"{best[1]} {run.fmt_rate(best[0])}" if best[1] else "—")
            ch = get(c, "chat", "msgs_per_s")
            row += [run.ratio(ch, best[0]), run.ratio(ch, get(c, "broadcast", "msgs_per_s"))]
            out.append("| " + " | ".join(row) + " |")
        out.append("")

        out.append("### Saturating fan-out: server CPU per delivered message, ns (server CPU % / load generator CPU %)\n")
        cols = ["N", "S"] + present
        out.append("| " + " | ".join(cols) + " |")
        out.append("|" + "---|" * len(cols))
        for c in fan:
            params = dict(kv.split("=") for kv in c.split()[1:])
            row = [params["N"], params["S"] + (f" w{params['win']}" if "win" in params else "")]
            for s in present:
                ns, cpu, lg = get(c, s, "server_ns_per_msg"), get(c, s, "server_cpu"), get(c, s, "loadgen_cpu")
                row.append("—" if not ns or ns < 0 else f"{ns:.0f} ({cpu * 100:.0f}% / {lg * 100:.0f}%)")
            out.append("| " + " | ".join(row) + " |")
        out.append("")

    paced = [c for c in cells_in_order if c.startswith("paced")]
    if paced:
        out.append("### Paced fan-out: latency publish → subscriber (medians)\n")
        cols = ["cell", "server", "p50", "p99", "p99.9", "achieved publishes/s", "server CPU",
                "load generator CPU"]
        out.append("| " + " | ".join(cols) + " |")
        out.append("|" + "---|" * len(cols))
        for c in paced:
            for s in servers:
                sm = summary.get((c, s))
                if not sm:
                    continue
                out.append("| " + " | ".join([
                    " ".join(c.split()[1:]), s, run.fmt_us(sm["p50_us"]), run.fmt_us(sm["p99_us"]),
                    run.fmt_us(sm["p999_us"]),
                    f"{sm['publish_rate']:.0f}" if sm["publish_rate"] else "—",
                    f"{sm['server_cpu'] * 100:.0f}%" if sm["server_cpu"] is not None else "—",
                    f"{sm['loadgen_cpu'] * 100:.0f}%" if sm["loadgen_cpu"] is not None else "—"]) + " |")
        out.append("")

    # The targets, cell by cell.
    if fan and "chat" in present:
        out.append("### Targets (chat_server framed port, 1 thread)\n")
        out.append("By messages/s, as the issue sets them; the last two columns apply the same ratios "
                   "to server CPU per delivery (the leanest peer's ns ÷ chat's), which a busy machine "
                   "disturbs less.\n")
        out.append("| cell | chat ≥ 2× best of InspIRCd, ngircd, Redis | chat ≥ ½ broadcast_server "
                   "| by CPU: ≥ 2× leanest peer | by CPU: ≥ ½ broadcast |")
        out.append("|---|---|---|---|---|")
        for c in fan:
            ch = get(c, "chat", "msgs_per_s")
            pv = [(get(c, p, "msgs_per_s"), p) for p in peers if get(c, p, "msgs_per_s")]
            best = max(pv) if pv else (None, None)
            bc = get(c, "broadcast", "msgs_per_s")

            def verdict(r, need):
                if r is None:
                    return "—"
                return f"{'met' if r >= need else 'missed'} ({r:.2f}×)"
            cns = get(c, "chat", "server_ns_per_msg")
            pns = [get(c, p, "server_ns_per_msg") for p in peers]
            pns = [v for v in pns if v and v > 0]
            bns = get(c, "broadcast", "server_ns_per_msg")
            out.append(f"| {' '.join(c.split()[1:])} | "
                       f"{verdict(ch / best[0] if ch and best[0] else None, 2.0)} | "
                       f"{verdict(ch / bc if ch and bc else None, 0.5)} | "
                       f"{verdict(min(pns) / cns if pns and cns and cns > 0 else None, 2.0)} | "
                       f"{verdict(bns / cns if bns and cns and cns > 0 and bns > 0 else None, 0.5)} |")
        if paced:
            for c in paced:
                a, b = get(c, "chat", "p99_us"), get(c, "inspircd", "p99_us")
                if a and b:
                    out.append(f"| {' '.join(c.split()[1:])} p99 ≤ InspIRCd's | "
                               f"{'met' if a <= b else 'missed'} ({run.fmt_us(a)} against {run.fmt_us(b)}) | | | |")
        out.append("")
    return "\n".join(out)


def checks(records):
    lines = run.checks(records)
    for r in records:
        if r.get("nudges"):
            lines.append(f"- {r['cell']} {r['server']} rep {r['rep']}: {r['nudges']} PING nudges "
                         "(the server left the publisher's lines unread with the window full)")
    return lines


def chart(summary, servers, outdir, title, extra=()):
    """gnuplot PNG: msgs/s, server CPU per delivery, paced p99 (log scales), then any `extra`
    panels, each (kind, field, data file name, title)."""
    gp = shutil.which("gnuplot")
    if not gp:
        log("gnuplot not found (apt-get install gnuplot-nox); no chart")
        return None

    def lab(c):
        return " ".join(c.split()[1:]).replace("S=", "").replace(" R=", " at ") + ("/s" if " R=" in c else "")

    def dat(kind, field, fname):
        cells = []
        for (c, _s), v in summary.items():
            if v["kind"] == kind and c not in cells:
                cells.append(c)
        present = [s for s in servers if any((summary.get((c, s), {}).get(field) or 0) > 0 for c in cells)]
        if not cells or not present:
            return None
        path = outdir / fname
        with open(path, "w") as f:
            f.write("# cell " + " ".join(present) + "\n")
            for c in cells:
                vals = []
                for s in present:
                    v = summary.get((c, s), {}).get(field)
                    vals.append("?" if v is None or v <= 0 else f"{v:.6g}")
                f.write('"' + lab(c) + '" ' + " ".join(vals) + "\n")
        return path, present

    panels = [(dat("fanout", "msgs_per_s", "fanout.dat"), "Saturating fan-out: delivered msgs/s (higher is better)"),
              (dat("fanout", "server_ns_per_msg", "cpu.dat"),
               "Server CPU per delivered message, ns (lower is better; steadier than msgs/s on a busy machine)"),
              (dat("paced", "p99_us", "paced.dat"), "Paced fan-out: p99 latency, µs (lower is better)")]
    panels += [(dat(kind, field, fname), ttl) for kind, field, fname, ttl in extra]
    panels = [(p[0][0], p[0][1], p[1]) for p in panels if p[0]]
    if not panels:
        return None
    png = outdir / "chart.png"
    script = [f"set terminal pngcairo noenhanced size 1100,{330 * len(panels) + 60} font 'sans,9'",
              f"set output '{png}'", "set datafile missing '?'", "set style data histogram",
              "set style histogram clustered gap 1", "set style fill solid 0.85 border -1",
              "set logscale y", "set grid ytics", "set key outside right top", "set format y '%.0s%c'",
              f"set multiplot layout {len(panels)},1 title \"{title}\""]
    for path, present, ttl in panels:
        cols = ", ".join((f"'{path}' using {i + 2}:xtic(1)" if i == 0 else f"'' using {i + 2}") +
                         f" title '{s}' lc rgb '{run.COLOURS.get(s, '#808080')}'" for i, s in enumerate(present))
        # A log axis autoscaled to the decade below the smallest bar would hide it.
        vals = [float(v) for line in open(path).read().splitlines()[1:]
                for v in line.rsplit('"', 1)[1].split() if v != "?"]
        low = f"{min(vals) / 2:.6g}" if vals else "*"
        script += [f"set title \"{ttl}\"", f"set yrange [{low}:*]", f"plot {cols}"]
    script.append("unset multiplot")
    (outdir / "chart.gp").write_text("\n".join(script) + "\n")
    r = subprocess.run([gp, str(outdir / "chart.gp")], capture_output=True, text=True)
    if r.returncode:
        log("gnuplot failed:", r.stderr[-500:])
        return None
    return png


# --------------------------------------------------------------------- main
def parse_args():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="short cells, one repetition (< 8 minutes)")
    ap.add_argument("--servers", default=",".join(ALL_SERVERS),
                    help="comma list from " + ",".join(ALL_SERVERS + EXTRA))
    ap.add_argument("--scenarios", default="fanout,paced")
    ap.add_argument("--chat-server", default=str(REPO / "build/default/examples/chat_server"))
    ap.add_argument("--broadcast-server", default=str(REPO / "build/default/examples/broadcast_server"))
    ap.add_argument("--reps", type=int, default=None, help="repetitions (default 3, quick 1)")
    ap.add_argument("--warmup", type=float, default=None, help="seconds (default 1, quick 0.5)")
    ap.add_argument("--duration", type=float, default=None, help="seconds (default 4, quick 1.5)")
    ap.add_argument("--fanout-n", default="10,100,1000")
    ap.add_argument("--fanout-s", default="64,450")
    ap.add_argument("--paced-n", type=int, default=100)
    ap.add_argument("--rate", type=int, default=2000, help="paced publishes/s")
    ap.add_argument("--window", default="64",
                    help="messages in flight ahead of the slowest subscriber, the same for every "
                         "server (a comma list sweeps; 0 = loadgen's default)")
    ap.add_argument("--server-cpu", default="0", help="taskset -c list for the servers")
    ap.add_argument("--server-cpu-2t", default="0,1",
                    help="taskset -c list for chat_server --threads 2 (default 0,1: on 2 cores the "
                         "second thread shares the generator's core)")
    ap.add_argument("--client-cpu", default="1", help="taskset -c list for the load generator")
    ap.add_argument("--nice", type=int, default=0)
    ap.add_argument("--build-dir", default=str(REPO / "build" / "bench"))
    ap.add_argument("--out", default=None, help="results directory (default build/bench/chat-results/TIME)")
    ap.add_argument("--cc", default=os.environ.get("CC", "cc"))
    ap.add_argument("--cxx", default=os.environ.get("CXX", "g++"))
    ap.add_argument("--report", metavar="DIR",
                    help="run nothing: rebuild DIR's tables.md and chart from its results.jsonl")
    a = ap.parse_args()
    a.reps = a.reps or (1 if a.quick else 3)
    a.warmup = a.warmup if a.warmup is not None else (0.5 if a.quick else 1.0)
    a.duration = a.duration if a.duration is not None else (1.5 if a.quick else 4.0)
    a.fanout_n = [int(x) for x in a.fanout_n.split(",") if x]
    a.fanout_s = [int(x) for x in a.fanout_s.split(",") if x]
    a.window = [int(x) for x in a.window.split(",") if x] or [64]
    a.scenarios = [s for s in a.scenarios.split(",") if s]
    a.servers = [s for s in a.servers.split(",") if s]
    for s in a.servers:
        if s not in ALL_SERVERS + EXTRA:
            ap.error(f"unknown server {s}")
    need = {"inspircd": "inspircd", "ngircd": "ngircd", "redis": "redis-server"}
    for name, exe in need.items():
        if name in a.servers and not shutil.which(exe):
            log(f"{exe} not found (apt-get install {name if name != 'redis' else 'redis-server'}): "
                f"skipping {name}")
            a.servers.remove(name)
    for name, path in (("chat", a.chat_server), ("broadcast", a.broadcast_server)):
        if not Path(path).is_file():
            drop = [s for s in a.servers if s == name or (name == "chat" and s in CHAT + EXTRA)]
            if drop:
                log(f"{path} not found (cmake --build --preset default --target "
                    f"{'chat_server' if name == 'chat' else 'broadcast_server'}): skipping {','.join(drop)}")
                a.servers = [s for s in a.servers if s not in drop]
    return a


ARGS = None


def main():
    global ARGS
    args = ARGS = parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if args.report:
        outdir = Path(args.report)
        meta = json.loads((outdir / "meta.json").read_text())
        records = [json.loads(x) for x in (outdir / "results.jsonl").read_text().splitlines() if x]
        args.servers = [s for s in meta["servers"] if any(r["server"] == s for r in records)]
        args.window = meta.get("window", args.window)
        for k in ("reps", "warmup", "duration", "server_cpu", "server_cpu_2t", "client_cpu"):
            if k in meta:
                setattr(args, k, meta[k])
        return report(args, meta, records, outdir)
    bdir = run.build(args)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    outdir = Path(args.out) if args.out else bdir / "chat-results" / stamp
    logdir = outdir / "logs"
    logdir.mkdir(parents=True, exist_ok=True)
    meta = run.machine()
    meta["command"] = "bench/chat_run.py " + shlex.join(sys.argv[1:])
    meta["servers"] = args.servers
    meta.update(reps=args.reps, warmup=args.warmup, duration=args.duration, window=args.window,
                server_cpu=args.server_cpu, server_cpu_2t=args.server_cpu_2t, client_cpu=args.client_cpu)
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
                k = rep % len(args.servers)
                for name in args.servers[k:] + args.servers[:k]:
                    rec = run_one(bdir, kind, p, name, rep, args, logdir)
                    if rec is None:
                        continue
                    records.append(rec)
                    jsonl.write(json.dumps(rec) + "\n")
                    jsonl.flush()
    except KeyboardInterrupt:
        log("interrupted; reporting what ran")
    jsonl.close()
    return report(args, meta, records, outdir)


def report(args, meta, records, outdir):
    summary = run.summarize(records)
    with open(outdir / "summary.tsv", "w") as f:
        fields = ["cell", "server", "runs", "ok_runs", "msgs_per_s", "mb_per_s", "p50_us", "p99_us",
                  "p999_us", "max_us", "publish_rate", "server_cpu", "server_ns_per_msg", "loadgen_cpu",
                  "lost", "undrained", "out_of_order", "disconnected", "bad"]
        f.write("\t".join(fields) + "\n")
        for s in summary.values():
            f.write("\t".join("" if s.get(k) is None else str(s.get(k)) for k in fields) + "\n")
    loads = sorted(float(r["loadavg"].split()[0]) for r in records if r.get("loadavg"))
    md = [f"Machine: {meta['cpu']}, {meta['cores']} cores, {meta['memory']}, Linux {meta['kernel']}; "
          f"{meta['date']}; git {meta['git']}; load average at start {meta['loadavg_at_start']}"
          + (f"; 1-minute load average over the runs {loads[0]:.2f}–{loads[-1]:.2f}" if loads else "")
          + ".",
          f"Command: `{meta['command']}` ({args.reps} repetition(s), {args.warmup}s warm-up + "
          f"{args.duration}s measured per run; window {','.join(map(str, args.window))} messages; "
          f"servers on CPU {args.server_cpu} (`-2t`: {args.server_cpu_2t}), load generator on CPU "
          f"{args.client_cpu}).", "", tables(summary, args.servers, args)]
    problems = checks(records)
    md.append("### Checks\n")
    md += problems if problems else ["No losses, reordering, disconnections or errors."]
    text = "\n".join(md) + "\n"
    (outdir / "tables.md").write_text(text)
    png = chart(summary, args.servers, outdir,
                    f"chat fan-out: {meta['cpu']}, {meta['cores']} cores, {meta['date']} "
                    f"({args.reps} rep(s), medians)")
    print(text)
    print(f"results: {outdir}" + (f"\nchart: {png}" if png else ""))
    return 1 if any(not r.get("ok") for r in records) else 0


if __name__ == "__main__":
    sys.exit(main())
