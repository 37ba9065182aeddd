#!/usr/bin/env python3
"""Fan-out through 1, 2 and 3 chat servers joined by Redis (docs/SCALING.md).

    bench/scaling.py --chat-server build/default/examples/chat_server
    bench/scaling.py --instances 1,2,3 --subs 30 --duration 5 --rate 500

For each configuration, starts a redis-server on a free loopback port (no
persistence) and the chat servers, logs in SUBS subscribers spread evenly
over the instances (round robin) and one publisher on the first instance,
then:
  - saturating: the publisher sends messages as fast as it can while staying
    at most --window messages ahead of the slowest subscriber; reported:
    deliveries/s (messages received by all subscribers per second);
  - paced: --rate messages/s; reported: latency p50/p99/max from the
    publisher's send to each subscriber's receipt (same process, monotonic
    clock), and messages lost.
"single" is one chat server without --redis, the baseline.

The clients speak the chat protocol (parley frames, JSON events); they run in
this one Python process, so the figures are relative (all configurations
share the same client cost) rather than the servers' ceiling: bench/run.py
measures that for the broadcast server. Python 3 standard library only.
Every process started is ended by its PID.
"""
import argparse
import json
import os
import selectors
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=10):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"nothing listens on {port}")


class Client:
    def __init__(self, port, nick):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.nick = nick
        self.buf = bytearray()
        self.received = 0
        self.last_seq = -1
        self.lost = 0
        self.lat = []
        self.frame(nick.encode())

    def frame(self, payload):
        self.sock.sendall(struct.pack(">I", len(payload)) + payload)

    def events(self):
        """Frames read so far, decoded."""
        out = []
        b = self.buf
        off = 0
        while len(b) - off >= 4:
            n = struct.unpack_from(">I", b, off)[0]
            if len(b) - off < 4 + n:
                break
            out.append(json.loads(bytes(b[off + 4:off + 4 + n])))
            off += 4 + n
        del b[:off]
        return out

    def read(self):
        data = self.sock.recv(1 << 20)
        if not data:
            raise RuntimeError(f"{self.nick}: connection closed")
        self.buf += data

    def wait_for(self, pred, timeout=10):
        end = time.monotonic() + timeout
        while True:
            for e in self.events():
                if pred(e):
                    return e
            if time.monotonic() > end:
                raise RuntimeError(f"{self.nick}: timed out")
            self.sock.settimeout(max(0.01, end - time.monotonic()))
            self.read()


def start(argv, ready=None):
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if ready:
        end = time.monotonic() + 10
        while time.monotonic() < end:
            line = p.stdout.readline()
            if not line:
                break
            if line.startswith(ready):
                return p, line
        p.kill()
        raise RuntimeError(f"{argv[0]} did not print {ready!r}")
    return p, None


def stop(p):
    if p.poll() is None:
        os.kill(p.pid, signal.SIGTERM)
        try:
            p.wait(3)
        except subprocess.TimeoutExpired:
            os.kill(p.pid, signal.SIGKILL)
            p.wait()


def run_config(args, instances, use_redis):
    procs = []
    try:
        ports = []
        redis_port = None
        if use_redis:
            redis_port = free_port()
            r, _ = start([args.redis_server, "--port", str(redis_port), "--bind", "127.0.0.1",
                          "--save", "", "--appendonly", "no", "--logfile", "/dev/null"])
            procs.append(r)
            wait_port(redis_port)
        for i in range(instances):
            argv = [args.chat_server, "--port", "0", "--no-line-mode", "--no-web"]
            if use_redis:
                argv += ["--redis", f"redis://127.0.0.1:{redis_port}"]
            p, line = start(argv, "listening on ")
            procs.append(p)
            ports.append(int(line.rsplit(":", 1)[1]))
            # Drain its output in the background so that it never blocks.
            subprocess.Popen(["cat"], stdin=p.stdout, stdout=subprocess.DEVNULL)
        time.sleep(0.5)  # let every instance register with Redis
        subs = [Client(ports[i % instances], f"s{i}") for i in range(args.subs)]
        for s in subs:
            s.wait_for(lambda e: e.get("type") == "members")
        pub = Client(ports[0], "pub")
        pub.wait_for(lambda e: e.get("type") == "members")
        # Every subscriber has seen the publisher join (its instance knows it).
        for s in subs:
            s.wait_for(lambda e: e.get("type") == "join" and e.get("nick") == "pub")
        return measure(args, subs, pub)
    finally:
        for p in reversed(procs):
            stop(p)


def measure(args, subs, pub):
    sel = selectors.DefaultSelector()
    for s in subs:
        s.sock.setblocking(False)
        sel.register(s.sock, selectors.EVENT_READ, s)
    pub.sock.setblocking(False)
    sel.register(pub.sock, selectors.EVENT_READ, pub)
    results = {}
    seq = 0

    def pump(timeout):
        for key, _ in sel.select(timeout):
            c = key.data
            try:
                c.read()
            except BlockingIOError:
                continue
            now = time.monotonic_ns()
            for e in c.events():
                if c is pub or e.get("type") != "message":
                    continue
                s_seq, s_ts = e["text"].split(" ", 1)
                s_seq = int(s_seq)
                if s_seq != c.last_seq + 1:
                    c.lost += max(0, s_seq - c.last_seq - 1)
                c.last_seq = s_seq
                c.received += 1
                if c.measuring:
                    c.lat.append(now - int(s_ts))

    def send(n):
        nonlocal seq
        out = bytearray()
        for _ in range(n):
            text = f"{seq} {time.monotonic_ns()}".encode()
            out += struct.pack(">I", len(text)) + text
            seq += 1
        pub.sock.setblocking(True)
        pub.sock.sendall(out)
        pub.sock.setblocking(False)

    # Saturating, windowed.
    for s in subs:
        s.measuring = False
    t_end = time.monotonic() + args.warmup + args.duration
    t_start = time.monotonic() + args.warmup
    counted_from = None
    while time.monotonic() < t_end:
        slowest = min(s.last_seq for s in subs)
        ahead = seq - 1 - slowest
        if ahead < args.window:
            send(min(64, args.window - ahead))
        pump(0 if ahead < args.window else 0.05)
        if counted_from is None and time.monotonic() >= t_start:
            counted_from = sum(s.received for s in subs)
            counted_t = time.monotonic()
    delivered = sum(s.received for s in subs) - counted_from
    results["deliveries_per_s"] = delivered / (time.monotonic() - counted_t)
    # Drain.
    end = time.monotonic() + 5
    while min(s.last_seq for s in subs) < seq - 1 and time.monotonic() < end:
        pump(0.05)

    # Paced latency.
    for s in subs:
        s.measuring = True
        s.lat = []
    interval = 1.0 / args.rate
    next_t = time.monotonic()
    t_end = next_t + args.duration
    while time.monotonic() < t_end:
        now = time.monotonic()
        if now >= next_t:
            send(1)
            next_t += interval
        pump(max(0, min(next_t - time.monotonic(), 0.01)))
    end = time.monotonic() + 5
    while min(s.last_seq for s in subs) < seq - 1 and time.monotonic() < end:
        pump(0.05)
    lat = sorted(x for s in subs for x in s.lat)
    results["p50_us"] = lat[len(lat) // 2] / 1000 if lat else None
    results["p99_us"] = lat[int(len(lat) * 0.99)] / 1000 if lat else None
    results["max_us"] = lat[-1] / 1000 if lat else None
    results["lost"] = sum(s.lost for s in subs) + sum(seq - 1 - s.last_seq for s in subs)
    return results


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--chat-server", default=os.path.join(REPO, "build/default/examples/chat_server"))
    ap.add_argument("--redis-server", default=shutil.which("redis-server") or "redis-server")
    ap.add_argument("--instances", default="1,2,3")
    ap.add_argument("--subs", type=int, default=30)
    ap.add_argument("--window", type=int, default=200)
    ap.add_argument("--rate", type=float, default=500)
    ap.add_argument("--warmup", type=float, default=1)
    ap.add_argument("--duration", type=float, default=5)
    ap.add_argument("--no-single", action="store_true", help="skip the single-server baseline")
    args = ap.parse_args()

    configs = [] if args.no_single else [("single (no Redis)", 1, False)]
    configs += [(f"{n} instance(s) + Redis", int(n), True) for n in args.instances.split(",")]
    log("load:", os.getloadavg())
    rows = []
    for name, n, use_redis in configs:
        log("running:", name)
        r = run_config(args, n, use_redis)
        r["config"] = name
        rows.append(r)
        print(json.dumps(r), flush=True)
    print()
    print(f"subscribers: {args.subs} spread over the instances; 1 publisher on the first; "
          f"window {args.window}; paced rate {args.rate:g} msgs/s; load average before: "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print()
    print("| configuration | deliveries/s (saturating) | p50 µs | p99 µs | max µs | lost |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['config']} | {r['deliveries_per_s']:.0f} | {r['p50_us']:.0f} | "
              f"{r['p99_us']:.0f} | {r['max_us']:.0f} | {r['lost']} |")


if __name__ == "__main__":
    main()
