// WebSocket load client of bench/http/run: CONNS connections, each sending a
// text message and waiting for its echo before sending the next (closed loop).
// After WARMUP seconds it counts for SECS seconds, then prints one line of
// JSON: messages/s, latency percentiles (microseconds, send to echo), errors,
// and the client's own CPU use (1.0 = one core busy: then the client is the
// limit, not the server).
//
//   node ws_load.js URL [CONNS [WARMUP [SECS [SIZE]]]]
'use strict';
const WebSocket = require('ws');
const { performance } = require('perf_hooks');

const [url, conns = 64, warmup = 2, secs = 10, size = 32] = [
  process.argv[2], ...process.argv.slice(3).map(Number)];
if (!url) {
  console.error('usage: node ws_load.js URL [CONNS [WARMUP [SECS [SIZE]]]]');
  process.exit(2);
}

const MAX_US = 1000000;
const hist = new Uint32Array(MAX_US + 1);
let measuring = false, stopping = false;
let msgs = 0, errors = 0, sumUs = 0, maxUs = 0, outstanding = 0;
let cpu0, t0;

function payload(id, seq) {
  const s = id + ':' + seq + ':';
  return s + 'x'.repeat(Math.max(0, size - s.length));
}

function fail(msg) {
  console.log(JSON.stringify({ error: msg }));
  process.exit(1);
}

const sockets = [];
let opened = 0;
for (let i = 0; i < conns; i++) {
  const ws = new WebSocket(url, { perMessageDeflate: false });
  const c = { ws, id: i, seq: 0, sent: 0, expect: '' };
  sockets.push(c);
  ws.on('error', (e) => fail('connection ' + i + ': ' + e.message));
  ws.on('close', () => { if (!stopping) fail('connection ' + i + ' closed by the server'); });
  ws.on('open', () => { if (++opened === conns) start(); });
  ws.on('message', (data, isBinary) => {
    const us = (performance.now() - c.sent) * 1000;
    outstanding--;
    if (isBinary || data.toString() !== c.expect) errors++;
    if (measuring) {
      msgs++;
      sumUs += us;
      if (us > maxUs) maxUs = us;
      hist[Math.min(Math.round(us), MAX_US)]++;
    }
    if (!stopping) send(c);
    else if (outstanding === 0) finish();
  });
}

function send(c) {
  c.expect = payload(c.id, c.seq++);
  c.sent = performance.now();
  outstanding++;
  c.ws.send(c.expect);
}

function start() {
  for (const c of sockets) send(c);
  setTimeout(() => {
    measuring = true;
    cpu0 = process.cpuUsage();
    t0 = performance.now();
    setTimeout(stop, secs * 1000);
  }, warmup * 1000);
}

let measured, cpu;
function stop() {
  measured = (performance.now() - t0) / 1000;
  cpu = process.cpuUsage(cpu0);
  measuring = false;
  stopping = true;
  if (outstanding === 0) finish();
  setTimeout(() => fail('echoes still missing 10 s after the end: ' + outstanding), 10000).unref();
}

function pct(p) {
  const want = Math.ceil(msgs * p);
  let n = 0;
  for (let i = 0; i <= MAX_US; i++) {
    n += hist[i];
    if (n >= want) return i;
  }
  return MAX_US;
}

let finished = false;
function finish() {
  if (finished) return;
  finished = true;
  const r = {
    conns, size, secs: +measured.toFixed(3), msgs,
    msgs_per_s: +(msgs / measured).toFixed(1),
    p50_us: pct(0.5), p90_us: pct(0.9), p99_us: pct(0.99),
    max_us: Math.round(maxUs), mean_us: +(sumUs / Math.max(msgs, 1)).toFixed(1),
    errors,
    client_cpu: +((cpu.user + cpu.system) / 1e6 / measured).toFixed(2),
  };
  for (const c of sockets) c.ws.terminate();
  console.log(JSON.stringify(r));
  process.exit(errors ? 1 : 0);
}
