// The Node.js peer of bench/http/run: the same JSON work as httpbench.c over
// HTTP, and a WebSocket echo with the npm package `ws`, on one port.
//
//   node node_server.js PORT PREFIX
//
// POST PREFIX/api/sum {"name":..,"values":[..]} -> {"name":..,"count":..,"sum":..}
// WS   PREFIX/ws: each message echoed back.
'use strict';
const http = require('http');
const { WebSocketServer } = require('ws');

const port = Number(process.argv[2]);
const prefix = process.argv[3] || '';
const sumPath = prefix + '/api/sum';

const server = http.createServer((req, res) => {
  if (req.url !== sumPath) {
    res.writeHead(404, { 'Content-Type': 'text/plain' });
    res.end('not found');
    return;
  }
  if (req.method !== 'POST') {
    res.writeHead(405, { Allow: 'POST' });
    res.end();
    return;
  }
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    let out;
    try {
      const r = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      let sum = 0;
      for (const v of r.values) sum += v;
      out = JSON.stringify({ name: r.name, count: r.values.length, sum });
    } catch (e) {
      res.writeHead(400, { 'Content-Type': 'text/plain' });
      res.end(String(e));
      return;
    }
    res.writeHead(200, {
      'Content-Type': 'application/json',
      'Content-Length': Buffer.byteLength(out),
    });
    res.end(out);
  });
});

const wss = new WebSocketServer({ server, path: prefix + '/ws' });
wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
});

server.listen(port, '127.0.0.1', () => console.log('listening on ' + port));
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(0));
