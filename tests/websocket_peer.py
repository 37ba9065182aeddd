#!/usr/bin/env python3
"""A WebSocket peer built on Python's `websockets` (Debian python3-websockets),
for tests/test_websocket_interop.cpp: parley's stream against an
implementation written by others, both ways.

  websocket_peer.py client --port P   talks to a parley echo server at
                                      ws://127.0.0.1:P/ws, then closes (4001)
  websocket_peer.py server            serves one connection; prints
                                      "listening on 127.0.0.1:PORT" first

With --deflate, the peer insists on permessage-deflate (websockets offers
and accepts it by default, with 12-bit windows) and says
"ok: permessage-deflate" once it is negotiated; without, it fails if the
parley side (with compression off) agreed to it.

The server answers "fragment" with a message in three fragments, "ping" by
pinging the client and saying "pong ok" once the pong came, "close" by
closing with 4002 "py server", anything else by echoing it. Exit status 0
when everything went as expected; each check failing prints why."""

import argparse
import asyncio
import sys

import websockets

MIB = 1024 * 1024
LIMIT = 2 * MIB


def fail(why):
    print("FAILED: " + why, flush=True)
    sys.exit(1)


async def expect(ws, want, what):
    got = await asyncio.wait_for(ws.recv(), 10)
    if got != want:
        fail("%s: got %r (%d), want %d" % (what, got[:40], len(got), len(want)))
    print("ok: " + what, flush=True)


def check_deflate(ws, want):
    names = [e.name for e in ws.extensions]
    if want and names != ["permessage-deflate"]:
        fail("permessage-deflate was not negotiated: %r" % names)
    if not want and names:
        fail("compression was negotiated though parley's side has it off: %r" % names)
    if want:
        print("ok: permessage-deflate", flush=True)


async def client(port, deflate):
    async with websockets.connect("ws://127.0.0.1:%d/ws" % port, max_size=LIMIT) as ws:
        check_deflate(ws, deflate)
        await ws.send("hello")
        await expect(ws, "hello", "text echo")
        big = bytes(i % 251 for i in range(MIB))
        await ws.send(big)
        await expect(ws, big, "1 MiB binary echo")
        await ws.send(["frag", "men", "ted \u2713"])  # one message in three frames
        await expect(ws, "fragmented \u2713", "fragmented message echo")
        pong = await ws.ping(b"py-ping")
        await asyncio.wait_for(pong, 10)
        print("ok: pong", flush=True)
        await ws.close(code=4001, reason="py done")
        print("client done, server closed with %s %r" % (ws.close_code, ws.close_reason), flush=True)
        if ws.close_code != 4001:
            fail("the server did not echo the close code")


async def server(deflate):
    finished = asyncio.Event()

    async def handler(ws, path=None):
        try:
            check_deflate(ws, deflate)
            async for message in ws:
                if message == "fragment":
                    await ws.send(["frag", "men", "ted"])
                elif message == "ping":
                    pong = await ws.ping(b"from python")
                    await asyncio.wait_for(pong, 10)
                    await ws.send("pong ok")
                elif message == "close":
                    await ws.close(code=4002, reason="py server")
                else:
                    await ws.send(message)
            print("server done, client closed with %s %r" % (ws.close_code, ws.close_reason), flush=True)
        finally:
            finished.set()

    async with websockets.serve(handler, "127.0.0.1", 0, max_size=LIMIT) as srv:
        port = srv.sockets[0].getsockname()[1]
        print("listening on 127.0.0.1:%d" % port, flush=True)
        await asyncio.wait_for(finished.wait(), 30)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["client", "server"])
    parser.add_argument("--port", type=int)
    parser.add_argument("--deflate", action="store_true")
    args = parser.parse_args()
    if args.mode == "client":
        asyncio.run(asyncio.wait_for(client(args.port, args.deflate), 30))
    else:
        asyncio.run(server(args.deflate))


if __name__ == "__main__":
    main()
