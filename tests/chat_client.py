#!/usr/bin/env python3
"""A small client for the parley chat protocol, written from docs/PROTOCOL.md
alone (Python 3 standard library only).

Interactive: reads lines from stdin and sends them as inputs; prints every
event in the line-mode format of the protocol document.

    python3 tests/chat_client.py --port 9999 --nick alice

Scripted (used by the test suite): joins, sends each --say, waits for each
--expect message, then leaves with /quit when --quit is given. Every event
received is checked against the document; exit status 0 when everything
happened as specified, 1 otherwise (with the reason on stderr).

    python3 tests/chat_client.py --port 9999 --nick py --say hi --expect alice:hello --quit
"""

import argparse
import json
import re
import select
import socket
import struct
import sys
import time

MAX_EVENT_BYTES = 1024 * 1024  # §1: clients accept server frames up to 1 MiB
TIME_FORMAT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")  # §4
MAX_ID = 2**53 - 1

# §4.1: the fields every event type always carries, and their JSON types.
FIELDS = {
    "welcome": {"prompt": str, "protocol": int, "server": str, "max_frame_bytes": int,
                "max_message_bytes": int, "max_nickname_length": int},
    "nick_accepted": {"nick": str},
    "message": {"id": int, "room": str, "from": str, "text": str, "time": str},
    "private": {"id": int, "from": str, "to": str, "text": str, "time": str},
    "join": {"room": str, "nick": str, "time": str},
    "leave": {"room": str, "nick": str, "reason": str, "time": str},
    "rename": {"old": str, "new": str, "time": str},
    "members": {"room": str, "members": list, "count": int},
    "error": {"code": str, "message": str},
    "notice": {"code": str, "text": str},
}


class ProtocolError(Exception):
    pass


def no_duplicate_keys(pairs):
    keys = [k for k, _ in pairs]
    if len(keys) != len(set(keys)):
        raise ProtocolError("an event repeats a key: %r" % keys)
    return dict(pairs)


def check_event(event):
    """Checks an event against §4; unknown types and fields are allowed."""
    if not isinstance(event, dict):
        raise ProtocolError("an event must be a JSON object: %r" % (event,))
    kind = event.get("type")
    if not isinstance(kind, str):
        raise ProtocolError("an event needs a string \"type\": %r" % (event,))
    for name, expected in FIELDS.get(kind, {}).items():
        if name not in event:
            raise ProtocolError("%s event without \"%s\": %r" % (kind, name, event))
        value = event[name]
        # JSON true/false are not integers, though Python's bool is an int.
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            raise ProtocolError("%s event: \"%s\" should be %s: %r" %
                                (kind, name, expected.__name__, event))
    if "time" in FIELDS.get(kind, {}) and not TIME_FORMAT.match(event["time"]):
        raise ProtocolError("not an RFC 3339 UTC time with milliseconds: %r" % event["time"])
    if "id" in FIELDS.get(kind, {}) and not 1 <= event["id"] <= MAX_ID:
        raise ProtocolError("id out of range: %r" % event["id"])
    if kind == "members":
        if not all(isinstance(m, str) for m in event["members"]):
            raise ProtocolError("members must be strings: %r" % event)
        if event["count"] < len(event["members"]):
            raise ProtocolError("count below the number of members listed: %r" % event)
    return event


def as_line(event):
    """The event as line mode shows it (§5)."""
    kind = event["type"]
    if kind == "welcome":
        return event["prompt"]
    if kind == "nick_accepted":
        return "* welcome, %s! type /help for the commands" % event["nick"]
    if kind == "message":
        return "[%s] %s: %s" % (event["room"], event["from"], event["text"])
    if kind == "private":
        return "[private] %s -> %s: %s" % (event["from"], event["to"], event["text"])
    if kind == "join":
        return "* %s joined %s" % (event["nick"], event["room"])
    if kind == "leave":
        return "* %s left %s (%s)" % (event["nick"], event["room"], event["reason"])
    if kind == "rename":
        return "* %s is now known as %s" % (event["old"], event["new"])
    if kind == "members":
        more = ", ..." if event["count"] > len(event["members"]) else ""
        return "* members of %s (%d): %s%s" % (event["room"], event["count"],
                                              ", ".join(event["members"]), more)
    if kind == "error":
        return "! %s: %s" % (event["code"], event["message"])
    if kind == "notice":
        return "\n".join("* " + line for line in event["text"].split("\n"))
    return "* (%s event)" % kind


class Connection:
    """Frames over TCP (§1): a 4-byte big-endian length, then the payload."""

    def __init__(self, host, port, timeout):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buffer = b""
        self.closed = False

    def send(self, text):
        payload = text.encode("utf-8")
        self.sock.sendall(struct.pack(">I", len(payload)) + payload)

    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("no event in time")
        self.sock.settimeout(left)
        chunk = self.sock.recv(65536)
        if not chunk:
            self.closed = True
            raise EOFError("the server closed the connection")
        self.buffer += chunk

    def has_frame(self):
        if len(self.buffer) < 4:
            return False
        (length,) = struct.unpack(">I", self.buffer[:4])
        return len(self.buffer) >= 4 + length

    def receive(self, timeout):
        """The next event, decoded and checked."""
        deadline = time.monotonic() + timeout
        while len(self.buffer) < 4:
            self._fill(deadline)
        (length,) = struct.unpack(">I", self.buffer[:4])
        if length > MAX_EVENT_BYTES:
            raise ProtocolError("a frame of %d bytes is over the 1 MiB limit" % length)
        while len(self.buffer) < 4 + length:
            self._fill(deadline)
        payload, self.buffer = self.buffer[4:4 + length], self.buffer[4 + length:]
        try:
            event = json.loads(payload.decode("utf-8"), object_pairs_hook=no_duplicate_keys)
        except (UnicodeDecodeError, ValueError) as e:
            raise ProtocolError("not a JSON event: %r (%s)" % (payload, e))
        return check_event(event)

    def wait_closed(self, timeout):
        """Reads (and returns) events until the server closes the connection."""
        events = []
        try:
            while True:
                events.append(self.receive(timeout))
        except EOFError:
            return events


class Client:
    def __init__(self, args):
        self.args = args
        self.conn = Connection(args.host, args.port, args.timeout)
        self.nick = None
        self.last_id = {}  # room -> last message id seen there (§4.3: ids increase)
        self.messages = []  # (from, text) of every message event received

    def next(self):
        event = self.conn.receive(self.args.timeout)
        if event["type"] == "message":
            room = event["room"]
            if event["id"] <= self.last_id.get(room, 0):
                raise ProtocolError("ids must increase within a room: %r" % event)
            self.last_id[room] = event["id"]
            self.messages.append((event["from"], event["text"]))
        if not self.args.quiet:
            print(as_line(event), flush=True)
        return event

    def expect(self, kind, predicate=lambda e: True, skip=True):
        """The next event of `kind` matching `predicate`; others are skipped
        (printed) when `skip`, else an error."""
        while True:
            event = self.next()
            if event["type"] == kind and predicate(event):
                return event
            if event["type"] == "error":
                raise ProtocolError("unexpected error: %s" % as_line(event))
            if not skip:
                raise ProtocolError("expected a %s event, got %r" % (kind, event))

    def login(self, nick):
        """§2.1 and §4.3: welcome; nick; nick_accepted, join, members."""
        welcome = self.next()
        if welcome["type"] != "welcome" or welcome["protocol"] != 1:
            raise ProtocolError("the first event must be a protocol 1 welcome: %r" % welcome)
        while True:
            self.conn.send(nick)
            event = self.next()
            if event["type"] == "nick_accepted":
                break
            if event["type"] == "error" and event["code"] == "nickname_taken":
                nick += "_"  # another chance
                continue
            raise ProtocolError("nickname refused: %r" % event)
        self.nick = event["nick"]
        self.expect("join", lambda e: e["nick"] == self.nick and e["room"] == "lobby", skip=False)
        members = self.expect("members", skip=False)
        if self.nick not in members["members"]:
            raise ProtocolError("the members of lobby should include us: %r" % members)

    def run_script(self):
        args = self.args
        self.login(args.nick)
        for text in args.say:
            self.conn.send("/" + text if text.startswith("/") else text)  # §2.2: //TEXT
            # §4.1: the sender gets its own message back as confirmation.
            self.expect("message", lambda e, t=text: e["from"] == self.nick and e["text"] == t)
        for item in args.expect:
            sender, _, text = item.partition(":")
            while (sender, text) not in self.messages:
                self.expect("message")
        if args.quit:
            self.conn.send("/quit")
            self.expect("notice", lambda e: e["code"] == "goodbye")
            rest = self.conn.wait_closed(args.timeout)
            if any(e["type"] in ("message", "join", "leave") for e in rest):
                raise ProtocolError("room events after goodbye: %r" % rest)

    def run_interactive(self):
        self.next()  # the welcome, with the prompt
        if self.args.nick:
            self.conn.send(self.args.nick)
        while not self.conn.closed:
            while self.conn.has_frame():
                self.next()
            readable, _, _ = select.select([sys.stdin, self.conn.sock], [], [])
            if sys.stdin in readable:
                line = sys.stdin.readline()
                if not line:
                    self.conn.send("/quit")
                    break
                self.conn.send(line.rstrip("\r\n"))
            if self.conn.sock in readable:
                try:
                    self.conn._fill(time.monotonic() + self.args.timeout)
                except EOFError:
                    break
        for event in self.conn.wait_closed(self.args.timeout):
            print(as_line(event), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9999)
    parser.add_argument("--nick", help="the nickname to use")
    parser.add_argument("--say", action="append", default=[], help="a message to send")
    parser.add_argument("--expect", action="append", default=[], metavar="NICK:TEXT",
                        help="a message to wait for")
    parser.add_argument("--quit", action="store_true", help="leave with /quit at the end")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for anything")
    parser.add_argument("--quiet", action="store_true", help="do not print events")
    args = parser.parse_args()

    scripted = args.say or args.expect or args.quit
    if scripted and not args.nick:
        parser.error("--nick is required with --say, --expect or --quit")
    try:
        client = Client(args)
        if scripted:
            client.run_script()
        else:
            client.run_interactive()
    except (ProtocolError, TimeoutError, EOFError, OSError) as e:
        print("chat_client.py: %s" % e, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
