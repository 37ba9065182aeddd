// The Node `ws` peer of bench/ws_run.py: a WebSocket broadcast server as its
// users write one (ws's README "broadcast to all other clients"): every text
// message a client sends goes to every other open client, as it was received.
// No compression (ws's server default).
//
//   node bench/ws/ws_broadcast.mjs [PORT]    (0 or none: any free port)
// Prints "listening on 127.0.0.1:PORT" once accepting.
import { WebSocketServer, WebSocket } from 'ws';

const wss = new WebSocketServer({ host: '127.0.0.1', port: Number(process.argv[2] || 0) });
wss.on('connection', (ws) => {
  ws.on('error', () => {});
  ws.on('message', (data, isBinary) => {
    for (const client of wss.clients) {
      if (client !== ws && client.readyState === WebSocket.OPEN) client.send(data, { binary: isBinary });
    }
  });
});
wss.on('listening', () => console.log(`listening on 127.0.0.1:${wss.address().port}`));
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(0));
