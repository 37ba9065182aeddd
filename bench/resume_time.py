#!/usr/bin/env python3
"""How long a /resume takes for a client that missed MISSED messages of a room.

    bench/resume_time.py [--missed 10000] [--reps 3] [--history-db] [--chat-server PATH]

Starts chat_server (framed port only, flood control off; with --history-db a fresh
SQLite file), logs bob in, drops his connection (his session is parked), has alice
say MISSED messages (64 bytes each; waits until she got her own last one back),
then reconnects bob with `/resume TOKEN lobby=SEQ@EPOCH` and measures the time
from sending it to receiving `resumed`. Checks that the messages sent again are
gapless and once each, and prints, per repetition, the time, the count and
`recovered`. Without the store, memory keeps a room's last 1,000 messages: bob
gets those and `recovered: false`; with it, the whole gap (up to
--history-db-resume, 10,000 by default). Python 3 standard library only.
"""
import argparse
import json
import os
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


class Conn:
    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port))
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def send(self, text):
        data = text.encode()
        self.s.sendall(struct.pack(">I", len(data)) + data)

    def send_many(self, texts):
        self.s.sendall(b"".join(struct.pack(">I", len(t)) + t.encode() for t in texts))

    def event(self, timeout=30.0):
        self.s.settimeout(timeout)
        while True:
            if len(self.buf) >= 4:
                n = struct.unpack(">I", self.buf[:4])[0]
                if len(self.buf) >= 4 + n:
                    payload, self.buf = self.buf[4:4 + n], self.buf[4 + n:]
                    return json.loads(payload)
            chunk = self.s.recv(1 << 20)
            if not chunk:
                raise RuntimeError("connection closed")
            self.buf += chunk

    def until(self, kind):
        seen = []
        while True:
            e = self.event()
            seen.append(e)
            if e.get("type") == kind:
                return e, seen

    def close(self):
        self.s.close()


def start_server(args, db, logpath):
    argv = [args.chat_server, "--host", "127.0.0.1", "--port", "0", "--no-line-mode", "--no-web",
            "--flood-rate", "0", "--idle-timeout", "0", "--ping-interval", "0"]
    if db:
        argv += ["--history-db", db]
    log = open(logpath, "w")
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and proc.poll() is None:
        for line in open(logpath):
            if line.startswith("listening on "):  # "listening on 127.0.0.1:PORT"
                return proc, int(line.strip().rpartition(":")[2])
        time.sleep(0.05)
    proc.kill()
    raise SystemExit("chat_server did not say its port: " + open(logpath).read()[-500:])


def one(args, port, rep):
    bob = Conn(port)
    bob.until("welcome")
    bob.send(f"bob{rep}")
    acc, _ = bob.until("nick_accepted")
    token = acc["resume_token"]
    members, _ = bob.until("members")
    seq, epoch = members.get("seq", 0), members.get("epoch", "")
    bob.s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    bob.close()  # a reset: parked for the grace period
    alice = Conn(port)
    alice.until("welcome")
    alice.send(f"alice{rep}")
    alice.until("members")
    text = "x" * 64
    last = None
    for start in range(0, args.missed, 500):
        alice.send_many([text] * min(500, args.missed - start))
        while True:  # her own copies: the room has them all when the last is back
            e = alice.event()
            if e.get("type") == "message" and e.get("from") == f"alice{rep}":
                last = e
                if e["seq"] >= seq + min(start + 500, args.missed):
                    break
    time.sleep(0.2)
    again = Conn(port)
    again.until("welcome")
    t0 = time.perf_counter()
    again.send(f"/resume {token} lobby={seq}@{epoch}")
    done, seen = again.until("resumed")
    took = time.perf_counter() - t0
    got = [e["seq"] for e in seen if e.get("type") == "message" and e.get("room") == "lobby"]
    gapless = all(b == a + 1 for a, b in zip(got, got[1:]))
    again.send("/quit")
    again.close()
    alice.send("/quit")
    alice.close()
    return {"rep": rep, "seconds": round(took, 4), "messages": len(got),
            "first": got[0] if got else None, "last": got[-1] if got else None,
            "room_seq": last["seq"], "gapless": gapless, "recovered": done["recovered"],
            "loadavg": open("/proc/loadavg").read().split()[:3]}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--missed", type=int, default=10000)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--history-db", action="store_true")
    ap.add_argument("--chat-server", default=str(REPO / "build/default/examples/chat_server"))
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="parley_resume_")
    db = os.path.join(tmp, "chat.db") if args.history_db else None
    proc, port = start_server(args, db, os.path.join(tmp, "server.log"))
    try:
        for rep in range(args.reps):
            print(json.dumps(one(args, port, rep)), flush=True)
    finally:
        proc.terminate()
        proc.wait(10)
        for f in Path(tmp).iterdir():
            f.unlink()
        os.rmdir(tmp)


if __name__ == "__main__":
    sys.exit(main())
