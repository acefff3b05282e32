// The guest's cost a message under V8 (bench/wasm/guest/run): the RPC
// benchmark's callee as a component's core module (rpcponger.opt.wasm),
// instantiated by Node.js with imports in JavaScript that lower the same
// request as native.c's host table gives (the canonical ABI's layouts of
// src/common/cabi_layout.h, each string through the guest's cabi_realloc)
// and read its answers from its memory.  The wasm host (src/wasm/host.mjs)
// lowers in C through its addon instead; this is the guest with a host that
// costs little, as w2c.c's.
//
//   node v8.mjs <rpcponger.opt.wasm> <messages> <warm-up messages>
//
// prints one JSON line as native.c does.
import fs from 'node:fs';

const [file, timedArg, warmArg] = process.argv.slice(2);
const timed = Number(timedArg);
const warm = Number(warmArg);
if (!file || !(timed > 0) || !(warm >= 0)) {
  console.error('usage: node v8.mjs <rpcponger.opt.wasm> <messages> <warm-up>');
  process.exit(2);
}

// The offsets of src/common/cabi_layout.h this host writes.
const CW = {
  RECEIVE_RESULT_SIZE: 152, AWAIT_RESULT_SIZE: 136, RESULT_PAYLOAD: 8,
  ADDR_NODE: 0, ADDR_PROCESS: 8, PID_NAME: 0, PID_PACKAGE: 8, PID_PUBLISHER: 16,
  SOURCE_MESSAGE_MESSAGE: 32, MESSAGE_PAYLOAD: 8, REQUEST_INHERIT: 0,
  REQUEST_EXPECTS: 8, OPT_U64_VAL: 8, REQUEST_BODY: 24, REQUEST_METADATA: 32,
  REQUEST_CAPS: 44, CAP_ALIGN: 4, SEND_ERROR_TARGET: 4, SEND_ERROR_MESSAGE: 40,
  SEND_ERROR_BLOB: 104,
};

let memory, u8, dv, realloc;
// The views again when the memory grew (its buffer is then another).
function fresh() {
  if (u8.buffer !== memory.buffer) {
    u8 = new Uint8Array(memory.buffer);
    dv = new DataView(memory.buffer);
  }
}
// A string of ASCII at `at`: (ptr, len), its bytes in a block of the guest's.
function wstr(at, s) {
  const p = realloc(0, 0, 1, s.length);
  fresh();
  for (let i = 0; i < s.length; i++) u8[p + i] = s.charCodeAt(i);
  dv.setUint32(at, p, true);
  dv.setUint32(at + 4, s.length, true);
}
function waddr(at, node, name) {
  wstr(at + CW.ADDR_NODE, node);
  wstr(at + CW.ADDR_PROCESS + CW.PID_NAME, name);
  wstr(at + CW.ADDR_PROCESS + CW.PID_PACKAGE, 'rpcbench');
  wstr(at + CW.ADDR_PROCESS + CW.PID_PUBLISHER, 'bench.os');
}

let received = 0;
let answers = 0;
let answerSum = 0;
let t0 = 0n;
const standard = {
  receive(ret) {
    if (received === warm) t0 = process.hrtime.bigint();
    if (received === warm + timed) {
      const ns = Number(process.hrtime.bigint() - t0);
      console.log(JSON.stringify({ runtime: 'v8', n: timed, ns_per_msg: +(ns / timed).toFixed(1),
        answers, sum: answerSum }));
      process.exit(0);
    }
    received++;
    fresh();
    u8.fill(0, ret, ret + CW.RECEIVE_RESULT_SIZE);
    const src = ret + CW.RESULT_PAYLOAD;
    waddr(src, 'bench.os', 'rpcpinger');
    const msg = src + CW.SOURCE_MESSAGE_MESSAGE;
    fresh();
    u8[msg] = 0; // a request
    const rq = msg + CW.MESSAGE_PAYLOAD;
    u8[rq + CW.REQUEST_INHERIT] = 0;
    u8[rq + CW.REQUEST_EXPECTS] = 1;
    dv.setBigUint64(rq + CW.REQUEST_EXPECTS + CW.OPT_U64_VAL, 30n, true);
    wstr(rq + CW.REQUEST_BODY, `{"Pong":${received}}`);
    fresh();
    u8[rq + CW.REQUEST_METADATA] = 0;
    const caps = realloc(0, 0, CW.CAP_ALIGN, 0);
    fresh();
    dv.setUint32(rq + CW.REQUEST_CAPS, caps, true);
    dv.setUint32(rq + CW.REQUEST_CAPS + 4, 0, true);
  },
  'send-response'(inherit, body, bodyLen) {
    answers++;
    fresh();
    for (let i = 0; i < bodyLen; i++) answerSum += u8[body + i];
  },
  our(ret) { waddr(ret, 'bench.os', 'rpcponger'); },
  'get-blob'(ret) { fresh(); u8[ret] = 0; },
  'last-blob'(ret) { fresh(); u8[ret] = 0; },
  'get-state'(ret) { fresh(); u8[ret] = 0; },
  'set-state'() {},
  'set-on-exit'() {},
  'print-to-terminal'(level, p, n) {
    fresh();
    console.error('v8.mjs: the process says:', Buffer.from(u8.subarray(p, p + n)).toString());
  },
  'send-request'() { throw new Error('the process sent a request'); },
  // its only call: the log's drive at init (vfs), answered offline
  'send-and-await-response'(params, ret) {
    fresh();
    u8.fill(0, ret, ret + CW.AWAIT_RESULT_SIZE);
    u8[ret] = 1;
    const e = ret + CW.RESULT_PAYLOAD;
    u8[e] = 0;
    waddr(e + CW.SEND_ERROR_TARGET, 'bench.os', 'vfs');
  },
};
let x = 0x9e3779b97f4a7c15n; // a bench needs no entropy
const imports = {
  'hyperware:process/standard@1.0.0': standard,
  'wasi:clocks/monotonic-clock@0.2.0': { now: () => process.hrtime.bigint() },
  'wasi:clocks/wall-clock@0.2.0': {
    now(ret) {
      const t = Date.now();
      fresh();
      dv.setBigUint64(ret, BigInt(Math.floor(t / 1000)), true);
      dv.setUint32(ret + 8, (t % 1000) * 1e6, true);
    },
  },
  'wasi:random/random@0.2.0': {
    'get-random-u64'() {
      x ^= (x << 13n) & 0xffffffffffffffffn;
      x ^= x >> 7n;
      x ^= (x << 17n) & 0xffffffffffffffffn;
      return BigInt.asIntN(64, x);
    },
  },
};
const { instance } = await WebAssembly.instantiate(fs.readFileSync(file), imports);
memory = instance.exports.memory;
u8 = new Uint8Array(memory.buffer);
dv = new DataView(memory.buffer);
realloc = instance.exports.cabi_realloc;
instance.exports._initialize();
const our = 'rpcponger:rpcbench:bench.os@bench.os';
const p = realloc(0, 0, 1, our.length);
fresh();
for (let i = 0; i < our.length; i++) u8[p + i] = our.charCodeAt(i);
instance.exports.init(p, our.length);
console.error('v8.mjs: the process returned before its last message');
process.exit(1);
