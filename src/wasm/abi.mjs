// The hot imports of interface `standard` by hand: the canonical ABI's
// lifting and lowering between a hyperc component's memory and the worker
// protocol's msgpack values (docs/worker-protocol.md), with no JS object in
// jco's shape in between.
//
// jco's generated glue wraps every import call in its task bookkeeping
// (a task and a subtask made, looked up and resolved per call) and lowers
// a result field by field through generic code; for a component that
// answers a message at once that was most of the host's time per message.
// The wasm host (host.mjs) hands these functions to the core module in
// place of jco's for receive, send-request, send-response,
// send-and-await-response, the blob calls and the clocks; the component
// and what it imports are the same.  The layouts are those of
// src/guest/abi_wasm.c (checked there with _Static_assert) and of the
// canonical ABI for the WIT in src/wasm/wit/hyperware.wit.
//
// Readers of the node's values take a `bad(what)` that does not return (a
// protocol error); values from the guest that the node could not carry
// throw, so the component traps.

import * as nodeBuffer from 'node:buffer';

// Whether a byte list is UTF-8 (Node.js 18.14 and later have it built in).
const fatal = new TextDecoder('utf-8', { fatal: true });
const utf8Check = nodeBuffer.isUtf8 ?? ((b) => {
    try {
        fatal.decode(b);
        return true;
    } catch {
        return false;
    }
});

// Strings up to this many bytes are looked at in JS first: a call into
// Node.js's checker costs more than a look at a few bytes, and most of the
// node's strings (the names of an address) are short and ASCII.
const SHORT = 64;

export function isUtf8(b) {
    const n = b.length;
    if (n <= SHORT) {
        let i = 0;
        while (i < n && b[i] < 0x80)
            i++;
        if (i === n)
            return true;
    }
    return utf8Check(b);
}

// A guest memory with its cabi_realloc: typed views kept fresh across
// growth (an allocation may grow the memory, which detaches the views).
export class GuestMemory {
    constructor(memory, realloc) {
        this.memory = memory;
        this.realloc = realloc;
        this.ab = null;
        this.u8 = undefined;
        this.fresh();
    }

    // A growth detaches the buffer the views are of (its length becomes
    // 0): only then is the memory's buffer asked for again (an API call).
    // `u8` is a Buffer (its string methods), `plain` a Uint8Array of the
    // same bytes: a byte list is cut from that one, as a Buffer's
    // subarray is a JS function that asks for the ArrayBuffer and makes a
    // Buffer, a Uint8Array's a builtin.
    fresh() {
        if (this.u8 === undefined || this.u8.length === 0) {
            this.ab = this.memory.buffer;
            this.dv = new DataView(this.ab);
            this.u8 = Buffer.from(this.ab);
            this.plain = new Uint8Array(this.ab);
        }
    }

    // n bytes aligned to `align`: their address (the guest owns them).
    alloc(n, align) {
        const p = this.realloc(0, 0, align, n) >>> 0;
        this.fresh();
        return p;
    }

    // That the memory holds the len bytes at ptr (both u32): a component
    // that hands over more traps, as under jco's glue and on the rings.
    check(ptr, len) {
        if (ptr + len > this.plain.length)
            throw new RangeError(`${len} bytes at ${ptr}, outside the component's memory ` +
                `(${this.plain.length} bytes)`);
    }
}

// ------------------------------------------------- lowering (node -> guest)

function isInt(v) {
    return (typeof v === 'number' && Number.isInteger(v)) || typeof v === 'bigint';
}

// The lowering of the node's msgpack values into canonical layouts at an
// address; each checks the value against the protocol's type table.
export class Lowerer {
    // notUtf8(bytes): a string of the node's that is not UTF-8, as the JS
    // string to lower in its place
    constructor(mem, bad, notUtf8) {
        this.m = mem;
        this.bad = bad;
        this.notUtf8 = notUtf8;
    }

    arr(v, n) {
        if (!Array.isArray(v) || (n !== undefined && v.length !== n))
            this.bad(`${typeof v} is not an array${n === undefined ? '' : ` of ${n}`}`);
        return v;
    }

    u8(v) {
        if (!isInt(v) || v < 0 || v > 255)
            this.bad(`${v} is not an integer in 0..255`);
        return Number(v);
    }

    // string at `at`: (ptr, len).  The node's strings come as their UTF-8
    // bytes (the host decodes msgpack strings raw), the host's own as JS
    // strings.
    str(at, s) {
        const m = this.m;
        if (s instanceof Uint8Array && !isUtf8(s))
            s = this.notUtf8(s);
        if (s instanceof Uint8Array) {
            const p = m.alloc(s.length, 1);
            if (s.length > 0)
                m.u8.set(s, p);
            m.dv.setUint32(at, p, true);
            m.dv.setUint32(at + 4, s.length, true);
            return;
        }
        if (typeof s !== 'string')
            this.bad(`${typeof s} is not a str`);
        const n = Buffer.byteLength(s, 'utf8');
        const p = m.alloc(n, 1);
        if (n > 0)
            m.u8.write(s, p, n, 'utf8');
        m.dv.setUint32(at, p, true);
        m.dv.setUint32(at + 4, n, true);
    }

    // list<u8> at `at`: (ptr, len)
    bytes(at, b) {
        if (!(b instanceof Uint8Array))
            this.bad(`${typeof b} is not a bin`);
        const m = this.m;
        const p = m.alloc(b.length, 1);
        if (b.length > 0)
            m.u8.set(b, p);
        m.dv.setUint32(at, p, true);
        m.dv.setUint32(at + 4, b.length, true);
    }

    // option<string> / option<list<u8>> at `at`: tag, then (ptr, len) at 4
    optStr(at, s) {
        if (s === null) {
            this.m.dv.setUint8(at, 0);
            return;
        }
        this.str(at + 4, s);
        this.m.dv.setUint8(at, 1);
    }

    optBytes(at, b) {
        if (b === null) {
            this.m.dv.setUint8(at, 0);
            return;
        }
        this.bytes(at + 4, b);
        this.m.dv.setUint8(at, 1);
    }

    bool(at, v) {
        if (typeof v !== 'boolean')
            this.bad(`${typeof v} is not a bool`);
        this.m.dv.setUint8(at, v ? 1 : 0);
    }

    // address (32 bytes): node, then process-id's three strings
    addr(at, v) {
        const [node, proc] = this.arr(v, 2);
        const [name, pkg, publisher] = this.arr(proc, 3);
        this.str(at, node);
        this.str(at + 8, name);
        this.str(at + 16, pkg);
        this.str(at + 24, publisher);
    }

    // list<capability> at `at`: capabilities of 40 bytes (issuer, params)
    caps(at, v) {
        const list = this.arr(v);
        const p = this.m.alloc(40 * list.length, 4);
        for (let i = 0; i < list.length; i++) {
            const [issuer, params] = this.arr(list[i], 2);
            this.addr(p + 40 * i, issuer);
            this.str(p + 40 * i + 32, params);
        }
        this.m.dv.setUint32(at, p, true);
        this.m.dv.setUint32(at + 4, list.length, true);
    }

    // request (56 bytes, align 8): inherit, option<u64> at 8, body at 24,
    // metadata at 32, capabilities at 44
    request(at, v) {
        const [inherit, expects, body, metadata, caps] = this.arr(v, 5);
        this.bool(at, inherit);
        if (expects === null) {
            this.m.dv.setUint8(at + 8, 0);
        } else {
            if (!isInt(expects) || expects < 0 || BigInt(expects) > 0xffffffffffffffffn)
                this.bad(`${expects} is not a u64`);
            this.m.dv.setUint8(at + 8, 1);
            this.m.dv.setBigUint64(at + 16, BigInt(expects), true);
        }
        this.bytes(at + 24, body);
        this.optStr(at + 32, metadata);
        this.caps(at + 44, caps);
    }

    // response (32 bytes): inherit, body at 4, metadata at 12, capabilities
    // at 24
    response(at, v) {
        const [inherit, body, metadata, caps] = this.arr(v, 4);
        this.bool(at, inherit);
        this.bytes(at + 4, body);
        this.optStr(at + 12, metadata);
        this.caps(at + 24, caps);
    }

    // message (64 bytes, align 8): tag, payload at 8 (a request, or a
    // response and its option<context> at 8 + 32)
    message(at, v) {
        this.arr(v);
        switch (this.u8(v[0])) {
        case 0:
            this.arr(v, 2);
            this.m.dv.setUint8(at, 0);
            this.request(at + 8, v[1]);
            return;
        case 1:
            this.arr(v, 3);
            this.m.dv.setUint8(at, 1);
            this.response(at + 8, v[1]);
            this.optBytes(at + 40, v[2]);
            return;
        default:
            this.bad(`unknown message kind ${v[0]}`);
        }
    }

    // option<lazy-load-blob> (24 bytes): tag, mime option<string> at 4,
    // bytes at 16
    optBlob(at, v) {
        if (v === null) {
            this.m.dv.setUint8(at, 0);
            return;
        }
        const [mime, bytes] = this.arr(v, 2);
        this.optStr(at + 4, mime);
        this.bytes(at + 16, bytes);
        this.m.dv.setUint8(at, 1);
    }

    // send-error (128 bytes, align 8): kind, target at 4, message at 40,
    // blob at 104
    sendError(at, v) {
        const [kind, target, message, blob] = this.arr(v, 4);
        const k = this.u8(kind);
        if (k > 1)
            this.bad(`unknown send-error kind ${kind}`);
        this.m.dv.setUint8(at, k);
        this.addr(at + 4, target);
        this.message(at + 40, message);
        this.optBlob(at + 104, blob);
    }

    // The REPLY's receive-result (withContext) or await-result at `ret`:
    // result<tuple<address, message>, E>, the payload at 8.  Returns
    // whether it was ok.
    received(ret, v, withContext) {
        this.arr(v);
        const kind = this.u8(v[0]);
        if (kind === 0) {
            this.arr(v, 3);
            this.m.dv.setUint8(ret, 0);
            this.addr(ret + 8, v[1]);
            this.message(ret + 40, v[2]);
            return true;
        }
        if (kind !== 1)
            this.bad(`unknown result kind ${kind}`);
        this.arr(v, withContext ? 3 : 2);
        this.m.dv.setUint8(ret, 1);
        this.sendError(ret + 8, v[1]);
        if (withContext)
            this.optBytes(ret + 136, v[2]); // receive's tuple<send-error, option<context>>
        return false;
    }

    // option<lazy-load-blob> from jco's shape ({mime, bytes} | undefined),
    // the host's kept blob: at `ret`
    keptBlob(ret, b) {
        if (b === undefined) {
            this.m.dv.setUint8(ret, 0);
            return;
        }
        this.optStr(ret + 4, b.mime === undefined ? null : b.mime);
        this.bytes(ret + 16, b.bytes);
        this.m.dv.setUint8(ret, 1);
    }
}

// ------------------------------------------------- lifting (guest -> node)

// A string for the node: C strings hold it, so no NUL.
function noNul(s) {
    if (s.includes('\0'))
        throw new TypeError('a string with a NUL character, which the node cannot carry');
    return s;
}

// The lifting of the guest's canonical values into the node's msgpack
// values.  Byte lists are views of the guest's memory: valid until the
// guest runs again, so they are encoded before the import returns.
export class Lifter {
    constructor(mem) {
        this.m = mem;
    }

    str(ptr, len) {
        this.m.check(ptr >>> 0, len >>> 0);
        return noNul(this.m.u8.toString('utf8', ptr >>> 0, (ptr >>> 0) + (len >>> 0)));
    }

    strAt(at) {
        const dv = this.m.dv;
        return this.str(dv.getUint32(at, true), dv.getUint32(at + 4, true));
    }

    bytes(ptr, len) {
        this.m.check(ptr >>> 0, len >>> 0);
        return this.m.plain.subarray(ptr >>> 0, (ptr >>> 0) + (len >>> 0));
    }

    bytesAt(at) {
        const dv = this.m.dv;
        return this.bytes(dv.getUint32(at, true), dv.getUint32(at + 4, true));
    }

    optStrAt(at) {
        return this.m.dv.getUint8(at) ? this.strAt(at + 4) : null;
    }

    optBytesAt(at) {
        return this.m.dv.getUint8(at) ? this.bytesAt(at + 4) : null;
    }

    addrAt(at) {
        return [this.strAt(at), [this.strAt(at + 8), this.strAt(at + 16), this.strAt(at + 24)]];
    }

    caps(ptr, len) {
        this.m.check(ptr >>> 0, 40 * (len >>> 0));
        const out = new Array(len >>> 0);
        for (let i = 0; i < out.length; i++) {
            const at = (ptr >>> 0) + 40 * i;
            out[i] = [this.addrAt(at), this.strAt(at + 32)];
        }
        return out;
    }

    capsAt(at) {
        const dv = this.m.dv;
        return this.caps(dv.getUint32(at, true), dv.getUint32(at + 4, true));
    }

    // u64 in its shortest msgpack form: a number when it fits 32 bits
    // (the encoder writes a BigInt as a full u64)
    u64At(at) {
        const dv = this.m.dv;
        const hi = dv.getUint32(at + 4, true);
        return hi === 0 ? dv.getUint32(at, true) : dv.getBigUint64(at, true);
    }

    requestAt(at) {
        const dv = this.m.dv;
        return [
            dv.getUint8(at) !== 0,
            dv.getUint8(at + 8) ? this.u64At(at + 16) : null,
            this.bytesAt(at + 24),
            this.optStrAt(at + 32),
            this.capsAt(at + 44),
        ];
    }

    // option<lazy-load-blob> at `at`: nil or [mime | nil, bytes]
    optBlobAt(at) {
        if (!this.m.dv.getUint8(at))
            return null;
        return [this.optStrAt(at + 4), this.bytesAt(at + 16)];
    }
}

// ------------------------------------ packing (guest -> node, no values)

// Thrown by a Packer when the frame does not fit its buffer or holds a
// string that is not UTF-8: the caller then takes the general way (lift
// into values, encode them) for that frame.
export const NOT_PACKED = Symbol('not packed');

// The hot calls' frames written as msgpack straight from the component's
// memory into the host's output buffer: no JS value per field, no JS
// string made from the guest's UTF-8 only to be encoded back to UTF-8.
// Each method writes one msgpack value in its shortest form (the formats
// of the msgpack specification; the node reads any); the guest's strings
// are checked as Lifter.str checks them (no NUL: a TypeError, so the
// component traps), and one that is not UTF-8 is NOT_PACKED (the general
// way makes it a string with replacement characters, as it always did).
export class Packer {
    constructor(mem) {
        this.m = mem;
        this.b = null;
        this.pos = 0;
        this.end = 0;
    }

    // Write from `pos` in the Uint8Array `b`, at most up to `end`.
    start(b, pos, end) {
        this.b = b;
        this.pos = pos;
        this.end = end;
    }

    room(n) {
        if (this.pos + n > this.end)
            throw NOT_PACKED;
    }

    byte(x) {
        this.room(1);
        this.b[this.pos++] = x;
    }

    // The header of a str (0xa0, 0xd9, 0xda, 0xdb) or bin (0xc4, 0xc5,
    // 0xc6) of n bytes.
    head(n, isStr) {
        this.room(5);
        const b = this.b;
        let p = this.pos;
        if (isStr && n < 32) {
            b[p++] = 0xa0 | n;
        } else if (n < 0x100) {
            b[p++] = isStr ? 0xd9 : 0xc4;
            b[p++] = n;
        } else if (n < 0x10000) {
            b[p++] = isStr ? 0xda : 0xc5;
            b[p++] = n >>> 8;
            b[p++] = n & 0xff;
        } else {
            b[p++] = isStr ? 0xdb : 0xc6;
            b[p++] = n >>> 24;
            b[p++] = (n >>> 16) & 0xff;
            b[p++] = (n >>> 8) & 0xff;
            b[p++] = n & 0xff;
        }
        this.pos = p;
    }

    // An array of n (< 16) values: its header; the values follow.
    arr(n) {
        this.byte(0x90 | n);
    }

    nil() {
        this.byte(0xc0);
    }

    bool(v) {
        this.byte(v ? 0xc3 : 0xc2);
    }

    // An unsigned integer of at most 32 bits.
    uint(v) {
        if (v < 0x80) {
            this.byte(v);
            return;
        }
        this.room(5);
        const b = this.b;
        let p = this.pos;
        if (v < 0x100) {
            b[p++] = 0xcc;
            b[p++] = v;
        } else if (v < 0x10000) {
            b[p++] = 0xcd;
            b[p++] = v >>> 8;
            b[p++] = v & 0xff;
        } else {
            b[p++] = 0xce;
            b[p++] = v >>> 24;
            b[p++] = (v >>> 16) & 0xff;
            b[p++] = (v >>> 8) & 0xff;
            b[p++] = v & 0xff;
        }
        this.pos = p;
    }

    // The guest's u64 at `at`.
    u64At(at) {
        const dv = this.m.dv;
        const lo = dv.getUint32(at, true);
        const hi = dv.getUint32(at + 4, true);
        if (hi === 0) {
            this.uint(lo);
            return;
        }
        this.room(9);
        this.b[this.pos] = 0xcf;
        new DataView(this.b.buffer, this.b.byteOffset).setBigUint64(this.pos + 1,
            dv.getBigUint64(at, true), false);
        this.pos += 9;
    }

    // The guest's bytes (ptr, len) as a str or a bin.
    raw(ptr, len, isStr) {
        ptr >>>= 0;
        len >>>= 0;
        this.m.check(ptr, len);
        const src = this.m.plain;
        if (isStr) {
            let i = ptr;
            const e = ptr + len;
            while (i < e && src[i] < 0x80 && src[i] !== 0)
                i++;
            if (i < e) { // not all ASCII, or a NUL
                const s = src.subarray(ptr, e);
                if (s.indexOf(0) >= 0)
                    throw new TypeError('a string with a NUL character, which the node cannot carry');
                if (!isUtf8(s))
                    throw NOT_PACKED;
            }
        }
        this.head(len, isStr);
        this.room(len);
        if (len <= 16) {
            const b = this.b;
            for (let i = 0; i < len; i++)
                b[this.pos + i] = src[ptr + i];
        } else {
            this.b.set(src.subarray(ptr, ptr + len), this.pos);
        }
        this.pos += len;
    }

    strAt(at) {
        const dv = this.m.dv;
        this.raw(dv.getUint32(at, true), dv.getUint32(at + 4, true), true);
    }

    bytesAt(at) {
        const dv = this.m.dv;
        this.raw(dv.getUint32(at, true), dv.getUint32(at + 4, true), false);
    }

    optStrAt(at) {
        if (this.m.dv.getUint8(at))
            this.strAt(at + 4);
        else
            this.nil();
    }

    optBytesAt(at) {
        if (this.m.dv.getUint8(at))
            this.bytesAt(at + 4);
        else
            this.nil();
    }

    // address: [node, [process, package, publisher]]
    addrAt(at) {
        this.arr(2);
        this.strAt(at);
        this.arr(3);
        this.strAt(at + 8);
        this.strAt(at + 16);
        this.strAt(at + 24);
    }

    // list<capability> (ptr, len): [[issuer, params]...]
    caps(ptr, len) {
        ptr >>>= 0;
        len >>>= 0;
        this.m.check(ptr, 40 * len);
        if (len < 16) {
            this.arr(len);
        } else {
            this.room(5);
            this.b[this.pos++] = 0xdd; // array 32
            this.b[this.pos++] = len >>> 24;
            this.b[this.pos++] = (len >>> 16) & 0xff;
            this.b[this.pos++] = (len >>> 8) & 0xff;
            this.b[this.pos++] = len & 0xff;
        }
        for (let i = 0; i < len; i++) {
            const at = ptr + 40 * i;
            this.arr(2);
            this.addrAt(at);
            this.strAt(at + 32);
        }
    }

    capsAt(at) {
        const dv = this.m.dv;
        this.caps(dv.getUint32(at, true), dv.getUint32(at + 4, true));
    }

    // request: [inherit, expects-response | nil, body, metadata | nil, caps]
    requestAt(at) {
        const dv = this.m.dv;
        this.arr(5);
        this.bool(dv.getUint8(at) !== 0);
        if (dv.getUint8(at + 8))
            this.u64At(at + 16);
        else
            this.nil();
        this.bytesAt(at + 24);
        this.optStrAt(at + 32);
        this.capsAt(at + 44);
    }

    // option<lazy-load-blob>: nil or [mime | nil, bytes]
    optBlobAt(at) {
        if (!this.m.dv.getUint8(at)) {
            this.nil();
            return;
        }
        this.arr(2);
        this.optStrAt(at + 4);
        this.bytesAt(at + 16);
    }
}
