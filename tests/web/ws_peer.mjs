// A WebSocket peer built on Node's `ws` (pinned in package.json), for
// tests/test_websocket_interop.cpp: the same roles as tests/websocket_peer.py.
//
//   node ws_peer.mjs client --port P   talks to a parley echo server at
//                                      ws://127.0.0.1:P/ws, then closes (4001)
//   node ws_peer.mjs server            serves one connection; prints
//                                      "listening on 127.0.0.1:PORT" first
//
// The server answers "fragment" with a message in three fragments, "ping" by
// pinging the client and saying "pong ok" once the pong came, "close" by
// closing with 4002 "node server", anything else by echoing it. Exit status 0
// when everything went as expected; a failing check prints why.
//
// With --deflate, both roles insist on permessage-deflate and compress every
// message (threshold 0), saying "ok: permessage-deflate" once negotiated;
// without, the client offers it (ws's default) and the server does not.
import process from "node:process";
import { WebSocket, WebSocketServer } from "ws";

const MIB = 1024 * 1024;
const LIMIT = 2 * MIB;
const mode = process.argv[2];
const portArg = process.argv.indexOf("--port");
const port = portArg > 0 ? Number(process.argv[portArg + 1]) : 0;
const deflate = process.argv.includes("--deflate");

function checkDeflate(ws) {
  const negotiated = ws.extensions.includes("permessage-deflate");
  if (deflate && !negotiated) fail(`permessage-deflate was not negotiated: '${ws.extensions}'`);
  if (!deflate && negotiated) fail("compression was negotiated though parley's side has it off");
  if (deflate) console.log("ok: permessage-deflate");
}

function fail(why) {
  console.log("FAILED: " + why);
  process.exit(1);
}
setTimeout(() => fail("timed out after 30 s"), 30000).unref();

// Resolves with the next message as [data, isBinary].
function nextMessage(ws) {
  return new Promise((resolve, reject) => {
    ws.once("message", (data, isBinary) => resolve([data, isBinary]));
    ws.once("close", () => reject(new Error("closed while waiting for a message")));
  });
}

async function expect(ws, want, binary, what) {
  const [data, isBinary] = await nextMessage(ws);
  const wantBuffer = Buffer.isBuffer(want) ? want : Buffer.from(want, "utf8");
  if (isBinary !== binary || !Buffer.from(data).equals(wantBuffer))
    fail(`${what}: got ${data.length} bytes (binary ${isBinary}), want ${wantBuffer.length} (binary ${binary})`);
  console.log("ok: " + what);
}

function sendFragments(ws, parts) {
  parts.forEach((p, i) => ws.send(p, { fin: i === parts.length - 1, binary: false }));
}

async function client() {
  const options = { maxPayload: LIMIT };
  if (deflate) options.perMessageDeflate = { threshold: 0 };
  const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`, options);
  await new Promise((resolve, reject) => {
    ws.once("open", resolve);
    ws.once("error", reject);
  });
  checkDeflate(ws);
  ws.send("hello");
  await expect(ws, "hello", false, "text echo");
  const big = Buffer.alloc(MIB);
  for (let i = 0; i < MIB; ++i) big[i] = i % 251;
  ws.send(big);
  await expect(ws, big, true, "1 MiB binary echo");
  sendFragments(ws, ["frag", "men", "ted \u2713"]);
  await expect(ws, "fragmented \u2713", false, "fragmented message echo");
  await new Promise((resolve) => {
    ws.once("pong", (data) => {
      if (data.toString() !== "node-ping") fail("pong payload " + data.toString());
      resolve();
    });
    ws.ping("node-ping");
  });
  console.log("ok: pong");
  const [code, reason] = await new Promise((resolve) => {
    ws.once("close", (c, r) => resolve([c, r.toString()]));
    ws.close(4001, "node done");
  });
  console.log(`client done, server closed with ${code} '${reason}'`);
  if (code !== 4001) fail("the server did not echo the close code");
  process.exit(0);
}

function server() {
  const wss = new WebSocketServer({
    host: "127.0.0.1",
    port: 0,
    maxPayload: LIMIT,
    perMessageDeflate: deflate ? { threshold: 0 } : false,
  });
  wss.on("listening", () => console.log(`listening on 127.0.0.1:${wss.address().port}`));
  wss.on("connection", (ws) => {
    checkDeflate(ws);
    ws.on("message", (data, isBinary) => {
      const text = isBinary ? null : data.toString();
      if (text === "fragment") {
        sendFragments(ws, ["frag", "men", "ted"]);
      } else if (text === "ping") {
        ws.once("pong", () => ws.send("pong ok"));
        ws.ping("from node");
      } else if (text === "close") {
        ws.close(4002, "node server");
      } else {
        ws.send(data, { binary: isBinary });
      }
    });
    ws.on("close", (code, reason) => {
      console.log(`server done, client closed with ${code} '${reason.toString()}'`);
      wss.close();
      process.exit(0);
    });
  });
}

if (mode === "client") await client();
else if (mode === "server") server();
else fail("usage: ws_peer.mjs client --port P | server");
