#!/usr/bin/env python3
"""The WebSocket fan-out: chat_server's web port beside WebSocket servers others wrote; see bench/README.md.

    bench/ws_run.py --quick       # one repetition, short cells (~6 minutes)
    bench/ws_run.py               # 3 repetitions, medians

One publisher and N subscribers, every server started fresh for every run on a
free loopback port pinned to CPU 0 (the load generator to CPU 1):

  chat-ws   parley's chat_server, web port (GET /ws): nickname first, text
            inputs in, JSON events out (one WebSocket text message each)
  chat      the same chat_server's framed port, same cells: the reference of
            the target "WebSocket >= half of the framed port"
  beast     Boost.Beast's websocket/server/chat-multi example (bench/peers/build_beast.sh)
  node-ws   a Node `ws` broadcast server (bench/ws/ws_broadcast.mjs, ws pinned in bench/ws)
  lws       libwebsockets' test server (Debian libwebsockets-test-server), its
            lws-mirror-protocol: paced and memory cells only (see bench/README.md)

Saturating fan-out (N x S), paced fan-out (N x 64 bytes, the same deliveries/s
for every N) and the memory of K idle WebSocket connections. Prints markdown
tables (also written to --out with JSONL, TSV and a gnuplot chart). Reuses
bench/run.py's server handling and bench/chat_run.py's chart. Python 3
standard library only.
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
import chat_run  # noqa: E402  (bench/chat_run.py: its chart)

BENCH = run.BENCH
REPO = run.REPO
PEERS = ("beast", "node-ws", "lws")      # the targets compare against the best of these
ALL_SERVERS = ("chat-ws", "chat") + PEERS
# memory scenario only: chat-ws connections that also took a nickname (named
# clients, all in "lobby", every join announced to the room).
MEMORY_EXTRA = ("chat-ws-named",)
log = run.log

run.COLOURS.update({"chat-ws": "#1f77b4", "chat-ws-named": "#17becf", "chat": "#9467bd",
                    "beast": "#ff7f0e", "node-ws": "#2ca02c", "lws": "#d62728"})

# What each server does per published message (docs/BENCHMARKS.md repeats it).
PER_MESSAGE = {
    "chat-ws": "parses the input, wraps the text in a JSON `message` event (room, sender, seq, time), "
               "encodes one unmasked frame shared by every recipient, also sends it to the sender",
    "chat": "the same, framed (4-byte length) instead of a WebSocket frame",
    "beast": "copies the message into one shared string, posts a send to each session's strand, "
             "also sends it to the sender (N+1 writes; N counted)",
    "node-ws": "`client.send(data)` to every other open client (one frame built per recipient)",
    "lws": "copies each received chunk into its ring of messages; each connection writes from it "
           "when writable, the sender too",
}
# lws-mirror-protocol relays each chunk lws hands it as a message and drops what a lagging client
# has not taken from its small ring: under a saturating publisher it split and lost messages.
SATURATING_EXCLUDED = ("lws",)


def spec(name, args, bdir):
    if name in ("chat-ws", "chat-ws-named", "chat"):
        argv = [str(Path(args.chat_server).resolve()), "--host", "127.0.0.1", "--port", "0",
                "--no-line-mode", "--web-port", "0", "--flood-rate", "0", "--max-clients", "20000",
                "--max-per-address", "0", "--idle-timeout", "0", "--ping-interval", "0", "--threads", "1"]
        return run.ServerSpec(argv, "chat" if name == "chat" else "wschat")
    if name == "beast":
        p = run.free_port()
        docroot = bdir / "beast-docroot"
        docroot.mkdir(exist_ok=True)
        return run.ServerSpec([str(bdir / "beast_chat_multi"), "127.0.0.1", str(p), str(docroot), "1"], "ws", p)
    if name == "node-ws":
        return run.ServerSpec([args.node, str(BENCH / "ws" / "ws_broadcast.mjs"), "0"], "ws")
    if name == "lws":
        p = run.free_port()
        return run.ServerSpec(["libwebsockets-test-server", f"--port={p}"], "ws", p)
    raise SystemExit(f"unknown server {name!r}")


class Server(run.Server):
    """run.Server that also notes chat_server's "web port on HOST:PORT" line."""

    def __init__(self, name, sp, logpath, args):
        self.web = None
        super().__init__(name, sp, logpath, argparse.Namespace(server_cpu=args.server_cpu, nice=args.nice))

    def _read(self):
        proc_stdout = self.proc.stdout

        class Tap:
            def __iter__(tap):
                for raw in proc_stdout:
                    line = raw.decode(errors="replace")
                    if self.web is None and line.startswith("web port on "):
                        self.web = line[len("web port on "):].strip()
                    yield raw
        self.proc.stdout = Tap()
        super()._read()

    def wait_web_port(self, timeout=10.0):
        deadline = time.monotonic() + timeout
        while self.web is None and time.monotonic() < deadline and self.alive():
            time.sleep(0.02)
        if self.web is None:
            raise RuntimeError(f"no 'web port on' line: {self.tail()}")
        self.port = int(self.web.rpartition(":")[2])


def auto_window(n):
    """--window 0: about 256k deliveries in flight, 64 to 1024 messages (chat_server's per-client
    queue holds 4096 messages and 1 MiB; 1024 x 1000 subscribers x 600 bytes would be 600 MB)."""
    return max(64, min(1024, 262144 // n))


def paced_rate(args, n):
    return max(1, round(args.paced_deliveries / n))


def cells(args):
    out = []
    if "fanout" in args.scenarios:
        for n in args.fanout_n:
            for s in args.fanout_s:
                for w in args.window:
                    out.append(("fanout", {"subs": n, "size": s, "win": w or auto_window(n)}))
    if "paced" in args.scenarios:
        for n in args.paced_n:
            out.append(("paced", {"subs": n, "size": 64, "rate": paced_rate(args, n)}))
    if "memory" in args.scenarios:
        for k in args.memory_k:
            out.append(("memory", {"conns": k}))
    return out


def cell_key(kind, p):
    if kind == "memory":
        return f"memory K={p['conns']}"
    key = f"{kind} N={p['subs']} S={p['size']}" + (f" R={p['rate']}" if kind == "paced" else "")
    if kind == "fanout" and len(ARGS.window) > 1:
        key += f" win={p['win']}"
    return key


def servers_for(kind, args):
    if kind == "fanout":
        return [s for s in args.servers if s not in SATURATING_EXCLUDED]
    if kind == "memory":
        out = [s for s in args.servers if s != "chat"]
        if "chat-ws" in out:
            out.insert(out.index("chat-ws") + 1, "chat-ws-named")
        return out
    return list(args.servers)


def loadgen_argv(bdir, kind, p, srv, args):
    lg = [str(bdir / "loadgen")]
    if kind == "memory":
        argv = lg + ["idle", "--proto", srv.sp.proto, "--host", srv.host, "--port", str(srv.port),
                     "--label", srv.name, "--conns", str(p["conns"]), "--server-pid", str(srv.pid),
                     "--connect-timeout", "60", "--ready-timeout", "120"]
        if srv.name == "chat-ws-named":
            argv.append("--nick")
    else:
        argv = lg + ["fanout", "--proto", srv.sp.proto, "--host", srv.host, "--port", str(srv.port),
                     "--label", srv.name, "--subs", str(p["subs"]), "--size", str(p["size"]),
                     "--server-pid", str(srv.pid), "--warmup", str(args.warmup),
                     "--duration", str(args.duration), "--connect-timeout", "30", "--ready-timeout", "120"]
        if kind == "paced":
            argv += ["--rate", str(p["rate"])]
        else:
            argv += ["--window", str(p["win"])]
    if srv.name == "lws":
        argv += ["--ws-path", "/", "--ws-protocol", "lws-mirror-protocol"]
    argv = ["taskset", "-c", str(args.client_cpu)] + argv
    if args.nice:
        argv = ["nice", "-n", str(args.nice)] + argv
    return argv


def run_one(bdir, kind, p, name, rep, args, logdir):
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
            if sp.proto == "wschat":
                srv.wait_web_port()
            break
        except RuntimeError as e:
            srv.stop()
            if attempt == attempts - 1:
                rec.update(ok=False, error=f"server start: {e}")
                return rec
            sp = spec(name, args, bdir)
    try:
        argv = loadgen_argv(bdir, kind, p, srv, args)
        budget = 300 + args.warmup + args.duration
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
        log(f"  {name:13s} {human[0] if human else rec.get('error')}  (load {rec['loadavg']})")
        (logdir / f"{tag}.loadgen.log").write_text(shlex.join(argv) + "\n" + out + err)
    finally:
        srv.stop()
    return rec


# ---------------------------------------------------------------- reporting
def tables(summary, servers, args):
    cells_in_order = []
    for (cell, _), _s in summary.items():
        if cell not in cells_in_order:
            cells_in_order.append(cell)

    def get(cell, server, field):
        s = summary.get((cell, server))
        return s.get(field) if s else None

    def params(c):
        return dict(kv.split("=") for kv in c.split()[1:])

    out = []
    fan = [c for c in cells_in_order if c.startswith("fanout")]
    present = [s for s in servers if any((c, s) in summary for c in fan)]
    peers = [s for s in PEERS if s in present]
    if fan and present:
        out.append("### Saturating fan-out: messages/s delivered to subscribers (medians) [load generator CPU]\n")
        out.append("`†` = the load generator used over 90 % of its core (generator-bound); `!` = a run lost "
                   "messages, disconnected or failed (see *Checks*).\n")
        cols = ["N", "S"] + present + ["best peer", "chat-ws ÷ chat (framed)", "chat-ws ÷ best peer"]
        out.append("| " + " | ".join(cols) + " |")
        out.append("|" + "---|" * len(cols))
        for c in fan:
            pr = params(c)
            row = [pr["N"], pr["S"] + (f" w{pr['win']}" if "win" in pr else "")]
            for s in present:
                sm = summary.get((c, s))
                if not sm:
                    row.append("—")
                    continue
                flag = "!" if (sm["ok_runs"] < sm["runs"] or sm["lost"] or sm["disconnected"]) else ""
                row.append(run.fmt_rate(sm["msgs_per_s"]) + flag + run.fmt_gen(sm))
            pv = [(get(c, p, "msgs_per_s"), p) for p in peers if get(c, p, "msgs_per_s")]
            best = max(pv) if pv else (None, None)
            row.append(f"{best[1]} {run.fmt_rate(best[0])}" if best[1] else "—")
            ws = get(c, "chat-ws", "msgs_per_s")
            row += [run.ratio(ws, get(c, "chat", "msgs_per_s")), run.ratio(ws, best[0])]
            out.append("| " + " | ".join(row) + " |")
        out.append("")

        out.append("### Saturating fan-out: server CPU per delivered message, ns (server CPU % / load generator CPU %)\n")
        cols = ["N", "S"] + present
        out.append("| " + " | ".join(cols) + " |")
        out.append("|" + "---|" * len(cols))
        for c in fan:
            pr = params(c)
            row = [pr["N"], pr["S"] + (f" w{pr['win']}" if "win" in pr else "")]
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

    mem = [c for c in cells_in_order if c.startswith("memory")]
    if mem:
        out.append("### Idle connections: server memory (RSS growth ÷ K) and time until the server held all K\n")
        mservers = [s for s in servers + list(MEMORY_EXTRA) if any((c, s) in summary for c in mem)]
        out.append("| K | " + " | ".join(mservers) + " |")
        out.append("|---|" + "---|" * len(mservers))
        for c in mem:
            row = [c.split("=")[1]]
            for s in mservers:
                sm = summary.get((c, s))
                b = sm.get("bytes_per_conn") if sm else None
                row.append("—" if b is None else f"{b:.0f} B ({sm['accept_s']:.1f} s)" if sm.get("accept_s")
                           else f"{b:.0f} B")
            out.append("| " + " | ".join(row) + " |")
        out.append("")

    # The targets, cell by cell.
    if "chat-ws" in servers:
        out.append("### Targets (issue 13)\n")
        out.append("| target | cell | verdict |")
        out.append("|---|---|---|")

        def verdict(ok, text):
            return ("met" if ok else "missed") + f" ({text})"
        for c in fan:
            ws, fr = get(c, "chat-ws", "msgs_per_s"), get(c, "chat", "msgs_per_s")
            wns, fns = get(c, "chat-ws", "server_ns_per_msg"), get(c, "chat", "server_ns_per_msg")
            if ws and fr:
                txt = f"{ws / fr:.2f}× by msgs/s"
                if wns and fns and wns > 0 and fns > 0:
                    txt += f"; {fns / wns:.2f}× by CPU per delivery"
                out.append(f"| WebSocket ≥ ½ framed msgs/s | {' '.join(c.split()[1:])} | {verdict(ws / fr >= 0.5, txt)} |")
        for c in paced:
            a = get(c, "chat-ws", "p99_us")
            pv = [(get(c, p, "p99_us"), p) for p in PEERS if p in servers and get(c, p, "p99_us")]
            if a and pv:
                b, who = min(pv)
                out.append(f"| paced p99 ≤ best peer's | {' '.join(c.split()[1:])} | "
                           f"{verdict(a <= b, f'{run.fmt_us(a)} against {who} {run.fmt_us(b)}')} |")
        for c in mem:
            for s in ("chat-ws", "chat-ws-named"):
                b = get(c, s, "bytes_per_conn")
                if b is not None:
                    out.append(f"| ≤ 4 KiB per idle WebSocket | {c.split()[1]} {s} | "
                               f"{verdict(b <= 4096, f'{b:.0f} bytes')} |")
        out.append("")
    return "\n".join(out)


def checks(records):
    lines = run.checks(records)
    for r in records:
        if r.get("ws_fragments"):
            lines.append(f"- {r['cell']} {r['server']} rep {r['rep']}: {r['ws_fragments']} fragmented messages")
    return lines


# --------------------------------------------------------------------- main
def parse_args():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="short cells, one repetition")
    ap.add_argument("--servers", default=",".join(ALL_SERVERS), help="comma list from " + ",".join(ALL_SERVERS))
    ap.add_argument("--scenarios", default="fanout,paced,memory")
    ap.add_argument("--chat-server", default=str(REPO / "build/default/examples/chat_server"))
    ap.add_argument("--node", default=shutil.which("node") or "node")
    ap.add_argument("--reps", type=int, default=None, help="repetitions (default 3, quick 1)")
    ap.add_argument("--warmup", type=float, default=None, help="seconds (default 1, quick 0.5)")
    ap.add_argument("--duration", type=float, default=None, help="seconds (default 4, quick 1.5)")
    ap.add_argument("--fanout-n", default="10,100,1000")
    ap.add_argument("--fanout-s", default="64,512")
    ap.add_argument("--paced-n", default="10,100,1000")
    ap.add_argument("--paced-deliveries", type=int, default=20000,
                    help="paced cells: deliveries/s (publishes/s = this ÷ N), within every server's reach")
    ap.add_argument("--memory-k", default="10000")
    ap.add_argument("--window", default="0",
                    help="messages in flight ahead of the slowest subscriber, the same for every server "
                         "(a comma list sweeps; 0 = 262144 / N within 64..1024: 1024 at N = 10 and 100, "
                         "262 at N = 1000)")
    ap.add_argument("--server-cpu", default="0", help="taskset -c list for the servers")
    ap.add_argument("--client-cpu", default="1", help="taskset -c list for the load generator")
    ap.add_argument("--nice", type=int, default=0)
    ap.add_argument("--build-dir", default=str(REPO / "build" / "bench"))
    ap.add_argument("--out", default=None, help="results directory (default build/bench/ws-results/TIME)")
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
    a.paced_n = [int(x) for x in a.paced_n.split(",") if x]
    a.memory_k = [int(x) for x in a.memory_k.split(",") if x]
    a.window = [int(x) for x in a.window.split(",") if x] or [0]
    a.scenarios = [s for s in a.scenarios.split(",") if s]
    a.servers = [s for s in a.servers.split(",") if s]
    for s in a.servers:
        if s not in ALL_SERVERS:
            ap.error(f"unknown server {s}")
    if not Path(a.chat_server).is_file() and not a.report:
        log(f"{a.chat_server} not found (cmake --build --preset default --target chat_server): "
            "skipping chat-ws, chat")
        a.servers = [s for s in a.servers if s not in ("chat-ws", "chat")]
    if "lws" in a.servers and not a.report and not shutil.which("libwebsockets-test-server"):
        log("libwebsockets-test-server not found (apt-get install libwebsockets-test-server): skipping lws")
        a.servers.remove("lws")
    if "node-ws" in a.servers and not a.report and not (BENCH / "ws" / "node_modules" / "ws").is_dir():
        log("bench/ws/node_modules/ws not found (cd bench/ws && npm ci): skipping node-ws")
        a.servers.remove("node-ws")
    return a


ARGS = None


def build(args):
    args.servers = [s for s in args.servers if s != "asio"]
    bdir = run.build(args)
    if "beast" in args.servers:
        env = dict(os.environ, CXX=args.cxx)
        r = subprocess.run(["sh", str(BENCH / "peers" / "build_beast.sh"), str(bdir)], env=env)
        if r.returncode:
            log("could not build Beast's chat-multi example: skipping beast")
            args.servers.remove("beast")
    return bdir


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
        for k in ("reps", "warmup", "duration", "server_cpu", "client_cpu"):
            if k in meta:
                setattr(args, k, meta[k])
        return report(args, meta, records, outdir)
    bdir = build(args)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    outdir = Path(args.out) if args.out else bdir / "ws-results" / stamp
    logdir = outdir / "logs"
    logdir.mkdir(parents=True, exist_ok=True)
    meta = run.machine()
    meta["command"] = "bench/ws_run.py " + shlex.join(sys.argv[1:])
    meta["servers"] = args.servers
    meta.update(reps=args.reps, warmup=args.warmup, duration=args.duration, window=args.window,
                server_cpu=args.server_cpu, client_cpu=args.client_cpu,
                fd_limit=resource.getrlimit(resource.RLIMIT_NOFILE)[0])
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
                names = servers_for(kind, args)
                k = rep % len(names)
                for name in names[k:] + names[:k]:
                    rec = run_one(bdir, kind, p, name, rep, args, logdir)
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
                  "bytes_per_conn", "accept_s", "lost", "undrained", "out_of_order", "disconnected", "bad"]
        f.write("\t".join(fields) + "\n")
        for s in summary.values():
            f.write("\t".join("" if s.get(k) is None else str(s.get(k)) for k in fields) + "\n")
    loads = sorted(float(r["loadavg"].split()[0]) for r in records if r.get("loadavg"))
    md = [f"Machine: {meta['cpu']}, {meta['cores']} cores, {meta['memory']}, Linux {meta['kernel']}; "
          f"{meta['date']}; git {meta['git']}; load average at start {meta['loadavg_at_start']}"
          + (f"; 1-minute load average over the runs {loads[0]:.2f}–{loads[-1]:.2f}" if loads else "")
          + ".",
          f"Command: `{meta['command']}` ({args.reps} repetition(s), {args.warmup}s warm-up + "
          f"{args.duration}s measured per run; window "
          f"{','.join(str(w) if w else '262144/N within 64..1024' for w in args.window)} messages; "
          f"servers on CPU {args.server_cpu}, load generator on CPU {args.client_cpu}).", "",
          tables(summary, args.servers, args)]
    problems = checks(records)
    md.append("### Checks\n")
    md += problems if problems else ["No losses, reordering, disconnections or errors."]
    text = "\n".join(md) + "\n"
    (outdir / "tables.md").write_text(text)
    png = chart_run(summary, args.servers, outdir,
                    f"WebSocket fan-out: {meta['cpu']}, {meta['cores']} cores, {meta['date']} "
                    f"({args.reps} rep(s), medians)")
    print(text)
    print(f"results: {outdir}" + (f"\nchart: {png}" if png else ""))
    return 1 if any(not r.get("ok") for r in records) else 0


def chart_run(summary, servers, outdir, title):
    """chat_run.py's chart (msgs/s, CPU per delivery, paced p99) and the idle memory."""
    servers = list(servers) + [s for s in MEMORY_EXTRA if any(k[1] == s for k in summary)]
    return chat_run.chart(summary, servers, outdir, title,
                          extra=[("memory", "bytes_per_conn", "memory.dat",
                                  "Idle WebSocket connections: server RSS per connection, bytes (lower is better)")])


if __name__ == "__main__":
    sys.exit(main())
