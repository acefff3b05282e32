// The wasm host: runs one WebAssembly component process for the hyperc node.
//
// The node starts it as `node host.mjs` with file descriptor 3 its link:
// the shared-memory rings a native worker gets (a memfd, read and written
// through the addon hyperc_link.node, src/wasm/link_addon.c) when the addon
// is beside this file, else a connected, blocking stream socket.  It speaks
// the worker protocol on it (docs/worker-protocol.md, version 7): frames of
// a u32 little-endian length and one msgpack array `[op, args...]`.  The host reads HELLO, loads the
// component named there (transpiled by jco into JS and core modules, cached
// by the component's sha256), answers READY, and calls the component's
// `init(our)`.  Every import of interface `standard`
// (src/wasm/wit/hyperware.wit) becomes a call frame; the calls with results
// block on fd 3 for the node's REPLY, so the component runs synchronously
// from start to end, as it would in a Hyperware node.  The life ends with
// DONE (init returned), TRAP (the component trapped) or FAIL (it could not
// be loaded).  The standard streams are not part of the protocol: the host
// writes its diagnostics to stderr.
//
// The hot imports (receive, the sends, the blob calls, the clocks) are
// served by hand, without jco's glue: on the rings by the addon, in C,
// straight between the component's memory and the worker's binding
// (link_cabi.c); over a socket by abi.mjs, straight between the memory and
// the frames' msgpack values.  The others go through jco's glue and the
// `standard` object below.
//
// Set HYPERC_WASM_TRACE=1 to have every frame and the load times written to
// stderr (on the rings, the frames the hot imports make in the addon are
// not shown); HYPERC_WASM_GENERIC=1 to serve every import through jco's
// glue.

import crypto from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';

import { Decoder, Encoder } from '@msgpack/msgpack';

import { GuestMemory, Lifter, Lowerer, NOT_PACKED, Packer, isUtf8 } from './abi.mjs';
import { LoadError, loadComponent } from './load.mjs';

const LINK = 3;                     // the node's socket
const PROTO_VERSION = 7;
const MAX_FRAME = 256 * 1024 * 1024; // HCW_MAX_FRAME
const TRACE = Boolean(process.env.HYPERC_WASM_TRACE);
const GENERIC = Boolean(process.env.HYPERC_WASM_GENERIC);

const OP = {
    PRINT: 1, OUR: 2, GET_ON_EXIT: 3, SET_ON_EXIT: 4, GET_STATE: 5,
    SET_STATE: 6, CLEAR_STATE: 7, SPAWN: 8, SAVE_CAPS: 9, DROP_CAPS: 10,
    OUR_CAPS: 11, RECEIVE: 12, SEND_REQUEST: 16, SEND_RESPONSE: 17,
    SEND_AND_AWAIT: 18,
    HELLO: 64, READY: 65, REPLY: 66, DONE: 67, FAIL: 68, TRAP: 71,
    DELIVER: 72,
};
const OP_NAME = Object.fromEntries(Object.entries(OP).map(([k, v]) => [v, k]));

let processId = '?'; // from HELLO, for diagnostics

const utf8 = new TextDecoder();

// ------------------------------------------------------------ diagnostics

function say(line) {
    try {
        fs.writeSync(2, `hyperc wasm host (${processId}): ${line}\n`);
    } catch {
        // stderr gone: nothing more to do
    }
}

function trace(line) {
    if (TRACE)
        say(line);
}

// The node broke the protocol: a worker exits (the node will see it gone).
function protocolError(why) {
    say(`protocol error: ${why}`);
    process.exit(1);
}

// End of stream between frames: the node is gone or has stopped us.
function nodeGone() {
    trace('the node closed the link');
    process.exit(0);
}

// -------------------------------------------------------------- the link

const encoder = new Encoder({ useBigInt64: true });
// The node's strings are decoded as their UTF-8 bytes (views, as byte
// lists are): most are only copied into the component's memory, which
// wants them as UTF-8 (abi.mjs), so they are not made JS strings to be
// encoded back; rStr makes one where one is wanted.  So a str and a bin
// read alike, and a str is checked to be UTF-8 where it is taken.
const decoder = new Decoder({ useBigInt64: true, rawStrings: true });

// Sleep without spinning, for the EAGAIN that a blocking socket should
// never give.
const pauseCell = new Int32Array(new SharedArrayBuffer(4));
function pause() {
    Atomics.wait(pauseCell, 0, 0, 1);
}

// Both directions are buffered, so that a system call carries as many
// frames as there are: what the node sent comes in with as few reads as
// its size allows.  Over a socket the calls without an answer wait in
// `out` until the host has to wait for the node (a call with results, a
// receive with nothing delivered ahead, a sleep), the guest has made calls
// for FLUSH_MS since the first one waiting, OUT_MAX bytes wait, or the
// life ends; so a guest computing long without an import call holds them.
// On the rings each call goes at once: a write there is a copy, and wakes
// the node only when its reader sleeps (the first frame of a batch).  The
// node sees the calls in the order they were made, as always.
const IN_BYTES = 64 * 1024;
const OUT_MAX = 64 * 1024;
const FLUSH_MS = 1;

const input = { buf: Buffer.allocUnsafeSlow(IN_BYTES), start: 0, end: 0 };
// The same bytes as a Uint8Array: a frame is decoded from a view of this
// one, so that the decoder's views of its byte lists and strings are cut
// by the builtin subarray, not a Buffer's (abi.mjs, GuestMemory).
input.u8 = new Uint8Array(input.buf.buffer, input.buf.byteOffset, IN_BYTES);
const out = { buf: Buffer.allocUnsafeSlow(OUT_MAX), len: 0, since: 0 };
out.u8 = new Uint8Array(out.buf.buffer, out.buf.byteOffset, OUT_MAX);

// The shared-memory link, when fd 3 is one (not a socket): the addon's
// read and write, which spin on the node's rings a little before they
// sleep, as a native worker does; null for a socket.  Once the component
// is loaded (READY), the addon's binding serves the calls (link_addon.c:
// the worker's own, src/worker/binding.h): send() takes the frames of the
// calls without results, call() makes one with results and gives its
// REPLY, and the messages the node delivers ahead stay there.
const rings = openRings();
let bound = false; // READY went through rings.ready()

function openRings() {
    let st;
    try {
        st = fs.fstatSync(LINK);
    } catch (e) {
        say(`no link to the node on fd ${LINK}: ${e.message}`);
        process.exit(1);
    }
    if (st.isSocket())
        return null;
    try {
        const addon = createRequire(import.meta.url)('./hyperc_link.node');
        addon.open(LINK);
        return addon;
    } catch (e) {
        say(`cannot take the node's shared-memory link: ${e.message}`);
        process.exit(1);
    }
}

// Read into `buf` from `off` (blocking): the bytes read, 0 at end of
// stream.
function readSome(buf, off) {
    if (rings !== null) {
        try {
            return rings.read(buf, off);
        } catch (e) {
            say(`cannot read the link: ${e.message}`);
            process.exit(1);
        }
    }
    for (;;) {
        try {
            return fs.readSync(LINK, buf, off, buf.length - off, null);
        } catch (e) {
            if (e.code === 'EAGAIN' || e.code === 'EINTR') {
                pause();
                continue;
            }
            if (e.code === 'ECONNRESET')
                return 0;
            say(`cannot read the link: ${e.message}`);
            process.exit(1);
        }
    }
}

function writeAll(buf, len) {
    if (rings !== null) {
        try {
            if (bound)
                rings.send(buf, len);
            else
                rings.write(buf, len);
            return;
        } catch (e) {
            if (e.code === 'EPIPE')
                nodeGone();
            say(`cannot write the link: ${e.message}`);
            process.exit(1);
        }
    }
    let off = 0;
    while (off < len) {
        try {
            off += fs.writeSync(LINK, buf, off, len - off);
        } catch (e) {
            if (e.code === 'EAGAIN' || e.code === 'EINTR') {
                pause();
                continue;
            }
            if (e.code === 'EPIPE' || e.code === 'ECONNRESET')
                nodeGone();
            say(`cannot write the link: ${e.message}`);
            process.exit(1);
        }
    }
}

// Write the calls that wait in `out`.
function flush() {
    if (out.len === 0)
        return;
    writeAll(out.buf, out.len);
    out.len = 0;
}

// Queue one frame, written at the next flush.  A frame over the
// protocol's limit is the component's doing (a huge body or blob): it is
// thrown, so that the component traps.
function sendFrame(value, encoded) {
    // valid until the next encode
    const body = encoded === undefined ? encoder.encodeSharedRef(value) : encoded;
    if (body.length > MAX_FRAME)
        throw new Error(`a ${OP_NAME[value[0]]} call of ${body.length} bytes, over the link's frame limit`);
    if (TRACE)
        trace(`-> ${OP_NAME[value[0]]} ${show(value.slice(1))}`);
    if (out.len + 4 + body.length > out.buf.length) {
        flush();
        if (4 + body.length > out.buf.length && rings !== null) {
            // by itself, in one piece (the binding takes whole frames)
            const whole = Buffer.allocUnsafe(4 + body.length);
            whole.writeUInt32LE(body.length, 0);
            whole.set(body, 4);
            writeAll(whole, whole.length);
            return;
        }
        if (4 + body.length > out.buf.length) { // a large frame goes by itself
            const head = Buffer.allocUnsafe(4);
            head.writeUInt32LE(body.length, 0);
            writeAll(head, 4);
            writeAll(body, body.length);
            return;
        }
    }
    if (out.len === 0 && rings === null) // (on the rings it goes at once)
        out.since = performance.now();
    out.buf.writeUInt32LE(body.length, out.len);
    out.buf.set(body, out.len + 4);
    out.len += 4 + body.length;
    if (rings !== null || out.len >= OUT_MAX ||
        performance.now() - out.since >= FLUSH_MS)
        flush();
}

// A frame packed straight from the component's memory into `out`
// (abi.mjs, Packer): packStart gives the packer, set to write after what
// waits there, or null when tracing (the general way shows the values);
// after the frame's value is packed, packEnd queues it as sendFrame does.
// A frame the packer cannot take (NOT_PACKED: it does not fit the room
// left, or a string is not UTF-8) goes the general way instead.
function packStart(g) {
    if (TRACE)
        return null;
    const k = g.pack;
    k.start(out.u8, out.len + 4, out.u8.length);
    return k;
}

function packEnd(k) {
    if (out.len === 0 && rings === null)
        out.since = performance.now();
    out.buf.writeUInt32LE(k.pos - out.len - 4, out.len);
    out.len = k.pos;
    if (rings !== null || out.len >= OUT_MAX || performance.now() - out.since >= FLUSH_MS)
        flush();
}

// Whether a whole frame has come already (no system call to read it).
function frameBuffered() {
    const have = input.end - input.start;
    return have >= 4 && have - 4 >= input.buf.readUInt32LE(input.start);
}

// Read one frame: an array starting with an integer op.  Writes what
// waits in `out` before it waits for the node.  Exits when the node has
// gone (end of stream between frames) or broke the protocol.
//
// A frame that has come whole is decoded where it lies in the input
// buffer, so its byte lists (bodies, blobs) are views of that buffer,
// valid until the next recvFrame reads into it: what is kept longer (a
// message delivered ahead and set aside, the last blob) is copied
// (ownFrame, takeBlob).  A frame that has not come whole is read into
// memory of its own.
function recvFrame() {
    while (input.end - input.start < 4) {
        flush();
        if (input.start > 0) { // keep the few bytes of a length there are
            input.buf.copy(input.buf, 0, input.start, input.end);
            input.end -= input.start;
            input.start = 0;
        }
        const n = readSome(input.buf, input.end);
        if (n === 0) {
            if (input.end === 0)
                nodeGone();
            protocolError('end of stream inside a frame');
        }
        input.end += n;
    }
    const n = input.buf.readUInt32LE(input.start);
    if (n > MAX_FRAME)
        protocolError(`a frame of ${n} bytes, over the limit`);
    let body;
    const have = Math.min(n, input.end - input.start - 4);
    if (have === n) {
        body = input.u8.subarray(input.start + 4, input.start + 4 + n);
        input.start += 4 + n;
    } else {
        body = new Uint8Array(n);
        body.set(input.buf.subarray(input.start + 4, input.start + 4 + have));
        input.start += 4 + have;
        for (let off = have; off < n;) { // the rest, straight into the body
            flush();
            const got = readSome(body, off);
            if (got === 0)
                protocolError('end of stream inside a frame');
            off += got;
        }
    }
    if (input.start === input.end)
        input.start = input.end = 0;
    lastBody = body;
    return decodeFrame(body);
}

// The bytes of the frame recvFrame read last.
let lastBody = null;

function decodeFrame(body) {
    let value;
    try {
        value = decoder.decode(body);
    } catch (e) {
        protocolError(`a broken frame (${e.message})`);
    }
    if (!Array.isArray(value) || value.length === 0 || !isInt(value[0]))
        protocolError('a frame that is not an array starting with an operation');
    value[0] = Number(value[0]); // any encoding of the op, even a u64
    if (TRACE)
        trace(`<- ${OP_NAME[value[0]] ?? value[0]} ${show(value.slice(1))}`);
    return value;
}

// `value`, the frame recvFrame read last, with byte lists that outlive
// the next read: decoded again from a copy of its bytes when they lie in
// the input buffer.
function ownFrame(value) {
    if (lastBody.buffer !== input.buf.buffer)
        return value;
    const own = decoder.decode(new Uint8Array(lastBody)); // it decoded once already
    own[0] = value[0];
    return own;
}

let reading = ''; // the op whose REPLY is being read, for the messages

// Messages the node delivered ahead (DELIVER), oldest first, each the
// answer to a RECEIVE still to come.  They come before whatever the node
// answers next, so a wait for a REPLY sets them aside.  Those that wait
// in the input buffer are read when a receive needs them.
const ahead = [];

// A call with results through the addon's binding (after READY): the
// frame of `value` (or its `encoded` body) made, and its REPLY decoded.
// The REPLY's byte lists are views of the input buffer, as recvFrame's
// are, valid until the next call.
function ringsCall(value, encoded) {
    const body = encoded === undefined ? encoder.encodeSharedRef(value) : encoded;
    if (body.length > MAX_FRAME)
        throw new Error(`a ${OP_NAME[value[0]]} call of ${body.length} bytes, over the link's frame limit`);
    if (TRACE)
        trace(`-> ${OP_NAME[value[0]]} ${show(value.slice(1))}`);
    let frame = out.buf;
    if (4 + body.length > out.buf.length)
        frame = Buffer.allocUnsafe(4 + body.length);
    frame.writeUInt32LE(body.length, 0);
    frame.set(body, 4);
    let r;
    try {
        r = rings.call(frame, 4 + body.length, input.u8);
    } catch (e) {
        say(`cannot make a ${OP_NAME[value[0]]} call: ${e.message}`);
        process.exit(1);
    }
    lastBody = typeof r === 'number' ? input.u8.subarray(0, r) : r;
    return decodeFrame(lastBody);
}

// Make a call and, for one with results, wait for its REPLY: the array of
// exactly `nresults` results.
function call(op, args, nresults) {
    if (bound && nresults > 0)
        return replyResults(op, ringsCall([op, ...args]), nresults);
    sendFrame([op, ...args]);
    if (nresults === 0)
        return [];
    let reply = recvFrame();
    while (reply[0] === OP.DELIVER) {
        ahead.push(ownFrame(reply));
        reply = recvFrame();
    }
    return replyResults(op, reply, nresults);
}

// The results of `reply`, the node's answer to a call `op` with
// `nresults`.
function replyResults(op, reply, nresults) {
    if (reply[0] !== OP.REPLY)
        protocolError(`the node answered ${OP_NAME[op]} with operation ${reply[0]}`);
    if (reply.length !== 1 + nresults)
        protocolError(`a REPLY to ${OP_NAME[op]} with ${reply.length - 1} results instead of ${nresults}`);
    reading = OP_NAME[op];
    return reply.slice(1);
}

// A short rendering of a frame's arguments for the trace.
function show(value) {
    if (value instanceof Uint8Array)
        return value.length <= 64 ? `b${JSON.stringify(Buffer.from(value).toString('latin1'))}`
            : `bin[${value.length}]`;
    if (Array.isArray(value))
        return `[${value.map(show).join(', ')}]`;
    if (typeof value === 'bigint')
        return `${value}n`;
    return JSON.stringify(value) ?? String(value);
}

// ------------------------------------------- reading the node's values
//
// Each reader checks a msgpack value against its layout in the protocol's
// type table and returns it in jco's shape; a mismatch is the node's
// protocol error.

function bad(what) {
    protocolError(`a malformed REPLY to ${reading}: ${what}`);
}

function isInt(v) {
    return (typeof v === 'number' && Number.isInteger(v)) || typeof v === 'bigint';
}

function rInt(v, min, max) {
    if (!isInt(v) || v < min || v > max)
        bad(`${show(v)} is not an integer in ${min}..${max}`);
    return Number(v);
}

const rU8 = v => rInt(v, 0, 255);
const rI32 = v => rInt(v, -0x80000000, 0x7fffffff);

function rU64(v) {
    if (!isInt(v) || v < 0 || BigInt(v) > 0xffffffffffffffffn)
        bad(`${show(v)} is not a u64`);
    return BigInt(v);
}

function rBool(v) {
    if (typeof v !== 'boolean')
        bad(`${show(v)} is not a bool`);
    return v;
}

// A str the node sent that is not UTF-8 (the node passes on a native
// process's strings unchecked): the message still comes, with U+FFFD in
// place of each ill-formed sequence (TextDecoder's replacement, as the
// addon's lowering, cabi.c), and a line in the node's log (the
// process's, at level 1) says so.
function notUtf8(v) {
    standard.printToTerminal(1, `hyperc wasm host: ${reading}: a string not UTF-8 from the node, ` +
                             'each ill-formed sequence given as U+FFFD');
    return utf8.decode(v);
}

function rStr(v) {
    if (!(v instanceof Uint8Array))
        bad(`${show(v)} is not a str`);
    return isUtf8(v) ? utf8.decode(v) : notUtf8(v);
}

function rBin(v) {
    if (!(v instanceof Uint8Array))
        bad(`${show(v)} is not a bin`);
    return v;
}

// option<T>: nil, or T.  jco takes `undefined` for none.
const rOpt = (read) => (v) => (v === null ? undefined : read(v));

function rArr(v, n) {
    if (!Array.isArray(v) || (n !== undefined && v.length !== n))
        bad(`${show(v)} is not an array${n === undefined ? '' : ` of ${n}`}`);
    return v;
}

const rList = (read) => (v) => rArr(v).map(read);

function rProcessId(v) {
    const [name, pkg, publisher] = rArr(v, 3);
    return { processName: rStr(name), packageName: rStr(pkg), publisherNode: rStr(publisher) };
}

function rAddress(v) {
    const [node, proc] = rArr(v, 2);
    return { node: rStr(node), process: rProcessId(proc) };
}

function rCapability(v) {
    const [issuer, params] = rArr(v, 2);
    return { issuer: rAddress(issuer), params: rStr(params) };
}

const rCaps = rList(rCapability);

function rBlob(v) {
    const [mime, bytes] = rArr(v, 2);
    return { mime: rOpt(rStr)(mime), bytes: rBin(bytes) };
}

function rRequest(v) {
    const [inherit, expects, body, metadata, caps] = rArr(v, 5);
    return {
        inherit: rBool(inherit),
        expectsResponse: rOpt(rU64)(expects),
        body: rBin(body),
        metadata: rOpt(rStr)(metadata),
        capabilities: rCaps(caps),
    };
}

function rResponse(v) {
    const [inherit, body, metadata, caps] = rArr(v, 4);
    return {
        inherit: rBool(inherit),
        body: rBin(body),
        metadata: rOpt(rStr)(metadata),
        capabilities: rCaps(caps),
    };
}

// message: a variant, `{tag, val}`; a response's val is the tuple
// [response, context | undefined].
function rMessage(v) {
    rArr(v);
    switch (rU8(v[0])) {
    case 0:
        rArr(v, 2);
        return { tag: 'request', val: rRequest(v[1]) };
    case 1:
        rArr(v, 3);
        return { tag: 'response', val: [rResponse(v[1]), rOpt(rBin)(v[2])] };
    default:
        bad(`unknown message kind ${v[0]}`);
    }
}

const SEND_ERROR_KINDS = ['offline', 'timeout'];

function rSendError(v) {
    const [kind, target, message, blob] = rArr(v, 4);
    const k = SEND_ERROR_KINDS[rU8(kind)];
    if (k === undefined)
        bad(`unknown send-error kind ${kind}`);
    return {
        kind: k,
        target: rAddress(target),
        message: rMessage(message),
        lazyLoadBlob: rOpt(rBlob)(blob),
    };
}

// receive-result and await-result: {ok, source, message} or {ok: false,
// error[, context]}.
function rReceived(v, withContext) {
    rArr(v);
    const kind = rU8(v[0]);
    if (kind === 0) {
        rArr(v, 3);
        return { ok: true, source: rAddress(v[1]), message: rMessage(v[2]) };
    }
    if (kind === 1) {
        rArr(v, withContext ? 3 : 2);
        return {
            ok: false,
            error: rSendError(v[1]),
            context: withContext ? rOpt(rBin)(v[2]) : undefined,
        };
    }
    bad(`unknown result kind ${kind}`);
}

function rOnExit(v) {
    const [k, list] = rArr(v, 2);
    const kind = rU8(k);
    rArr(list);
    switch (kind) {
    case 0:
    case 1:
        if (list.length !== 0)
            bad('requests with an on-exit that is not `requests`');
        return { tag: kind === 0 ? 'none' : 'restart' };
    case 2:
        // outgoing-request [target, request, context, blob]: on-exit keeps
        // the context field but does not use it.
        return {
            tag: 'requests',
            val: list.map((r) => {
                const [target, request, context, blob] = rArr(r, 4);
                rOpt(rBin)(context);
                return [rAddress(target), rRequest(request), rOpt(rBlob)(blob)];
            }),
        };
    default:
        bad(`unknown on-exit kind ${kind}`);
    }
}

// ------------------------------------ writing the component's values
//
// jco hands the imports records with camelCase fields, list<u8> as
// Uint8Array, u64 as BigInt, option none as undefined, variants as
// {tag, val} and enums as strings.  A value the node could not carry is
// thrown, so the component traps.

// A string for the node: C strings hold it, so no NUL.
function wStr(s) {
    if (s.includes('\0'))
        throw new TypeError('a string with a NUL character, which the node cannot carry');
    return s;
}

const wOptStr = s => (s === undefined || s === null ? null : wStr(s));
const wOptBin = b => (b === undefined || b === null ? null : b);

// Integers in their shortest msgpack form: the encoder writes a BigInt as
// a full u64, so the small ones go as numbers.
function wU64(x) {
    const v = BigInt(x);
    return v <= 0xffffffffn ? Number(v) : v;
}

const wProcessId = p => [wStr(p.processName), wStr(p.packageName), wStr(p.publisherNode)];
const wAddress = a => [wStr(a.node), wProcessId(a.process)];
const wCaps = caps => caps.map(c => [wAddress(c.issuer), wStr(c.params)]);
const wBlob = b => (b === undefined || b === null ? null : [wOptStr(b.mime), b.bytes]);

function wRequest(r) {
    return [
        r.inherit,
        r.expectsResponse === undefined || r.expectsResponse === null ? null : wU64(r.expectsResponse),
        r.body,
        wOptStr(r.metadata),
        wCaps(r.capabilities),
    ];
}

const wResponse = r => [r.inherit, r.body, wOptStr(r.metadata), wCaps(r.capabilities)];

function wOnExit(e) {
    switch (e.tag) {
    case 'none':
        return [0, []];
    case 'restart':
        return [1, []];
    case 'requests':
        return [2, e.val.map(([target, request, blob]) =>
            [wAddress(target), wRequest(request), null, wBlob(blob)])];
    default:
        throw new TypeError(`unknown on-exit ${e.tag}`);
    }
}

// ------------------------------------------------------- the imports

// An import returning result<T, E> returns T for ok; for err, jco's
// generated code catches what the import throws and takes its own
// `payload` property as E.  (A thrown Error without one is a trap.)
class ResultError extends Error {
    constructor(payload) {
        super('a result error');
        this.payload = payload;
    }
}

// A RECEIVE frame is always the same: encoded once.
const RECEIVE_VALUE = [OP.RECEIVE];
const RECEIVE_FRAME = encoder.encode(RECEIVE_VALUE);

// RECEIVE: the next message delivered ahead (the RECEIVE only tells the
// node, and waits in `out` with the calls before it), else the first the
// node sends: a DELIVER or the REPLY.  Its [receive-result, blob].
function receiveFrame() {
    let got;
    if (bound) {
        got = ringsCall(RECEIVE_VALUE, RECEIVE_FRAME);
    } else {
        sendFrame(RECEIVE_VALUE, RECEIVE_FRAME);
        got = ahead.length ? ahead.shift() : recvFrame();
    }
    if (got[0] !== OP.DELIVER && got[0] !== OP.REPLY)
        protocolError(`the node answered RECEIVE with operation ${got[0]}`);
    if (got.length !== 3)
        protocolError(`an answer to RECEIVE with ${got.length - 1} results instead of 2`);
    reading = 'RECEIVE';
    return [got[1], got[2]];
}

// SEND_AND_AWAIT with the frame's arguments: its [rc, await-result, blob]
// when rc is 0.  rc is not 0 where Hyperware traps (no expects-response, a
// request to ourselves...): so does the component here.
function awaitCall(args) {
    const [rc, result, blob] = call(OP.SEND_AND_AWAIT, args, 3);
    const code = rI32(rc);
    if (code !== 0) {
        expectNil(result, 'an await-result with an error code');
        expectNil(blob, 'a blob with an error code');
        throw new Error(`send-and-await-response failed (${code})`);
    }
    if (result === null)
        bad('no await-result');
    return [result, blob];
}

// The blob of the newest message, kept from the REPLYs of RECEIVE and
// SEND_AND_AWAIT: the blob calls never cross the link.
const blobs = {
    current: false,   // the current message had a blob (has-blob)
    last: undefined,  // the newest blob that came (last-blob)
};

// A message came with `blob` (nil when none): it becomes the current one,
// its bytes copied out of the input buffer (recvFrame).
function takeBlob(blob) {
    const b = rOpt(rBlob)(blob);
    blobs.current = b !== undefined;
    if (b !== undefined) {
        if (b.bytes.buffer === input.buf.buffer)
            b.bytes = new Uint8Array(b.bytes); // a copy (a Buffer's slice is a view)
        blobs.last = b;
    }
}

function expectNil(v, what) {
    if (v !== null)
        bad(`${what} where nil belongs`);
}

const standard = {
    printToTerminal(verbosity, message) {
        call(OP.PRINT, [verbosity, wStr(message)], 0);
    },

    our() {
        const [address] = call(OP.OUR, [], 1);
        return rAddress(address);
    },

    getOnExit() {
        const [onExit] = call(OP.GET_ON_EXIT, [], 1);
        return rOnExit(onExit);
    },

    setOnExit(onExit) {
        call(OP.SET_ON_EXIT, [wOnExit(onExit)], 0);
    },

    getState() {
        const [state] = call(OP.GET_STATE, [], 1);
        return rOpt(rBin)(state);
    },

    // Hyperware traps when the state cannot be saved or cleared.
    setState(bytes) {
        const [ok] = call(OP.SET_STATE, [bytes], 1);
        if (!rBool(ok))
            throw new Error('set-state failed: the node could not save the state');
    },

    clearState() {
        const [ok] = call(OP.CLEAR_STATE, [], 1);
        if (!rBool(ok))
            throw new Error('clear-state failed: the node could not clear the state');
    },

    spawn(name, wasmPath, onExit, requestCapabilities, grantCapabilities, isPublic) {
        const [err, child] = call(OP.SPAWN, [
            wOptStr(name),
            wStr(wasmPath),
            wOnExit(onExit),
            wCaps(requestCapabilities),
            grantCapabilities.map(([pid]) => wProcessId(pid)),
            grantCapabilities.map(([, params]) => wStr(params)),
            isPublic,
        ], 2);
        switch (rU8(err)) {
        case 0:
            if (child === null)
                bad('no process id for a spawn that succeeded');
            return rProcessId(child);
        case 1:
            expectNil(child, 'a process id');
            throw new ResultError('name-taken');
        case 2:
            expectNil(child, 'a process id');
            throw new ResultError('no-file-at-path');
        default:
            bad(`unknown spawn-error ${err}`);
        }
    },

    saveCapabilities(caps) {
        call(OP.SAVE_CAPS, [wCaps(caps)], 0);
    },

    dropCapabilities(caps) {
        call(OP.DROP_CAPS, [wCaps(caps)], 0);
    },

    ourCapabilities() {
        const [caps] = call(OP.OUR_CAPS, [], 1);
        return rCaps(caps);
    },

    // ok: [source, message]; err: [send-error, context | undefined].  An
    // error leaves the current and the last blob as they were.
    receive() {
        const [result, blob] = receiveFrame();
        const r = rReceived(result, true);
        if (!r.ok) {
            expectNil(blob, 'a blob with an error');
            throw new ResultError([r.error, r.context]);
        }
        takeBlob(blob);
        return [r.source, r.message];
    },

    hasBlob() {
        return blobs.current;
    },

    getBlob() {
        return blobs.current ? blobs.last : undefined;
    },

    lastBlob() {
        return blobs.last;
    },

    sendRequest(target, request, context, blob) {
        call(OP.SEND_REQUEST, [wAddress(target), wRequest(request), wOptBin(context), wBlob(blob)], 0);
    },

    // No op of its own: one SEND_REQUEST per request, in order.
    sendRequests(requests) {
        for (const [target, request, context, blob] of requests)
            standard.sendRequest(target, request, context, blob);
    },

    sendResponse(response, blob) {
        call(OP.SEND_RESPONSE, [wResponse(response), wBlob(blob)], 0);
    },

    sendAndAwaitResponse(target, request, blob) {
        const [result, replyBlob] = awaitCall([wAddress(target), wRequest(request), wBlob(blob)]);
        const r = rReceived(result, false);
        if (!r.ok) {
            expectNil(replyBlob, 'a blob with an error');
            throw new ResultError(r.error);
        }
        takeBlob(replyBlob);
        return [r.source, r.message];
    },
};

// The WASI 0.2.0 functions of src/wasm/wit/wasi.wit.

// Wall-clock time with the monotonic clock's resolution: anchored to
// Date.now() and re-anchored whenever the two drift apart by more than a
// millisecond (the system clock was set).
const wall = { ns: 0n, mono: 0n };
function wallNow() {
    const mono = process.hrtime.bigint();
    const coarse = BigInt(Date.now()) * 1000000n;
    let ns = wall.ns + (mono - wall.mono);
    const drift = ns - coarse;
    if (wall.ns === 0n || drift < -1000000n || drift > 1000000n) {
        wall.ns = coarse;
        wall.mono = mono;
        ns = coarse;
    }
    return { seconds: ns / 1000000000n, nanoseconds: Number(ns % 1000000000n) };
}

const wallClock = { now: wallNow };
// wasi:io/poll's pollable, as the monotonic clock makes them: ready at a
// deadline; block() sleeps this thread until then (nanosleep in C).
const sleepCell = new Int32Array(new SharedArrayBuffer(4));
class Pollable {
    constructor(deadline) {
        this.deadline = deadline;
    }

    block() {
        flush(); // the calls made go before the sleep
        for (;;) {
            const left = this.deadline - process.hrtime.bigint();
            if (left <= 0n)
                return;
            Atomics.wait(sleepCell, 0, 0, Number(left) / 1e6);
        }
    }
}
const monotonicClock = {
    now: () => process.hrtime.bigint(),
    subscribeDuration: (ns) => new Pollable(process.hrtime.bigint() + ns),
};
const poll = { Pollable };
const random = { getRandomU64: () => crypto.randomBytes(8).readBigUInt64LE(0) };

// ------------------------------------------- the hot imports by hand
//
// The core module's imports, in the canonical ABI's flat signatures (the
// layouts of src/guest/abi_wasm.c; an address comes as an i32, read
// unsigned), for the calls a component makes per
// message: each lifts its arguments from the component's memory straight
// into a frame, or lowers the node's answer straight into the memory.
// They behave as `standard`'s functions under jco's glue do, frame for
// frame; jco's glue still serves every other import.

const STD = 'hyperware:process/standard@1.0.0';

// SEND_REQUEST for the outgoing-request (128 bytes) at `p`: target,
// request at 32, context at 88, blob at 100.
function sendRequest(g, p) {
    const k = packStart(g);
    if (k !== null) {
        try {
            k.arr(5);
            k.uint(OP.SEND_REQUEST);
            k.addrAt(p);
            k.requestAt(p + 32);
            k.optBytesAt(p + 88);
            k.optBlobAt(p + 100);
            packEnd(k);
            return;
        } catch (e) {
            if (e !== NOT_PACKED)
                throw e;
        }
    }
    const l = g.lift;
    call(OP.SEND_REQUEST, [l.addrAt(p), l.requestAt(p + 32), l.optBytesAt(p + 88),
        l.optBlobAt(p + 100)], 0);
}

// The flat core arguments of a hot import served in C (the addon's, on
// the rings once bound: link_cabi.c), written here before each call; the
// addon reads them where they lie (an ArrayBuffer made as such, so its
// bytes never move).
const cabiArgs = new Uint32Array(new ArrayBuffer(64));

// The functions, by core import module and name, for the instance that
// `guest()` gives (its memory, lifter, lowerer and packer) once it exists.
// Once bound, the `standard` ones are the addon's (each one call, the
// component's memory.buffer its argument); before, and over a socket,
// abi.mjs's.
function handImports(guest) {
    const wasiWall = {
        now(at) {
            const ret = at >>> 0;
            const g = guest();
            const { seconds, nanoseconds } = wallNow();
            g.mem.fresh();
            g.mem.dv.setBigUint64(ret, seconds, true);
            g.mem.dv.setUint32(ret + 8, nanoseconds, true);
        },
    };
    return {
        [STD]: {
            receive(at) {
                if (bound) {
                    cabiArgs[0] = at;
                    rings.receive(guest().memory.buffer);
                    return;
                }
                const ret = at >>> 0;
                const [result, blob] = receiveFrame();
                const g = guest();
                g.mem.fresh();
                if (g.lower.received(ret, result, true))
                    takeBlob(blob);
                else
                    expectNil(blob, 'a blob with an error');
            },

            'send-request'(at) {
                if (bound) {
                    cabiArgs[0] = at;
                    rings.sendRequest(guest().memory.buffer);
                    return;
                }
                const g = guest();
                g.mem.fresh();
                sendRequest(g, at >>> 0);
            },

            // No op of its own: one SEND_REQUEST per request, in order.
            'send-requests'(ptr, len) {
                if (bound) {
                    cabiArgs[0] = ptr;
                    cabiArgs[1] = len;
                    rings.sendRequests(guest().memory.buffer);
                    return;
                }
                const g = guest();
                g.mem.fresh();
                for (let i = 0; i < len >>> 0; i++)
                    sendRequest(g, (ptr >>> 0) + 128 * i);
            },

            'send-response'(inherit, bodyPtr, bodyLen, metaSome, metaPtr, metaLen, capsPtr,
                capsLen, blobSome, mimeSome, mimePtr, mimeLen, bytesPtr, bytesLen) {
                if (bound) {
                    const a = cabiArgs;
                    a[0] = inherit;
                    a[1] = bodyPtr;
                    a[2] = bodyLen;
                    a[3] = metaSome;
                    a[4] = metaPtr;
                    a[5] = metaLen;
                    a[6] = capsPtr;
                    a[7] = capsLen;
                    a[8] = blobSome;
                    a[9] = mimeSome;
                    a[10] = mimePtr;
                    a[11] = mimeLen;
                    a[12] = bytesPtr;
                    a[13] = bytesLen;
                    rings.sendResponse(guest().memory.buffer);
                    return;
                }
                const g = guest();
                g.mem.fresh();
                const k = packStart(g);
                if (k !== null) {
                    try {
                        k.arr(3);
                        k.uint(OP.SEND_RESPONSE);
                        k.arr(4);
                        k.bool(inherit !== 0);
                        k.raw(bodyPtr, bodyLen, false);
                        if (metaSome)
                            k.raw(metaPtr, metaLen, true);
                        else
                            k.nil();
                        k.caps(capsPtr, capsLen);
                        if (blobSome) {
                            k.arr(2);
                            if (mimeSome)
                                k.raw(mimePtr, mimeLen, true);
                            else
                                k.nil();
                            k.raw(bytesPtr, bytesLen, false);
                        } else {
                            k.nil();
                        }
                        packEnd(k);
                        return;
                    } catch (e) {
                        if (e !== NOT_PACKED)
                            throw e;
                    }
                }
                const l = g.lift;
                call(OP.SEND_RESPONSE, [
                    [inherit !== 0, l.bytes(bodyPtr, bodyLen),
                        metaSome ? l.str(metaPtr, metaLen) : null, l.caps(capsPtr, capsLen)],
                    blobSome ? [mimeSome ? l.str(mimePtr, mimeLen) : null, l.bytes(bytesPtr, bytesLen)]
                        : null,
                ], 0);
            },

            'send-and-await-response'(at, retAt) {
                if (bound) {
                    cabiArgs[0] = at;
                    cabiArgs[1] = retAt;
                    rings.sendAndAwait(guest().memory.buffer);
                    return;
                }
                const p = at >>> 0;
                const ret = retAt >>> 0;
                const g = guest();
                g.mem.fresh();
                const l = g.lift;
                const [result, blob] = awaitCall([l.addrAt(p), l.requestAt(p + 32),
                    l.optBlobAt(p + 88)]);
                g.mem.fresh();
                if (g.lower.received(ret, result, false))
                    takeBlob(blob);
                else
                    expectNil(blob, 'a blob with an error');
            },

            'has-blob'() {
                if (bound)
                    return rings.hasBlob();
                return blobs.current ? 1 : 0;
            },

            'get-blob'(ret) {
                if (bound) {
                    cabiArgs[0] = ret;
                    rings.getBlob(guest().memory.buffer);
                    return;
                }
                const g = guest();
                g.mem.fresh();
                g.lower.keptBlob(ret >>> 0, blobs.current ? blobs.last : undefined);
            },

            'last-blob'(ret) {
                if (bound) {
                    cabiArgs[0] = ret;
                    rings.lastBlob(guest().memory.buffer);
                    return;
                }
                const g = guest();
                g.mem.fresh();
                g.lower.keptBlob(ret >>> 0, blobs.last);
            },
        },
        'wasi:clocks/monotonic-clock@0.2.0': { now: () => process.hrtime.bigint() },
        'wasi:clocks/wall-clock@0.2.0': wasiWall,
    };
}

// jco's core-module instantiation, with the hand imports put in place of
// its glue's for the module that imports interface `standard` (the
// component's own; it exports the memory and cabi_realloc they use).
function instantiateCore(module, importObject) {
    if (GENERIC || importObject === undefined || !(STD in importObject))
        return new WebAssembly.Instance(module, importObject);
    let g = null;
    const hand = handImports(() => g);
    for (const [iface, fns] of Object.entries(hand)) {
        const want = importObject[iface];
        if (want === undefined)
            continue;
        for (const [name, fn] of Object.entries(fns)) {
            if (name in want)
                want[name] = fn;
        }
    }
    const instance = new WebAssembly.Instance(module, importObject);
    const { memory, cabi_realloc: realloc } = instance.exports;
    if (!(memory instanceof WebAssembly.Memory) || typeof realloc !== 'function')
        throw new Error('the component\'s module exports no memory or cabi_realloc');
    const mem = new GuestMemory(memory, realloc);
    g = { memory, mem, lift: new Lifter(mem), lower: new Lowerer(mem, bad, notUtf8), pack: new Packer(mem) };
    if (rings !== null)
        rings.bind(memory, realloc, cabiArgs.buffer); // (used once bound)
    return instance;
}

// What the component may import, by interface.  jco asks for them without
// the version; the versioned names are there too for other jco releases.
const PROVIDED = {
    'hyperware:process/standard': standard,
    'wasi:clocks/wall-clock': wallClock,
    'wasi:clocks/monotonic-clock': monotonicClock,
    'wasi:random/random': random,
    'wasi:io/poll': poll,
};
const VERSIONS = {
    'hyperware:process/standard': '1.0.0',
    'wasi:clocks/wall-clock': '0.2.0',
    'wasi:clocks/monotonic-clock': '0.2.0',
    'wasi:random/random': '0.2.0',
    'wasi:io/poll': '0.2.0',
};
const IMPORTS = { ...PROVIDED };
for (const [name, version] of Object.entries(VERSIONS))
    IMPORTS[`${name}@${version}`] = PROVIDED[name];

// ------------------------------------------------------------ loading

function fail(why) {
    sendFrame([OP.FAIL, why.replaceAll('\0', '')]);
    flush();
    say(`FAIL: ${why}`);
    process.exit(1);
}

// Load the component at `binary` with this host's imports: its `init`,
// ready to call (load.mjs: the transpiling, its cache and the checks).
async function load(binary) {
    const exports = await loadComponent(binary, IMPORTS,
        { provided: PROVIDED, trace, instantiateCore });
    return exports.init;
}

// ------------------------------------------------------------- the life

function trapText(s) {
    return String(s ?? '').replaceAll('\0', '');
}

async function main() {
    const hello = recvFrame();
    if (hello[0] !== OP.HELLO)
        protocolError(`the node began with operation ${hello[0]}, not HELLO`);
    const version = hello[1];
    if (!isInt(version) || version < 0 || version > 0xffffffff)
        protocolError('a HELLO without a version');
    if (Number(version) !== PROTO_VERSION) {
        sendFrame([OP.FAIL, `protocol version ${version} not supported`]);
        flush();
        process.exit(1);
    }
    if (hello.length !== 5 || !hello.slice(2).every(v => v instanceof Uint8Array && isUtf8(v)))
        protocolError('a malformed HELLO');
    const [our, binary, id] = hello.slice(2).map(v => utf8.decode(v));
    processId = id;

    let init;
    try {
        init = await load(binary);
    } catch (e) {
        if (!(e instanceof LoadError))
            say(e.stack);
        fail(e.message);
    }
    if (rings !== null) {
        // the binding takes the link from here on (it reads every frame)
        if (input.end > input.start)
            protocolError('a frame before READY');
        input.start = input.end = 0;
        flush();
        let lanes;
        try {
            lanes = rings.ready(processId);
        } catch (e) {
            say(`cannot hand the link to the binding: ${e.message}`);
            process.exit(1);
        }
        bound = true;
        trace(`-> READY ${PROTO_VERSION} [${lanes ? '"lanes"' : ''}] (the binding's)`);
    } else {
        sendFrame([OP.READY, PROTO_VERSION, []]);  // no lanes (one wait at a time)
        flush();
    }

    try {
        init(our);
    } catch (err) {
        // A trap, or an exception of ours (a failed set-state...) that
        // unwound the component.
        const message = err instanceof Error ? err.message : String(err);
        const stack = err instanceof Error ? err.stack : '';
        say(`trapped: ${message}`);
        sendFrame([OP.TRAP, trapText(message), trapText(stack)]);
        flush();
        process.exit(1);
    }
    sendFrame([OP.DONE, 0]);
    flush();
    process.exit(0);
}

main().catch((e) => {
    say(`internal error: ${e.stack ?? e}`);
    process.exit(1);
});
