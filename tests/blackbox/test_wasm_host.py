"""The wasm host (src/wasm/host.mjs), black-box: the test plays the node's
side of the worker protocol (docs/worker-protocol.md, version 4) over a
socketpair, the host's end given to it as fd 3; or, for the tests marked
`link`, also on the node's shared-memory rings, where the host's addon
serves the hot imports in C (src/wasm/link_cabi.c): tests/procs/ring_bridge
makes the rings, starts the host on them and carries the frames between
them and the test's socket as they are.

The component under test is a built hyperc counter (examples/counter):
HYPERC_WASM_COUNTER names its .wasm; the tests that run it are skipped
without it.  HYPERC_WASM_PROBE names tests/wasm/abi_probe.wasm, which
calls every import: run with the host's hand imports and with jco's glue
alone, it must make the same frames and print the same.  Two small components written here in WAT (assembled with the
wasm-tools that jco-transpile carries) check the blob calls, DONE and TRAP;
a stand-in for jco's output, planted in the host's cache, calls every
import with jco's values to check each one's frames; the protocol-level
tests (version, missing file, end of stream, broken frame) need only
node."""
import hashlib
import json
import os
import shutil
import socket
import struct
import subprocess
import time

import msgpack
import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
# the build's copy of src/wasm, beside its npm packages (HYPERC_WASM_TOOLS)
TOOLS = os.environ.get("HYPERC_WASM_TOOLS", os.path.join(ROOT, "build", "wasm"))
HOST = os.path.join(TOOLS, "host.mjs")
NODE_JS = shutil.which("node")
COUNTER = os.environ.get("HYPERC_WASM_COUNTER")
PROBE = os.environ.get("HYPERC_WASM_PROBE")
# the rings' bridge (a test process beside the fake worker)
BRIDGE = os.environ.get("HYPERC_RING_BRIDGE") or (
    os.path.join(os.path.dirname(os.environ["HYPERC_FAKE_WORKER"]), "ring_bridge")
    if os.environ.get("HYPERC_FAKE_WORKER") else None)
HAVE_RINGS = (BRIDGE is not None and os.path.exists(BRIDGE)
              and os.path.exists(os.path.join(TOOLS, "hyperc_link.node")))
VERSION = 7
TIMEOUT = 30  # seconds, for every read and every wait (a host starting
# Node.js and a component on a machine at load 15 took more than 10)

# ops (the protocol's table)
PRINT, OUR, GET_ON_EXIT, SET_ON_EXIT, GET_STATE, SET_STATE, CLEAR_STATE = \
    1, 2, 3, 4, 5, 6, 7
OUR_CAPS, RECEIVE, SEND_REQUEST, SEND_RESPONSE, SEND_AND_AWAIT = \
    11, 12, 16, 17, 18
HELLO, READY, REPLY, DONE, FAIL, TRAP, DELIVER = 64, 65, 66, 67, 68, 71, 72

PROCESS = ["counter", "counter", "hyperc.os"]
OUR_ADDR = ["test.os", PROCESS]
SOURCE = ["test.os", ["tester", "tpkg", "test.os"]]

pytestmark = pytest.mark.skipif(NODE_JS is None, reason="no node")
needs_counter = pytest.mark.skipif(
    not COUNTER, reason="HYPERC_WASM_COUNTER (a built counter .wasm) unset")


class Host:
    """One host process and the node's end of its link."""

    def __init__(self, cache, env=None, rings=False):
        if rings and not HAVE_RINGS:
            pytest.skip("no rings: tests/procs/ring_bridge or the addon unbuilt")
        self.sock, child = socket.socketpair(socket.AF_UNIX,
                                             socket.SOCK_STREAM)
        self.sock.settimeout(TIMEOUT)
        env = dict(os.environ, **(env or {}), HYPERC_WASM_CACHE=str(cache))
        fd = child.fileno()

        # The child's end becomes fd 3 (dup2 clears close-on-exec on the
        # copy).  Not with pass_fds: subprocess closes the other fds after
        # preexec_fn, fd 3 with them; Python's own fds are not inheritable,
        # so close_fds=False passes nothing else.
        def give_fd3():
            if fd == 3:
                os.set_inheritable(3, True)
            else:
                os.dup2(fd, 3)

        self.proc = subprocess.Popen(
            ([BRIDGE] if rings else []) + [NODE_JS, HOST], close_fds=False,
            preexec_fn=give_fd3,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        child.close()
        self.sent = []  # the host's frames, for the failure messages

    def send_raw(self, data):
        self.sock.sendall(data)

    def send(self, *frame):
        body = msgpack.packb(list(frame), use_bin_type=True)
        self.send_raw(struct.pack("<I", len(body)) + body)

    def recv_exact(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                return None
            buf += chunk
        return buf

    def recv(self):
        """The host's next frame as a list, or None at end of stream."""
        head = self.recv_exact(4)
        if head is None:
            return None
        (n,) = struct.unpack("<I", head)
        body = self.recv_exact(n)
        assert body is not None, "end of stream inside a frame"
        frame = msgpack.unpackb(body, raw=False)
        assert isinstance(frame, list) and frame, frame
        self.sent.append(frame)
        print("host ->", frame)
        return frame

    def reply(self, *results):
        self.send(REPLY, *results)

    def hello(self, binary, version=VERSION):
        self.send(HELLO, version, "test.os@counter:counter:hyperc.os",
                  binary, "counter:counter:hyperc.os")

    def wait(self):
        """The host's exit status, once it has exited (killed after
        TIMEOUT); its stderr is then in self.stderr."""
        try:
            return self.proc.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise
        finally:
            self.stderr = self.proc.stderr.read().decode(errors="replace")
            print("host stderr:", self.stderr)

    def close(self):
        self.sock.close()
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc.stderr.close()


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """The transpile cache the tests share (each component is transpiled
    once); the tests of the cache itself have their own."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture
def host(cache):
    h = Host(cache)
    yield h
    h.close()


@pytest.fixture(params=["socket", "rings"])
def link(request):
    """How the host under test is linked: a socket (abi.mjs serves the hot
    imports), or the rings (the addon does, in C)."""
    return request.param


@pytest.fixture
def linked_host(cache, link):
    h = Host(cache, rings=link == "rings")
    yield h
    h.close()


def serve_until(h, want, state=None):
    """Answer the host's calls as a node would until it sends an op in
    `want`; return that frame.  `state` is the stored state (bytes or None),
    updated by SET_STATE."""
    while True:
        f = h.recv()
        assert f is not None, f"the host closed the link; it sent {h.sent}"
        op = f[0]
        if op in want:
            return f
        if op == OUR:
            h.reply(OUR_ADDR)
        elif op == GET_STATE:
            h.reply(state["bytes"] if state else None)
        elif op == SET_STATE:
            assert isinstance(f[1], bytes), f
            if state is not None:
                state["bytes"] = f[1]
            h.reply(True)
        elif op == CLEAR_STATE:
            h.reply(True)
        elif op == GET_ON_EXIT:
            h.reply([0, []])
        elif op == OUR_CAPS:
            h.reply([])
        elif op == SEND_AND_AWAIT:
            # nothing answers here: a send error (offline), as a node says
            target, request = f[1], f[2]
            h.reply(0, [1, [0, target, [0, request], None]], None)
        elif op in (PRINT, SET_ON_EXIT, SEND_REQUEST, SEND_RESPONSE, 9, 10):
            pass  # no reply
        else:
            pytest.fail(f"unexpected call {f}")


def request(body, expects=5):
    return [False, expects, body, None, []]


# A component of world process-v1, in WAT: init prints `our`, then checks
# the blob calls across three receives, printing has-blob as the verbosity
# of a print of `our`, and the blob get-blob or last-blob gives as a print
# of its bytes (verbosity: the option's tag).  TAIL ends init.
BLOBS_WAT = """
(module
  (import "hyperware:process/standard@1.0.0" "print-to-terminal"
    (func $print (param i32 i32 i32)))
  (import "hyperware:process/standard@1.0.0" "receive"
    (func $receive (param i32)))
  (import "hyperware:process/standard@1.0.0" "has-blob"
    (func $has_blob (result i32)))
  (import "hyperware:process/standard@1.0.0" "get-blob"
    (func $get_blob (param i32)))
  (import "hyperware:process/standard@1.0.0" "last-blob"
    (func $last_blob (param i32)))
  (memory (export "memory") 1)
  (global $bump (mut i32) (i32.const 4096))
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
    (local $p i32)
    (local.set $p (i32.and (i32.add (global.get $bump) (i32.const 7))
                           (i32.const -8)))
    (global.set $bump (i32.add (local.get $p) (local.get 3)))
    (local.get $p))
  ;; option<lazy-load-blob> at 64: tag +0, bytes pointer +16, length +20
  (func $show
    (call $print (i32.load8_u (i32.const 64)) (i32.load (i32.const 80))
                 (i32.load (i32.const 84))))
  (func (export "init") (param $our i32) (param $len i32)
    (call $print (i32.const 0) (local.get $our) (local.get $len))
    (call $receive (i32.const 1024))
    (call $print (call $has_blob) (local.get $our) (local.get $len))
    (call $get_blob (i32.const 64))
    (call $show)
    (call $receive (i32.const 1024))
    (call $print (call $has_blob) (local.get $our) (local.get $len))
    (call $get_blob (i32.const 64))
    (call $show)
    (call $receive (i32.const 1024))
    (call $print (call $has_blob) (local.get $our) (local.get $len))
    (call $last_blob (i32.const 64))
    (call $show)
    TAIL))
"""

BUILD_JS = """
import { parse, componentEmbed, componentNew } from
    '@bytecodealliance/jco-transpile/wasm-tools';
import fs from 'node:fs';
const [wat, wit, out] = process.argv.slice(1);
const core = await componentEmbed({ binary: await parse(wat),
    witSource: fs.readFileSync(wit, 'utf8'), world: 'process-v1' });
fs.writeFileSync(out, await componentNew(core));
"""


def build_component(tmp_path, name, tail):
    out = tmp_path / f"{name}.wasm"
    subprocess.run(
        [NODE_JS, "--input-type=module", "-e", BUILD_JS,
         BLOBS_WAT.replace("TAIL", tail),
         os.path.join(TOOLS, "wit", "hyperware.wit"), str(out)],
        cwd=TOOLS, check=True, timeout=60)
    return str(out)


def drive_blobs(h, binary):
    """Run BLOBS_WAT's init up to its end."""
    our = "test.os@counter:counter:hyperc.os"
    h.hello(binary)
    assert h.recv() == [READY, VERSION, []], h.wait() or h.stderr
    assert h.recv() == [PRINT, 0, our]
    # a message with a blob: the current and the last blob
    assert h.recv() == [RECEIVE]
    h.reply([0, SOURCE, [0, request(b"one")]], ["text/plain", b"blob-1"])
    assert h.recv() == [PRINT, 1, our]
    assert h.recv() == [PRINT, 1, "blob-1"]
    # an error leaves them as they were
    assert h.recv() == [RECEIVE]
    h.reply([1, [1, SOURCE, [0, request(b"x")], None], None], None)
    assert h.recv() == [PRINT, 1, our]
    assert h.recv() == [PRINT, 1, "blob-1"]
    # a message without one: no current blob, the last one stays
    assert h.recv() == [RECEIVE]
    h.reply([0, SOURCE, [1, [False, b"", None, []], b"ctx"]], None)
    assert h.recv() == [PRINT, 0, our]
    assert h.recv() == [PRINT, 1, "blob-1"]


def test_blob_calls_and_done(linked_host, tmp_path):
    host = linked_host
    binary = build_component(tmp_path, "blobs", "")
    drive_blobs(host, binary)
    assert host.recv() == [DONE, 0]
    assert host.recv() is None
    assert host.wait() == 0


def test_blob_calls_delivered_ahead(linked_host, tmp_path):
    """The same messages delivered ahead (DELIVER), all before the first
    RECEIVE: each RECEIVE is still told, the messages come in order and
    the blob rules are those of REPLYs."""
    host = linked_host
    binary = build_component(tmp_path, "blobs", "")
    our = "test.os@counter:counter:hyperc.os"
    host.hello(binary)
    assert host.recv() == [READY, VERSION, []], host.wait() or host.stderr
    assert host.recv() == [PRINT, 0, our]
    host.send(DELIVER, [0, SOURCE, [0, request(b"one")]],
              ["text/plain", b"blob-1"])
    host.send(DELIVER, [1, [1, SOURCE, [0, request(b"x")], None], None], None)
    host.send(DELIVER, [0, SOURCE, [1, [False, b"", None, []], b"ctx"]], None)
    assert host.recv() == [RECEIVE]
    assert host.recv() == [PRINT, 1, our]
    assert host.recv() == [PRINT, 1, "blob-1"]
    assert host.recv() == [RECEIVE]
    assert host.recv() == [PRINT, 1, our]
    assert host.recv() == [PRINT, 1, "blob-1"]
    assert host.recv() == [RECEIVE]
    assert host.recv() == [PRINT, 0, our]
    assert host.recv() == [PRINT, 1, "blob-1"]
    assert host.recv() == [DONE, 0]
    assert host.recv() is None
    assert host.wait() == 0


def test_trap(linked_host, tmp_path):
    host = linked_host
    binary = build_component(tmp_path, "trap", "unreachable")
    drive_blobs(host, binary)
    f = host.recv()
    assert f[0] == TRAP and len(f) == 3, f
    assert "unreachable" in f[1], f
    assert "wasm-function" in f[2], f
    assert host.recv() is None
    assert host.wait() == 1


# A component of world process-v1, in WAT, for the hot imports' checks of
# what the component hands over and of memory growing under a receive: one
# page of memory, a cabi_realloc that grows it as it needs, and an init of
# BODY.  $respond is send-response's 14 flat arguments.
CABI_WAT = """
(module
  (import "hyperware:process/standard@1.0.0" "print-to-terminal"
    (func $print (param i32 i32 i32)))
  (import "hyperware:process/standard@1.0.0" "receive"
    (func $receive (param i32)))
  (import "hyperware:process/standard@1.0.0" "send-request"
    (func $request (param i32)))
  (import "hyperware:process/standard@1.0.0" "send-response"
    (func $respond (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32
                          i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 512) "\\ff\\fe")
  (global $bump (mut i32) (i32.const 4096))
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
    (local $p i32)
    (local $end i32)
    (local.set $p (i32.and (i32.add (global.get $bump) (i32.const 7))
                           (i32.const -8)))
    (local.set $end (i32.add (local.get $p) (local.get 3)))
    (if (i32.gt_u (local.get $end)
                  (i32.mul (memory.size) (i32.const 65536)))
      (then
        (drop (memory.grow
          (i32.shr_u (i32.add (i32.sub (local.get $end)
                                       (i32.mul (memory.size)
                                                (i32.const 65536)))
                              (i32.const 65535))
                     (i32.const 16))))))
    (global.set $bump (local.get $end))
    (local.get $p))
  (func (export "init") (param $our i32) (param $len i32)
    BODY))
"""


def build_cabi_component(tmp_path, name, body):
    out = tmp_path / f"{name}.wasm"
    subprocess.run(
        [NODE_JS, "--input-type=module", "-e", BUILD_JS,
         CABI_WAT.replace("BODY", body),
         os.path.join(TOOLS, "wit", "hyperware.wit"), str(out)],
        cwd=TOOLS, check=True, timeout=60)
    return str(out)


def respond(inherit, body, meta):
    """send-response's flat arguments: no capabilities, no blob."""
    args = [inherit, *body, *meta, 0, 0, 0, 0, 0, 0, 0, 0]
    return "(call $respond " + " ".join(f"(i32.const {a})" if isinstance(a, int)
                                        else a for a in args) + ")"


# receive's result at 1024: the request's body (ok, request) at +72; then
# the memory's pages as a print's verbosity, and the body sent back
ECHO = ("(call $receive (i32.const 1024))"
        "(call $print (memory.size) (local.get $our) (local.get $len))"
        + respond(0, ["(i32.load (i32.const 1096))",
                      "(i32.load (i32.const 1100))"], [0, 0, 0]))


def test_memory_grows_under_a_receive(linked_host, tmp_path):
    """A body larger than the component's free memory: its cabi_realloc
    grows the memory in the middle of the receive's allocations (which
    detaches the memory's buffer), and the body still lands whole, as the
    response the component sends back shows."""
    host = linked_host
    binary = build_cabi_component(tmp_path, "echo", ECHO)
    big = bytes(range(256)) * 1200  # 300 KiB, the memory is one page
    host.hello(binary)
    assert host.recv() == [READY, VERSION, []], host.wait() or host.stderr
    assert host.recv() == [RECEIVE]
    host.reply([0, SOURCE, [0, request(big)]], None)
    f = host.recv()
    assert f[0] == PRINT and f[1] >= 5, f  # pages now
    f = host.recv()
    assert f[0] == SEND_RESPONSE and f[1][1] == big, f[:1]
    assert host.recv() == [DONE, 0]
    assert host.wait() == 0


# What a component may hand over wrongly, and the trap's words for it.
BAD_CALLS = {
    "a body outside memory": (
        respond(0, [-256, 1000], [0, 0, 0]),
        "send-response: 1000 bytes at 4294967040, outside the component's memory"),
    "a string not UTF-8": (
        respond(0, [0, 0], [1, 512, 2]),
        "send-response: a string of 2 bytes at 512 that is not UTF-8"),
    "a string with NUL": (
        respond(0, [0, 0], [1, 0, 4]),
        "send-response: a string with a NUL character"),
    "a body over the frame limit": (
        "(drop (memory.grow (i32.const 4200)))"
        + respond(0, [0, 270000000], [0, 0, 0]),
        "send-response: a call of 270000010 bytes or more, over the link's frame limit"),
    "a result area outside memory": (
        "(call $receive (i32.const 65530))",
        "receive: a result area at 65530, outside the component's memory"),
    "send-request's parameters outside memory": (
        "(call $request (i32.const 65500))",
        "send-request: 128 bytes at 65500, outside the component's memory"),
}


@pytest.mark.parametrize("bad", sorted(BAD_CALLS))
def test_bad_arguments_trap_the_component(cache, tmp_path, bad):
    """On the rings the addon checks what the component hands over (every
    pointer and length inside its memory, strings UTF-8 without NUL): a bad
    one traps the component with a line saying what and where, and nothing
    of the call reaches the node."""
    code, words = BAD_CALLS[bad]
    binary = build_cabi_component(tmp_path, "bad", code)
    host = Host(cache, rings=True)
    try:
        host.hello(binary)
        assert host.recv() == [READY, VERSION, []], host.wait() or host.stderr
        f = host.recv()
        assert f[0] == TRAP, f
        assert words in f[1], f
        assert host.recv() is None
        assert host.wait() == 1
        assert words in host.stderr
    finally:
        host.close()


# What abi.mjs (the socket's hand imports) refuses of BAD_CALLS, and its
# words: the same bounds, said by the JavaScript (a string that is not
# UTF-8 becomes one with replacement characters there, as under jco's glue;
# a result area is looked at only once the node has answered).
SOCKET_BAD = {
    "a body outside memory":
        "1000 bytes at 4294967040, outside the component's memory (65536 bytes)",
    "a string with NUL": "a string with a NUL character",
    "send-request's parameters outside memory": "outside",
}


@pytest.mark.parametrize("bad", sorted(SOCKET_BAD))
def test_bad_arguments_trap_the_component_over_a_socket(cache, tmp_path, bad):
    """Over a socket too, what the component hands over must lie in its
    memory: a body past its end traps the component (before, the frame
    went out with the bytes the memory has and stale ones after them)."""
    code, _ = BAD_CALLS[bad]
    binary = build_cabi_component(tmp_path, "bad", code)
    host = Host(cache)
    try:
        host.hello(binary)
        assert host.recv() == [READY, VERSION, []], host.wait() or host.stderr
        f = host.recv()
        assert f[0] == TRAP, f
        assert SOCKET_BAD[bad] in f[1], f
        assert host.recv() is None
        assert host.wait() == 1
    finally:
        host.close()


# The node's answers to the probe's calls, by op, in turn (the last one
# again when the probe asks more often): messages with and without blobs,
# a send error, each kind of result.
P_ADDR = ["peer.os", ["echo", "probe", "hyperc.os"]]
P_CAP = [P_ADDR, '"messaging"']
P_REQ = [False, 30, b"req", None, [P_CAP]]
P_BIG = [True, 2 ** 40, b"big", '{"m":1}', []]
P_RESP = [True, b"", '{"r":1}', [P_CAP, P_CAP]]
PROBE_ANSWERS = {
    OUR: [[["our.os", ["abi-probe", "probe", "hyperc.os"]]]],
    GET_ON_EXIT: [[[2, [[P_ADDR, P_BIG, None, ["m/x", b"eb"]]]]]],
    GET_STATE: [[None], [b""]],
    SET_STATE: [[True]],
    CLEAR_STATE: [[True]],
    8: [[0, ["kid", "probe", "hyperc.os"]], [1, None], [2, None]],
    OUR_CAPS: [[[P_CAP]]],
    RECEIVE: [[[0, P_ADDR, [0, P_REQ]], ["m", b"R"]],
              [[0, P_ADDR, [1, P_RESP, b"c"]], None],
              [[1, [0, P_ADDR, [0, P_BIG], None], b"ctx"], None]],
    SEND_AND_AWAIT: [[0, [0, P_ADDR, [1, P_RESP, None]], [None, b"aw"]],
                     [0, [1, [1, P_ADDR, [0, P_REQ], ["x/y", b"e"]]], None],
                     [-1, None, None]],
}


def run_probe(cache, env, rings=False):
    """The probe's life under a host with `env`, the node answering
    PROBE_ANSWERS: every frame the host sent, the clocks' lines reduced to
    their shape."""
    h = Host(cache, env, rings)
    try:
        h.send(HELLO, VERSION, "our.os@abi-probe:probe:hyperc.os", PROBE,
               "abi-probe:probe:hyperc.os")
        assert h.recv() == [READY, VERSION, []], h.wait() or h.stderr
        asked = {}
        frames = []
        while True:
            f = h.recv()
            assert f is not None, h.wait() or h.stderr
            if f[0] == PRINT and f[2].split(":")[0] in ("realtime", "monotonic",
                                                         "entropy"):
                head, _, value = f[2].partition(": ")
                assert value.strip(), f
                f = [PRINT, f[1], head]  # the values differ run to run
            frames.append(f)
            if f[0] in (DONE, TRAP):
                break
            if f[0] in PROBE_ANSWERS:
                answers = PROBE_ANSWERS[f[0]]
                n = asked.get(f[0], 0)
                asked[f[0]] = n + 1
                h.reply(*answers[min(n, len(answers) - 1)])
        h.wait()
        return frames
    finally:
        h.close()


@pytest.mark.skipif(not PROBE, reason="HYPERC_WASM_PROBE (abi_probe.wasm) unset")
def test_hand_imports_match_jco(cache):
    """The hot imports the host serves by hand (abi.mjs over a socket, the
    addon in C on the rings) give the component what jco's glue gives it,
    and send what it sends: the probe prints every value it gets, so the
    same frames from each mean the same values."""
    hand = run_probe(cache, {})
    jco = run_probe(cache, {"HYPERC_WASM_GENERIC": "1"})
    assert hand == jco
    if HAVE_RINGS:
        assert run_probe(cache, {}, rings=True) == jco
        assert run_probe(cache, {"HYPERC_WASM_GENERIC": "1"}, rings=True) == jco
    assert hand[-1] == [DONE, 0], hand[-1]
    ops = {f[0] for f in hand}
    assert {SEND_REQUEST, SEND_RESPONSE, SEND_AND_AWAIT, RECEIVE} <= ops
    texts = [f[2] for f in hand if f[0] == PRINT]
    # the answers arrived: a request, a response with its context, a send
    # error with its own; the first message's blob is the last one, not
    # the current one (the second message had none)
    assert "receive: request inherit=0 expects=30 body=req metadata=(none)" in texts
    assert "receive: response inherit=1 body= metadata={\"r\":1} context=c" in texts
    assert "receive: err context=ctx" in texts
    assert "has-blob: 0" in texts and "last-blob: mime=m bytes=R" in texts
    assert "send-and-await-response: err: mime=x/y bytes=e" in texts


@needs_counter
def test_counter_counts(host):
    host.hello(COUNTER)
    assert host.recv() == [READY, VERSION, []], host.wait() or host.stderr
    state = {"bytes": None}
    serve_until(host, {RECEIVE}, state)

    # {"Increment": 5} -> 5
    host.reply([0, SOURCE, [0, request(b'{"Increment":5}')]], None)
    f = serve_until(host, {SEND_RESPONSE}, state)
    (inherit, body, metadata, caps), blob = f[1], f[2]
    assert body == b"5", f
    assert (inherit, metadata, caps, blob) == (False, None, [], None), f

    # the state saved (every message), and the count goes on
    serve_until(host, {RECEIVE}, state)
    assert state["bytes"] is not None and b"5" in state["bytes"], state
    host.reply([0, SOURCE, [0, request(b'{"Increment":2}')]],
               [None, b"a blob"])
    f = serve_until(host, {SEND_RESPONSE}, state)
    assert f[1][1] == b"7", f
    serve_until(host, {RECEIVE}, state)
    host.reply([0, SOURCE, [0, request(b'"GetCount"')]], None)
    f = serve_until(host, {SEND_RESPONSE}, state)
    assert f[1][1] == b"7", f

    # a receive error goes to the component, which goes on receiving
    serve_until(host, {RECEIVE}, state)
    err = [1, [0, SOURCE, [0, request(b"x")], None], b"ctx"]
    host.reply(err, None)
    serve_until(host, {RECEIVE}, state)

    # the node goes away: the host ends quietly
    host.sock.shutdown(socket.SHUT_WR)
    assert host.wait() == 0


@needs_counter
def test_counter_loads_its_state(host, cache):
    """A restart: the count goes on from the state GET_STATE returns."""
    host.hello(COUNTER)
    assert host.recv() == [READY, VERSION, []], host.wait() or host.stderr
    state = {"bytes": None}
    serve_until(host, {RECEIVE}, state)
    host.reply([0, SOURCE, [0, request(b'{"Increment":40}')]], None)
    serve_until(host, {RECEIVE}, state)
    host.close()

    again = Host(cache)
    try:
        again.hello(COUNTER)
        assert again.recv() == [READY, VERSION, []], again.wait() or again.stderr
        serve_until(again, {RECEIVE}, state)
        again.reply([0, SOURCE, [0, request(b'{"Increment":2}')]], None)
        f = serve_until(again, {SEND_RESPONSE}, state)
        assert f[1][1] == b"42", f
    finally:
        again.close()


@needs_counter
def test_counter_trap_on_failed_set_state(host):
    """Hyperware traps when set-state fails: the host reports a TRAP."""
    host.hello(COUNTER)
    assert host.recv() == [READY, VERSION, []], host.wait() or host.stderr
    serve_until(host, {RECEIVE})
    host.reply([0, SOURCE, [0, request(b'{"Increment":1}')]], None)
    f = serve_until(host, {SET_STATE})
    host.reply(False)
    f = serve_until(host, {TRAP})
    message, stack = f[1], f[2]
    assert "set-state" in message, f
    assert isinstance(stack, str) and stack, f
    assert host.wait() == 1


# A stand-in for jco's output, planted in the host's cache: its init calls
# every import of interface `standard` with values in jco's shapes, and
# prints (PRINT, verbosity 0) "label json" for what each gave back, so that
# the whole mapping between jco's values and the frames can be checked.
FAKE_GLUE = r"""
// (the holder's own value: JSON.stringify has already turned a Buffer
// into {type, data} when it calls the replacer)
const show = (v) => JSON.stringify(v, function (k, x) {
  const o = this[k];
  return typeof o === 'bigint' ? `${o}n`
    : o instanceof Uint8Array ? `b:${Buffer.from(o).toString('latin1')}`
    : o === undefined ? '<none>' : x;
});
const ADDR = { node: 'n', process: { processName: 'p', packageName: 'k',
                                     publisherNode: 'u' } };
const CAP = { issuer: ADDR, params: '{}' };
const REQ = { inherit: true, expectsResponse: 1099511627776n,
              body: new Uint8Array([104, 105]), metadata: 'md',
              capabilities: [CAP] };
const RESP = { inherit: false, body: new Uint8Array([]),
               metadata: undefined, capabilities: [] };
const BLOB = { mime: 't', bytes: new Uint8Array([66]) };

export function instantiate(getCoreModule, imports) {
  const s = imports['hyperware:process/standard'];
  const wall = imports['wasi:clocks/wall-clock'];
  const mono = imports['wasi:clocks/monotonic-clock'];
  const rnd = imports['wasi:random/random'];
  const out = (label, v) => s.printToTerminal(0, `${label} ${show(v)}`);
  const err = (label, f) => {
    try { out(label, f()); }
    catch (e) {  // jco's rule: an own `payload` is a result's err
      out(label, Object.hasOwn(e, 'payload') ? { payload: e.payload }
                                             : { trap: e.message });
    }
  };
  return { init(our) {
    out('init', our);
    out('our', s.our());
    out('get-on-exit', s.getOnExit());
    s.setOnExit({ tag: 'restart' });
    s.setOnExit({ tag: 'requests', val: [[ADDR, REQ, undefined], [ADDR, REQ, BLOB]] });
    out('get-state', s.getState());
    out('get-state', s.getState());
    s.setState(new Uint8Array([115]));
    s.clearState();
    err('spawn', () => s.spawn('kid', 'kid.wasm', { tag: 'none' }, [CAP],
                               [[ADDR.process, '"g"']], true));
    err('spawn', () => s.spawn(undefined, 'x.wasm', { tag: 'restart' }, [], [], false));
    err('spawn', () => s.spawn(undefined, 'x.wasm', { tag: 'restart' }, [], [], false));
    s.saveCapabilities([CAP]);
    s.dropCapabilities([]);
    out('our-capabilities', s.ourCapabilities());
    s.sendRequests([[ADDR, REQ, new Uint8Array([99]), BLOB],
                    [ADDR, { ...REQ, expectsResponse: undefined }, undefined, undefined]]);
    s.sendResponse(RESP, undefined);
    err('await', () => s.sendAndAwaitResponse(ADDR, REQ, BLOB));
    out('blob', [s.hasBlob(), s.getBlob(), s.lastBlob()]);
    err('await', () => s.sendAndAwaitResponse(ADDR, REQ, undefined));
    out('blob', [s.hasBlob(), s.getBlob(), s.lastBlob()]);
    err('receive', () => s.receive());
    err('await', () => s.sendAndAwaitResponse(ADDR, REQ, undefined));
    err('set-state', () => s.setState(new Uint8Array([])));
    err('print', () => s.printToTerminal(1, 'a\0b'));
    const w = wall.now(), m = mono.now(), r = rnd.getRandomU64();
    out('wasi', [typeof w.seconds, Number(w.seconds), w.nanoseconds,
                 typeof m, typeof r]);
    throw new Error('boom');
  } };
}
"""


def plant_fake(tmp_path, glue=FAKE_GLUE):
    """A file the host takes for a component, and a cache holding the
    fake's entry for it (where a first host, failing to transpile it, made
    the folder of jco's release): (binary, cache)."""
    binary = tmp_path / "fake.wasm"
    binary.write_bytes(b"\0asm\x0d\0\x01\0" + os.urandom(16))
    cache = tmp_path / "cache"
    first = Host(cache)
    try:
        first.hello(str(binary))
        f = first.recv()
        assert f[0] == FAIL and "transpile" in f[1], f
        assert first.wait() == 1
    finally:
        first.close()
    (generation,) = os.listdir(cache)
    entry = cache / generation / hashlib.sha256(binary.read_bytes()).hexdigest()
    entry.mkdir()
    (entry / "component.mjs").write_text(glue)
    (entry / "meta.json").write_text(json.dumps({
        "imports": ["hyperware:process/standard",
                    "wasi:clocks/wall-clock", "wasi:clocks/monotonic-clock",
                    "wasi:random/random"],
        "exports": [["init", "function"]]}))
    return str(binary), cache


def printed(h, label):
    f = h.recv()
    assert f is not None and f[0] == PRINT and f[1] == 0, f
    got, _, text = f[2].partition(" ")
    assert got == label, f
    return json.loads(text)


# Two calls with results, then two receives.
AHEAD_GLUE = FAKE_GLUE[:FAKE_GLUE.index("export function instantiate")] + r"""
export function instantiate(getCoreModule, imports) {
  const s = imports['hyperware:process/standard'];
  const out = (label, v) => s.printToTerminal(0, `${label} ${show(v)}`);
  return { init(our) {
    out('state', s.getState());
    out('state', s.getState());
    out('receive', s.receive());
    out('blob', [s.hasBlob(), s.getBlob()]);
    out('receive', s.receive());
    out('blob', [s.hasBlob(), s.getBlob(), s.lastBlob()]);
  } };
}
"""


def test_a_message_delivered_while_a_call_waits(tmp_path):
    """Messages the node delivers ahead while the host waits for a REPLY
    are set aside, and stay whole while later frames are read (the host
    decodes frames where they lie in its input buffer): the receives to
    come get them, with their blobs."""
    binary, cache = plant_fake(tmp_path, AHEAD_GLUE)
    h = Host(cache)
    try:
        h.hello(binary)
        assert h.recv() == [READY, VERSION, []], h.wait() or h.stderr
        assert h.recv() == [GET_STATE]
        h.send(DELIVER, [0, SOURCE, [0, request(b"first-body")]],
               ["text/plain", b"first-blob"])
        h.send(DELIVER, [0, SOURCE, [0, request(b"second-body")]], None)
        h.reply(b"state-1")
        assert printed(h, "state") == "b:state-1"
        assert h.recv() == [GET_STATE]
        h.reply(b"Z" * 300)  # read where the messages set aside lay
        assert printed(h, "state") == "b:" + "Z" * 300
        assert h.recv() == [RECEIVE]
        j_source = {"node": "test.os", "process": {
            "processName": "tester", "packageName": "tpkg", "publisherNode": "test.os"}}
        j_req = {"inherit": False, "expectsResponse": "5n", "body": "b:first-body",
                 "metadata": "<none>", "capabilities": []}
        assert printed(h, "receive") == [j_source, {"tag": "request", "val": j_req}]
        j_blob = {"mime": "text/plain", "bytes": "b:first-blob"}
        assert printed(h, "blob") == [True, j_blob]
        assert h.recv() == [RECEIVE]
        assert printed(h, "receive")[1]["val"]["body"] == "b:second-body"
        assert printed(h, "blob") == [False, "<none>", j_blob]
        assert h.recv() == [DONE, 0]
        assert h.wait() == 0
    finally:
        h.close()


@pytest.fixture
def fake_host(tmp_path):
    binary, cache = plant_fake(tmp_path)
    h = Host(cache)
    h.hello(binary)
    yield h
    h.close()


def test_every_import(fake_host):
    host = fake_host
    assert host.recv() == [READY, VERSION, []], host.wait() or host.stderr
    addr = ["n", ["p", "k", "u"]]
    j_addr = {"node": "n", "process": {"processName": "p", "packageName": "k",
                                       "publisherNode": "u"}}
    cap = [addr, "{}"]
    j_cap = {"issuer": j_addr, "params": "{}"}
    req = [True, 2 ** 40, b"hi", "md", [cap]]
    j_req = {"inherit": True, "expectsResponse": f"{2 ** 40}n",
             "body": "b:hi", "metadata": "md", "capabilities": [j_cap]}
    resp = [False, b"", None, []]
    j_resp = {"inherit": False, "body": "b:", "metadata": "<none>",
              "capabilities": []}

    assert printed(host, "init") == "test.os@counter:counter:hyperc.os"
    assert host.recv() == [OUR]
    host.reply(addr)
    assert printed(host, "our") == j_addr

    assert host.recv() == [GET_ON_EXIT]
    host.reply([2, [[addr, [False, 7, b"", None, []], b"unused",
                     [None, b"x"]]]])
    assert printed(host, "get-on-exit") == {"tag": "requests", "val": [[
        j_addr, {"inherit": False, "expectsResponse": "7n", "body": "b:",
                 "metadata": "<none>", "capabilities": []},
        {"mime": "<none>", "bytes": "b:x"}]]}
    assert host.recv() == [SET_ON_EXIT, [1, []]]
    assert host.recv() == [SET_ON_EXIT, [2, [[addr, req, None, None],
                                             [addr, req, None, [
                                                 "t", b"B"]]]]]

    assert host.recv() == [GET_STATE]
    host.reply(None)
    assert printed(host, "get-state") == "<none>"
    assert host.recv() == [GET_STATE]
    host.reply(b"st")
    assert printed(host, "get-state") == "b:st"
    assert host.recv() == [SET_STATE, b"s"]
    host.reply(True)
    assert host.recv() == [CLEAR_STATE]
    host.reply(True)

    assert host.recv() == [8, "kid", "kid.wasm", [0, []], [cap],
                           [["p", "k", "u"]], ['"g"'], True]
    host.reply(0, ["kid", "k", "u"])
    assert printed(host, "spawn") == {
        "processName": "kid", "packageName": "k", "publisherNode": "u"}
    assert host.recv() == [8, None, "x.wasm", [1, []], [], [], [], False]
    host.reply(1, None)
    assert printed(host, "spawn")["payload"] == "name-taken"
    assert host.recv()[0] == 8
    host.reply(2, None)
    assert printed(host, "spawn")["payload"] == "no-file-at-path"

    assert host.recv() == [9, [cap]]
    assert host.recv() == [10, []]
    assert host.recv() == [OUR_CAPS]
    host.reply([cap])
    assert printed(host, "our-capabilities") == [j_cap]

    assert host.recv() == [SEND_REQUEST, addr, req, b"c", ["t", b"B"]]
    assert host.recv() == [SEND_REQUEST, addr, req[:1] + [None] + req[2:],
                           None, None]
    assert host.recv() == [SEND_RESPONSE, resp, None]

    # send-and-await: a response, with its blob
    assert host.recv() == [SEND_AND_AWAIT, addr, req, ["t", b"B"]]
    host.reply(0, [0, addr, [1, resp, b"ctx"]], ["m", b"R"])
    assert printed(host, "await") == [
        j_addr, {"tag": "response", "val": [j_resp, "b:ctx"]}]
    j_blob = {"mime": "m", "bytes": "b:R"}
    assert printed(host, "blob") == [True, j_blob, j_blob]
    # a send error: result err, the blobs unchanged
    assert host.recv() == [SEND_AND_AWAIT, addr, req, None]
    host.reply(0, [1, [0, addr, [0, req], None]], None)
    assert printed(host, "await")["payload"] == {
        "kind": "offline", "target": j_addr,
        "message": {"tag": "request", "val": j_req},
        "lazyLoadBlob": "<none>"}
    assert printed(host, "blob") == [True, j_blob, j_blob]
    # receive: an error, with its context
    assert host.recv() == [RECEIVE]
    host.reply([1, [1, addr, [0, req], ["q", b"Q"]], b"c"], None)
    assert printed(host, "receive")["payload"] == [
        {"kind": "timeout", "target": j_addr,
         "message": {"tag": "request", "val": j_req},
         "lazyLoadBlob": {"mime": "q", "bytes": "b:Q"}}, "b:c"]
    # where Hyperware traps, an Error without a payload
    assert host.recv()[0] == SEND_AND_AWAIT
    host.reply(-1, None, None)
    got = printed(host, "await")
    assert "(-1)" in got["trap"], got
    assert host.recv() == [SET_STATE, b""]
    host.reply(False)
    got = printed(host, "set-state")
    assert "set-state" in got["trap"], got
    got = printed(host, "print")
    assert "NUL" in got["trap"], got

    kind, seconds, nanos, mono, rnd = printed(host, "wasi")
    assert (kind, mono, rnd) == ("bigint", "bigint", "bigint")
    assert abs(seconds - time.time()) < 60 and 0 <= nanos < 10 ** 9

    f = host.recv()
    assert f[0] == TRAP and f[1] == "boom" and "boom" in f[2], f
    assert host.wait() == 1


def test_hosts_starting_together_share_the_cache(tmp_path):
    """Two hosts transpile the same new component at once: both run, and
    the cache ends with one entry and no half-written one."""
    binary = build_component(tmp_path, "blobs", "")
    hosts = [Host(tmp_path / "cache"), Host(tmp_path / "cache")]
    try:
        for h in hosts:
            # two transpiles at once, one of them perhaps waiting for the
            # other's: on a busy machine that takes longer than one read
            h.sock.settimeout(2 * TIMEOUT)
            h.hello(binary)
        for h in hosts:
            assert h.recv() == [READY, VERSION, []], h.wait() or h.stderr
            assert h.recv()[0] == PRINT
    finally:
        for h in hosts:
            h.close()
    (generation,) = os.listdir(tmp_path / "cache")
    entries = os.listdir(tmp_path / "cache" / generation)
    assert len(entries) == 1 and not entries[0].startswith("."), entries


def test_version_mismatch_fails(host):
    host.send(HELLO, 3, "test.os@p:k:u", "/nonexistent.wasm", "p:k:u")
    assert host.recv() == [FAIL, "protocol version 3 not supported"]
    assert host.wait() != 0


def test_missing_file_fails(host, tmp_path):
    missing = str(tmp_path / "no-such.wasm")
    host.hello(missing)
    f = host.recv()
    assert f[0] == FAIL and len(f) == 2, f
    assert "no file" in f[1] and missing in f[1], f
    assert host.wait() == 1


def test_not_a_component_fails(host, cache, tmp_path):
    core = tmp_path / "core.wasm"
    core.write_bytes(b"\0asm\x01\0\0\0")  # an empty core module
    host.hello(str(core))
    f = host.recv()
    assert f[0] == FAIL and "not a component" in f[1], f
    assert host.wait() == 1
    junk = tmp_path / "junk.wasm"
    junk.write_bytes(b"hello, world")
    again = Host(cache)
    try:
        again.hello(str(junk))
        f = again.recv()
        assert f[0] == FAIL and "not a WebAssembly file" in f[1], f
        assert again.wait() == 1
    finally:
        again.close()


def test_eof_before_hello_exits(host):
    host.sock.shutdown(socket.SHUT_WR)
    assert host.recv() is None
    assert host.wait() == 0


@needs_counter
def test_eof_while_blocked_exits(host):
    """The node goes away while the component waits in receive."""
    host.hello(COUNTER)
    assert host.recv() == [READY, VERSION, []]
    serve_until(host, {RECEIVE})
    host.sock.shutdown(socket.SHUT_WR)
    assert host.wait() == 0


def test_broken_frame_exits(host):
    # a length, then the stream ends inside the frame
    host.send_raw(struct.pack("<I", 100) + b"\x95\x40")
    host.sock.shutdown(socket.SHUT_WR)
    assert host.recv() is None
    assert host.wait() == 1
    assert "protocol error" in host.stderr


def test_garbage_frame_exits(host):
    # a complete frame that is not msgpack of [op, ...]
    host.send_raw(struct.pack("<I", 3) + b"\xc1\xc1\xc1")
    assert host.recv() is None
    assert host.wait() == 1
    assert "protocol error" in host.stderr


def test_oversized_frame_exits(host):
    host.send_raw(struct.pack("<I", 256 * 1024 * 1024 + 1))
    assert host.recv() is None
    assert host.wait() == 1
    assert "protocol error" in host.stderr


@needs_counter
def test_wrong_reply_exits(host):
    """An op other than REPLY where a REPLY is due is a protocol error."""
    host.hello(COUNTER)
    assert host.recv() == [READY, VERSION, []]
    f = host.recv()
    while f[0] not in (OUR, GET_STATE, RECEIVE, SET_STATE):
        f = host.recv()  # calls without a reply
    host.send(HELLO, VERSION, "x", "y", "z")
    assert host.wait() == 1
    assert "protocol error" in host.stderr


@needs_counter
def test_malformed_reply_exits(host):
    host.hello(COUNTER)
    assert host.recv() == [READY, VERSION, []]
    serve_until(host, {RECEIVE})
    host.reply([0, SOURCE, [7, "not a message"]], None)
    assert host.wait() == 1
    assert "protocol error" in host.stderr
