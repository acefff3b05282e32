// The wasm32 ABI binding (src/guest/abi_wasm.c, src/guest/wasi_shim.c)
// against a host built by jco: tests/wasm/abi_probe.c calls every function
// of include/hyperc/abi.h with fixed inputs and prints what it gets back;
// the imports below record what they are given and answer fixed values.
// Both are compared, function by function, with abi_probe.expected.
//
//   node abi_test.mjs <wasm tools folder> <abi_probe.wasm> <abi_probe.expected>
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const [tools, component, expectedFile] = process.argv.slice(2);
const { loadComponent } = await import(pathToFileURL(path.join(tools, 'load.mjs')).href);
// every import call and printed line, in order: [function, args]
const log = [];
const rec = (name) => (...args) => { log.push([name, args]); };
const A = (node, p, k, u) => ({ node, process: { processName: p, packageName: k, publisherNode: u } });
let getState = 0, spawnN = 0, recvN = 0, awaitN = 0;
const enc = new TextEncoder();
const std = {
  printToTerminal: (v, m) => { log.push(['print', [v, m]]); },
  our: () => A('our.os', 'abi-probe', 'probe', 'hyperc.os'),
  getOnExit: () => ({ tag: 'requests', val: [[A('x.os', 'p', 'k', 'u'), { inherit: true, expectsResponse: 9n, body: enc.encode('ex'), metadata: 'md', capabilities: [{ issuer: A('i.os', 'a', 'b', 'c'), params: '"messaging"' }] }, { mime: 'm/x', bytes: enc.encode('eb') }]] }),
  setOnExit: rec('setOnExit'), getState: () => (getState++ ? new Uint8Array(0) : undefined),
  setState: rec('setState'), clearState: rec('clearState'),
  spawn: (...a) => { log.push(['spawn', a]); spawnN++; if (spawnN == 1) return { processName: 'kid', packageName: 'probe', publisherNode: 'hyperc.os' }; throw { payload: spawnN == 2 ? 'name-taken' : 'no-file-at-path' }; },
  saveCapabilities: rec('saveCapabilities'), dropCapabilities: rec('dropCapabilities'),
  ourCapabilities: () => [{ issuer: A('our.os', 'abi-probe', 'probe', 'hyperc.os'), params: '{"root":true}' }],
  receive: () => { recvN++; if (recvN == 1) return [A('src.os', 's', 'k', 'u'), { tag: 'request', val: { inherit: false, expectsResponse: 30n, body: enc.encode('req'), metadata: undefined, capabilities: [] } }];
    if (recvN == 2) return [A('src.os', 's', 'k', 'u'), { tag: 'response', val: [{ inherit: true, body: new Uint8Array(0), metadata: '{"r":1}', capabilities: [] }, new Uint8Array([99])] }];
    throw { payload: [{ kind: 'offline', target: A('gone.os', 'g', 'k', 'u'), message: { tag: 'request', val: { inherit: false, expectsResponse: 5n, body: enc.encode('lost'), metadata: undefined, capabilities: [] } }, lazyLoadBlob: undefined }, enc.encode('ctx')] }; },
  hasBlob: () => true, getBlob: () => ({ mime: undefined, bytes: enc.encode('gb') }), lastBlob: () => undefined,
  sendRequest: rec('sendRequest'), sendRequests: rec('sendRequests'), sendResponse: rec('sendResponse'),
  sendAndAwaitResponse: (...a) => { log.push(['sendAndAwaitResponse', a]); awaitN++; if (awaitN == 1) return [A('peer.os', 'echo', 'probe', 'hyperc.os'), { tag: 'response', val: [{ inherit: false, body: enc.encode('pong'), metadata: undefined, capabilities: [] }, undefined] }];
    throw { payload: { kind: 'timeout', target: A('peer.os', 'echo', 'probe', 'hyperc.os'), message: { tag: 'request', val: { inherit: true, expectsResponse: 1n, body: enc.encode('ping'), metadata: undefined, capabilities: [] } }, lazyLoadBlob: { mime: 'x/y', bytes: enc.encode('aw') } } }; },
};
// a pollable that records its use (nanosleep in the probe)
class Pollable {
  block() { log.push(['pollableBlock', []]); }
}
// the fixed answers of the host
const ex = await loadComponent(component, { 'hyperware:process/standard': std,
  'wasi:clocks/wall-clock': { now: () => ({ seconds: 1n, nanoseconds: 2 }) },
  'wasi:clocks/monotonic-clock': { now: () => 3n, subscribeDuration: (ns) => { log.push(['subscribeDuration', [ns]]); return new Pollable(); } },
  'wasi:io/poll': { Pollable },
  'wasi:random/random': { getRandomU64: () => 4n } });
ex.init('our.os@abi-probe:probe:hyperc.os');

// one line per entry: a printed line as is, a call as JSON (u64 as "Nn",
// bytes as "B:text", none as "<undef>")
const rep = (k, v) => typeof v === 'bigint' ? v.toString() + 'n'
  : v instanceof Uint8Array ? 'B:' + Buffer.from(v).toString('latin1')
  : v === undefined ? '<undef>' : v;
// (a printed line at another level than the probe's 1 is prefixed "[level] ")
const got = log.map((l) => (l[0] !== 'print' ? JSON.stringify(l, rep)
  : l[1][0] === 1 ? l[1][1] : `[${l[1][0]}] ${l[1][1]}`));
// ABI_TEST_PRINT=1: print what came, to review it for a new expected file
if (process.env.ABI_TEST_PRINT) {
  console.log(got.join('\n'));
  process.exit(0);
}
const want = fs.readFileSync(expectedFile, 'utf8').split('\n').filter((l) => l !== '');

// group both by the function a line is about: a call's name, or a printed
// line's "name:" prefix
const fnOf = (line) => {
  const m = line.startsWith('["') ? /^\["([A-Za-z]+)"/.exec(line)
    : /^(?:\[\d\] )?([a-z-]+)/.exec(line);
  return m ? m[1].replace(/-([a-z])/g, (_, c) => c.toUpperCase()) : '?';
};
const groups = new Map();
const add = (line, side) => {
  const f = fnOf(line);
  if (!groups.has(f)) groups.set(f, { got: [], want: [] });
  groups.get(f)[side].push(line);
};
got.forEach((l) => add(l, 'got'));
want.forEach((l) => add(l, 'want'));
let failed = 0;
for (const [f, g] of groups) {
  const same = g.got.length === g.want.length && g.got.every((l, i) => l === g.want[i]);
  console.log(`${same ? 'ok  ' : 'FAIL'} ${f} (${g.want.length} lines)`);
  if (!same) {
    failed++;
    console.log(`  expected:\n    ${g.want.join('\n    ')}\n  got:\n    ${g.got.join('\n    ')}`);
  }
}
const order = got.length === want.length && got.every((l, i) => l === want[i]);
if (!order && !failed)
  console.log('FAIL the calls came in another order than expected');
process.exit(failed || !order ? 1 : 0);
