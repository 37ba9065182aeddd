// The chat page in a real browser: two Chromium pages, a framed client and a
// line-mode user in one room of a running chat_server; then a third page,
// behind a TCP relay that drops its connection, resumes its session.
//
//   node chat_page_test.mjs --web PORT --framed PORT --line PORT [--screenshot FILE] [--deflate 1]
//
// With --deflate 1 (a server run with --web-deflate), every page's WebSocket
// handshake must have negotiated permessage-deflate (read from Chromium's
// DevTools protocol).
//
// Exits 0 when every check held, 1 with the reason otherwise, 77 when no
// browser is installed (the caller reports the test as skipped).
import fs from "node:fs";
import net from "node:net";
import process from "node:process";

const args = Object.fromEntries(
  process.argv.slice(2).reduce((pairs, a, i, all) => (a.startsWith("--") ? [...pairs, [a.slice(2), all[i + 1]]] : pairs), []));
const host = "127.0.0.1";
const chromium = process.env.PARLEY_CHROMIUM || "/usr/bin/chromium";
if (!fs.existsSync(chromium)) {
  console.log(`skip: no browser at ${chromium} (Debian: apt-get install chromium)`);
  process.exit(77);
}
const { default: puppeteer } = await import("puppeteer-core");

const deadline = (ms, what) => new Promise((_, reject) => setTimeout(() => reject(new Error("timed out: " + what)), ms));
const within = (promise, what, ms = 15000) => Promise.race([promise, deadline(ms, what)]);

// A framed client: 4-byte big-endian length, then UTF-8 JSON / text.
function framedClient(port) {
  const socket = net.connect(port, host);
  let buffer = Buffer.alloc(0);
  const events = [], waiters = [];
  socket.on("data", (chunk) => {
    buffer = Buffer.concat([buffer, chunk]);
    while (buffer.length >= 4 && buffer.length >= 4 + buffer.readUInt32BE(0)) {
      const n = buffer.readUInt32BE(0);
      const ev = JSON.parse(buffer.subarray(4, 4 + n).toString("utf8"));
      buffer = buffer.subarray(4 + n);
      events.push(ev);
      for (const w of waiters.splice(0)) w();
    }
  });
  return {
    send(text) {
      const payload = Buffer.from(text, "utf8");
      const header = Buffer.alloc(4);
      header.writeUInt32BE(payload.length);
      socket.write(Buffer.concat([header, payload]));
    },
    async waitFor(pred, what) {
      return within((async () => {
        for (;;) {
          const found = events.find(pred);
          if (found) return found;
          await new Promise((r) => waiters.push(r));
        }
      })(), "framed client waiting for " + what);
    },
    events: () => events.slice(),
    close() { socket.destroy(); },
  };
}

// A line-mode user, as with `nc`.
function lineClient(port) {
  const socket = net.connect(port, host);
  let text = "";
  const waiters = [];
  socket.on("data", (chunk) => { text += chunk.toString("utf8"); for (const w of waiters.splice(0)) w(); });
  return {
    send(line) { socket.write(line + "\n"); },
    async waitFor(needle) {
      return within((async () => {
        while (!text.includes(needle)) await new Promise((r) => waiters.push(r));
      })(), "line user waiting for " + JSON.stringify(needle));
    },
    close() { socket.destroy(); },
  };
}

// A TCP relay to the web port that can drop every connection through it (the
// server sees its peer's connection end, as after a network drop) and refuse
// new ones for a while.
function relay(port) {
  const sockets = new Set();
  let blocked = false;
  const server = net.createServer((inbound) => {
    if (blocked) return inbound.destroy();
    const outbound = net.connect(port, host);
    for (const s of [inbound, outbound]) {
      sockets.add(s);
      s.on("error", () => {});
      s.on("close", () => { sockets.delete(s); inbound.destroy(); outbound.destroy(); });
    }
    inbound.pipe(outbound);
    outbound.pipe(inbound);
  });
  return {
    listen: () => new Promise((r) => server.listen(0, host, () => r(server.address().port))),
    drop() { blocked = true; for (const s of sockets) s.resetAndDestroy ? s.resetAndDestroy() : s.destroy(); },
    allow() { blocked = false; },
    close() { server.close(); for (const s of sockets) s.destroy(); },
  };
}

const browser = await puppeteer.launch({
  executablePath: chromium,
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});
let failed = false;
let step = "starting the browser";
const pages = {};
try {
  const url = `http://${host}:${args.web}/`;
  const open = async (nick, viewport, at = url) => {
    const page = await browser.newPage();
    page.on("pageerror", (e) => { failed = true; console.error(`page error (${nick}): ${e.message}`); });
    const extensions = [];
    if (args.deflate === "1") {
      const cdp = await page.createCDPSession();
      await cdp.send("Network.enable");
      cdp.on("Network.webSocketHandshakeResponseReceived", (e) => {
        const h = e.response.headers;
        extensions.push(h["Sec-WebSocket-Extensions"] ?? h["sec-websocket-extensions"] ?? "");
      });
    }
    if (viewport) await page.setViewport(viewport);
    await page.goto(at, { waitUntil: "load" });
    await page.waitForFunction(() => document.getElementById("log").textContent.includes("连接成功"), { timeout: 15000, polling: 100 });
    await page.type("#input", nick);
    await page.keyboard.press("Enter");
    pages[nick] = page;
    await page.waitForFunction((n) => document.getElementById("log").textContent.includes("you are " + n), { timeout: 15000, polling: 100 }, nick);
    if (args.deflate === "1") {
      if (!extensions.some((x) => x.startsWith("permessage-deflate")))
        throw new Error(`${nick}'s page did not negotiate permessage-deflate: ${JSON.stringify(extensions)}`);
      console.log(`ok: permessage-deflate for ${nick}: ${extensions[0]}`);
    }
    return page;
  };
  const logHas = (page, needle) =>
    page.waitForFunction((s) => document.getElementById("log").textContent.includes(s), { timeout: 15000, polling: 100 }, needle);
  const say = async (page, text) => {
    await page.type("#input", text);
    await page.keyboard.press("Enter");
  };

  step = "alice opens the page";
  const alice = await open("alice", { width: 1100, height: 700 });
  step = "bob opens the page on a phone-sized screen";
  const bob = await open("bob", { width: 390, height: 844, isMobile: true, hasTouch: true });

  step = "a framed client logs in";
  const framed = framedClient(Number(args.framed));
  await framed.waitFor((e) => e.type === "welcome", "welcome");
  framed.send("carol");
  await framed.waitFor((e) => e.type === "nick_accepted", "nick_accepted");

  step = "a line user logs in";
  const line = lineClient(Number(args.line));
  await line.waitFor("连接成功");
  line.send("dave");
  await line.waitFor("welcome, dave");

  // Browser to everyone.
  step = "alice says hello";
  await say(alice, "hello from a browser");
  await logHas(bob, "hello from a browser");
  await framed.waitFor((e) => e.type === "message" && e.from === "alice" && e.text === "hello from a browser", "alice's message");
  await line.waitFor("[lobby] alice: hello from a browser");
  // Everyone to the browsers.
  step = "the framed client and the line user answer";
  framed.send("hi from a framed client");
  line.send("hi from nc");
  await logHas(alice, "hi from a framed client");
  await logHas(alice, "hi from nc");
  await logHas(bob, "hi from nc");
  // Members and a private message.
  step = "alice sees the members";
  await alice.waitForFunction(() => [...document.querySelectorAll("#members li")].map((li) => li.textContent).join(",").includes("dave"), { timeout: 15000, polling: 100 });
  step = "bob writes to alice privately";
  await say(bob, "/msg alice just for you");
  await logHas(alice, "just for you");
  // Markup is text: nothing runs, no element is made from it.
  step = "bob sends markup";
  const attacks = ['<img src=x onerror="window.__pwned=1">', "<script>window.__pwned=2</script>", "<b>bold?</b>"];
  for (const a of attacks) await say(bob, a);
  for (const a of attacks) await logHas(alice, a);
  const injected = await alice.evaluate(() => ({
    pwned: window.__pwned ?? null,
    elements: document.querySelectorAll("#log img, #log script, #log b").length,
  }));
  if (injected.pwned !== null || injected.elements !== 0)
    throw new Error("markup in a message was interpreted: " + JSON.stringify(injected));
  // A phone-sized screen: nothing wider than the screen, the input usable.
  step = "checking the phone layout";
  const phone = await bob.evaluate(() => ({
    overflow: document.documentElement.scrollWidth - window.innerWidth,
    input: document.getElementById("input").getBoundingClientRect().width,
  }));
  if (phone.overflow > 0 || phone.input < 200)
    throw new Error("phone layout: " + JSON.stringify(phone));
  // Rooms: alice joins #rust, and the room list shows it as current.
  step = "alice joins #rust";
  await say(alice, "/join rust");
  await alice.waitForFunction(() => document.querySelector("#rooms li.current")?.textContent.includes("#rust"), { timeout: 15000, polling: 100 });

  // Resume: erin's connection drops; what carol says meanwhile reaches erin
  // once after the reconnect, and nobody sees erin leave or join again.
  step = "erin opens the page through a relay";
  const link = relay(Number(args.web));
  const erin = await open("erin", null, `http://${host}:${await link.listen()}/`);
  const count = (page, needle) => page.evaluate((s) =>
    [...document.querySelectorAll("#log .line")].filter((l) => l.textContent.includes(s)).length, needle);
  framed.send("before the drop");
  await logHas(erin, "before the drop");
  await erin.waitForFunction(() => [...document.querySelectorAll("#members li")].length >= 4, { timeout: 15000, polling: 100 });
  step = "erin's connection drops";
  link.drop();
  await logHas(erin, "connection lost");
  const missed = ["missed one", "missed two", "missed three"];
  for (const m of missed) framed.send(m);
  for (const m of missed)
    await framed.waitFor((e) => e.type === "message" && e.from === "carol" && e.text === m, "carol's " + m);
  step = "erin reconnects and resumes";
  link.allow();
  await logHas(erin, "back as erin: nothing was missed");
  framed.send("after the resume");
  await logHas(erin, "after the resume");
  for (const m of ["before the drop", ...missed, "after the resume"]) {
    const n = await count(erin, m);
    if (n !== 1) throw new Error(`erin's page shows "${m}" ${n} times, not once`);
  }
  if (await count(erin, "nickname_taken") !== 0) throw new Error("erin was refused her nickname");
  const seen = framed.events().filter((e) => (e.type === "leave" || e.type === "join") && e.nick === "erin");
  if (seen.length !== 1 || seen[0].type !== "join")
    throw new Error("the room saw erin come and go: " + JSON.stringify(seen));
  link.close();

  step = "taking the screenshot";
  if (args.screenshot) {
    await say(alice, "/join lobby");
    await alice.waitForFunction(() => document.querySelector("#rooms li.current")?.textContent.includes("#lobby"), { timeout: 15000, polling: 100 });
    await alice.screenshot({ path: args.screenshot });
    const png = fs.readFileSync(args.screenshot);
    if (png.length < 8000 || png.toString("latin1", 1, 4) !== "PNG")
      throw new Error(`screenshot ${args.screenshot} is not a PNG of a page (${png.length} bytes)`);
  }
  framed.close();
  line.close();
  if (failed) throw new Error("the page reported a script error");
  console.log("ok: two browsers, a framed client and a line user chatted; markup stayed text; a dropped page resumed");
} catch (e) {
  console.error(`FAILED while ${step}: ${e.message}`);
  for (const [nick, page] of Object.entries(pages)) {
    const text = await page.evaluate(() => [...document.querySelectorAll("#log .line")].map((l) => l.textContent).join("\n")).catch(() => "?");
    console.error(`--- ${nick}'s page shows:\n${text}`);
  }
  process.exitCode = 1;
} finally {
  await browser.close();
  process.exit(); // the framed and line sockets must not keep Node alive
}
