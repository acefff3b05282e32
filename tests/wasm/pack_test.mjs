// The wasm host's Packer (src/wasm/abi.mjs) against the general way: an
// outgoing request and a response laid out in a memory by the Lowerer
// (the canonical layouts), then packed straight from the memory and lifted
// into values and encoded: both must decode to the same frame.  And the
// cases the packer leaves to the general way (NOT_PACKED: no room, a
// string that is not UTF-8) or refuses (a NUL).
//
//   node pack_test.mjs <wasm tools folder>
import assert from 'node:assert/strict';
import path from 'node:path';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';

const tools = path.resolve(process.argv[2]);
const { GuestMemory, Lifter, Lowerer, NOT_PACKED, Packer } =
    await import(pathToFileURL(path.join(tools, 'abi.mjs')).href);
const { Decoder, Encoder } = createRequire(path.join(tools, 'package.json'))('@msgpack/msgpack');

// A memory with a bump allocator as the component's cabi_realloc.
const memory = new WebAssembly.Memory({ initial: 4 });
let top = 1024;
const mem = new GuestMemory(memory, (_old, _oldLen, align, n) => {
    top = (top + align - 1) & -align;
    const p = top;
    top += n;
    return p;
});
const bad = (what) => { throw new Error(`bad: ${what}`); };
const lower = new Lowerer(mem, bad);
const lift = new Lifter(mem);
const pack = new Packer(mem);
const enc = new Encoder({ useBigInt64: true });
const dec = new Decoder({ useBigInt64: true });
const te = new TextEncoder();
const s = (x) => te.encode(x); // the node's strings come as their bytes

const addr = (n, p) => [s(n), [s(p), s('pkg'), s('pub.os')]];
const cap = [addr('issuer.os', 'i'), s('{"messaging":true}')];
const long = 'x'.repeat(300);
const requests = [
    [addr('our.os', 'rpcponger'), [false, 30, s('{"Pong":1}'), null, []], null, null],
    [addr('n\u00e9.os', 'p\u4e2d'), [true, 2 ** 40, new Uint8Array(70000), s('{"m":1}'), [cap, cap]],
        s('ctx'), [s('text/plain'), s(long)]],
    [addr(long, 'p'), [false, null, new Uint8Array(300), s(long + long + long), [cap]], null, [null, s('b')]],
    [addr('a.os', 'b'), [false, 70000, new Uint8Array(0), s(''), []], new Uint8Array(0), null],
];

// The outgoing-request at `p` (128 bytes): target, request at 32,
// context at 88, blob at 100.
function layRequest(v) {
    const p = mem.alloc(128, 8);
    lower.addr(p, v[0]);
    lower.request(p + 32, v[1]);
    lower.optBytes(p + 88, v[2]);
    lower.optBlob(p + 100, v[3]);
    return p;
}

const out = new Uint8Array(1 << 17);
function packed(fn, end = out.length) {
    pack.start(out, 7, end);
    fn(pack);
    return dec.decode(out.subarray(7, pack.pos));
}

for (const v of requests) {
    const p = layRequest(v);
    const general = dec.decode(enc.encode([16, lift.addrAt(p), lift.requestAt(p + 32),
        lift.optBytesAt(p + 88), lift.optBlobAt(p + 100)]));
    const got = packed((k) => {
        k.arr(5);
        k.uint(16);
        k.addrAt(p);
        k.requestAt(p + 32);
        k.optBytesAt(p + 88);
        k.optBlobAt(p + 100);
    });
    assert.deepEqual(got, general);
    // no room: left to the general way, whatever the size
    assert.throws(() => packed((k) => k.addrAt(p), 7 + 10), (e) => e === NOT_PACKED);
}

// a response: [inherit, body, metadata, caps], as send-response packs it
{
    const at = mem.alloc(32, 4);
    lower.response(at, [true, s('{"Ok":7}'), s('m'), [cap]]);
    const dv = mem.dv;
    const general = dec.decode(enc.encode([true, lift.bytesAt(at + 4), lift.optStrAt(at + 12),
        lift.capsAt(at + 24)]));
    const got = packed((k) => {
        k.arr(4);
        k.bool(dv.getUint8(at) !== 0);
        k.bytesAt(at + 4);
        k.optStrAt(at + 12);
        k.capsAt(at + 24);
    });
    assert.deepEqual(got, general);
}

// integers at every width the packer writes
for (const n of [0, 1, 127, 128, 255, 256, 65535, 65536, 2 ** 32 - 1])
    assert.equal(packed((k) => k.uint(n)), n);

// a string that is not UTF-8: the general way; one with a NUL: thrown
{
    const at = mem.alloc(8, 4);
    lower.bytes(at, new Uint8Array([0x61, 0xff, 0x62]));
    assert.throws(() => packed((k) => k.strAt(at)), (e) => e === NOT_PACKED);
    lower.bytes(at, s('a\u0000b'));
    assert.throws(() => packed((k) => k.strAt(at)), /NUL/);
    lower.bytes(at, s('\u00e9\u0000'));
    assert.throws(() => packed((k) => k.strAt(at)), /NUL/);
    lower.bytes(at, s('\u00e9t\u00e9'));
    assert.equal(packed((k) => k.strAt(at)), '\u00e9t\u00e9');
}
console.log('pack_test: ok');
