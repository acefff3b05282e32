"""Components on hyperc's node beside native processes: a wasm requester
calling a native receiver through the generated stubs and the other way
round, and a trap in a component ending that process alone (logged, told to
its callers, restarted by on-exit).

Needs HYPERC_PACKAGES (native) and HYPERC_WASM_PACKAGES (the wasm32
sub-build's packages/)."""
import json
import os
import re
import select
import shutil
import subprocess
import time

import pytest

from conftest import BIN, CAN_TRANSLATE, NATIVE_CODE, children_by_parent, pid
from test_async_app import REQUESTER, RECEIVER, calls_through_stubs

PACKAGES = os.environ.get("HYPERC_PACKAGES", "build/packages")
WASM_PACKAGES = os.environ.get("HYPERC_WASM_PACKAGES", "build/wasm32/packages")
TRAPPER = pid("trapper", "ttrap", "test.os")
# NATIVE_CODE: components run as native code (docs/wasm-native.md, the
# default where it can be made): translated by wasm2c, each in a
# hyperc-worker, no wasm host
# where a trap is said to be: V8 names the wasm function and its place in
# the module, the translation the function and its line in the C
WHERE = "(component.c:" if NATIVE_CODE else "(wasm://"
UNREACHABLE = ("Unreachable instruction executed" if NATIVE_CODE
               else "wasm `unreachable` instruction executed")


def mixed_async_app(tmp_path, wasm_process):
    """The native async-app package with `wasm_process` as a component."""
    out = tmp_path / "async-app"
    shutil.copytree(os.path.join(PACKAGES, "async-app"), out)
    os.remove(out / "pkg" / f"{wasm_process}.so")
    shutil.copy(os.path.join(WASM_PACKAGES, "async-app", "pkg",
                             f"{wasm_process}.wasm"), out / "pkg")
    manifest = json.loads((out / "pkg" / "manifest.json").read_text())
    for e in manifest:
        if e["process_name"] == wasm_process:
            e["process_wasm_path"] = f"/{wasm_process}.wasm"
    (out / "pkg" / "manifest.json").write_text(json.dumps(manifest))
    return str(out)


@pytest.mark.parametrize("wasm_process", ["requester", "receiver"])
def test_native_and_wasm_call_each_other_through_stubs(node_factory, tmp_path,
                                                       wasm_process):
    n = node_factory(packages=(mixed_async_app(tmp_path, wasm_process),))
    calls_through_stubs(n)
    # one of the two is a wasm host's worker, the other hyperc-worker
    ps = {p["id"]: p for p in n.call({"op": "ps"})["processes"]}
    assert ps[REQUESTER]["isolated"] and ps[RECEIVER]["isolated"]


def test_a_trap_ends_that_process_alone(node_factory):
    n = node_factory(packages=(os.path.join(WASM_PACKAGES, "ttrap"),
                               os.path.join(WASM_PACKAGES, "counter")))
    n.wait_log("trapper: started")
    assert n.ask(TRAPPER, "ping") == "pong 1"
    rep = n.inject(TRAPPER, "trap")
    assert not rep.get("ok"), rep  # the caller is told, not left waiting
    n.wait_log(f"process {TRAPPER} crashed: wasm trap: {UNREACHABLE} in "
               f"trap_here {WHERE}")
    # on-exit Restart: a new instance, counting from 1 again
    n.wait_log("trapper: started", count=2)
    assert n.ask(TRAPPER, "ping") == "pong 1"
    # the other component on the node kept serving
    assert n.ask(pid("counter", "counter", "hyperc.os"), '{"Increment": 2}') == "2"
    # exit() in a component is a trap too
    assert not n.inject(TRAPPER, "exit").get("ok")
    n.wait_log(f"process {TRAPPER} crashed: wasm trap", count=2)
    n.wait_log("trapper: started", count=3)
    ps = {p["id"]: p for p in n.call({"op": "ps"})["processes"]}
    assert ps[TRAPPER]["crashes"] == 2


def test_a_read_outside_the_memory_ends_that_process_alone(node_factory):
    n = node_factory(packages=(os.path.join(WASM_PACKAGES, "ttrap"),
                               os.path.join(WASM_PACKAGES, "counter")))
    n.wait_log("trapper: started")
    assert not n.inject(TRAPPER, "outside").get("ok")
    # V8 traps; as native code the guard pages after the memory fault, and
    # the worker reports the fault in the component's own function (not
    # the helper of wasm2c's inlined into it, i32_load8_u)
    if NATIVE_CODE:
        n.wait_log(f"process {TRAPPER} crashed: SIGSEGV in ")
        assert re.search(rf"{TRAPPER} crashed: SIGSEGV in read_outside "
                         r"\(component\.c:\d+\)\n", n.log()), n.log()
    else:
        n.wait_log(f"process {TRAPPER} crashed: wasm trap: out of bounds memory "
                   "access in read_outside (wasm://")
    n.wait_log("trapper: started", count=2)
    assert n.ask(TRAPPER, "ping") == "pong 1"
    assert n.ask(pid("counter", "counter", "hyperc.os"), '{"Increment": 2}') == "2"


@pytest.mark.skipif(not CAN_TRANSLATE, reason="no translation to native code here")
def test_a_component_that_cannot_be_translated_does_not_start(node_factory,
                                                              tmp_path,
                                                              monkeypatch):
    # a core module where the component belongs, native code asked for:
    # the node says why, the process does not start, the other one serves
    monkeypatch.setenv("HYPERC_WASM_RUNTIME", "native")
    pkg = tmp_path / "ttrap"
    shutil.copytree(os.path.join(WASM_PACKAGES, "ttrap"), pkg)
    core = bytes.fromhex("0061736d01000000")  # \0asm, version 1: empty
    (pkg / "pkg" / "trapper.wasm").write_bytes(core)
    n = node_factory(packages=(str(pkg), os.path.join(WASM_PACKAGES, "counter")),
                     wait_ready=False)
    n.wait_log(f"{TRAPPER}: cannot translate it to native code: jco could "
               "not transpile it: ")
    n.wait_log(f"{TRAPPER} failed to start; restarting")  # its on-exit
    assert n.ask(pid("counter", "counter", "hyperc.os"), '{"Increment": 2}') == "2"


@pytest.mark.skipif(bool(os.environ.get("HYPERC_WASM_RUNTIME")),
                    reason="the default runtime only")
def test_without_a_compiler_components_run_in_the_wasm_host(node_factory,
                                                            monkeypatch):
    # the default where the translation cannot be made (here: no C
    # compiler): the wasm host, and the node says why
    monkeypatch.setenv("CC", "/nonexistent/cc")
    n = node_factory(packages=(os.path.join(WASM_PACKAGES, "ttrap"),))
    n.wait_log("trapper: started")
    assert n.ask(TRAPPER, "ping") == "pong 1"
    if CAN_TRANSLATE:  # said once a node, and translate.mjs not run
        assert ("components run in the wasm host (V8): cannot translate it to "
                "native code: /nonexistent/cc --version failed") in n.log(), n.log()
    assert len(host_pids(n, native_code=False)) == 1  # a Node.js wasm host


@pytest.mark.skipif(bool(os.environ.get("HYPERC_WASM_RUNTIME")),
                    reason="the default runtime only")
@pytest.mark.parametrize("shape", ["mode 777", "symbolic link"])
def test_a_cache_others_may_write_is_not_used(node_factory, tmp_path,
                                              monkeypatch, shape):
    # the cache holds code the node runs: one that group or others may
    # write (here mode 0777), or a symbolic link (whose owner may point it
    # elsewhere), is refused; the component runs in the wasm host,
    # transpiled for this run only, and nothing is written there
    shared = tmp_path / "shared"
    shared.mkdir()
    if shape == "mode 777":
        shared.chmod(0o777)
        cache = shared
        said = (f"the wasm cache {cache} is not this user's alone "
                f"(owner uid {os.getuid()}, mode 777)")
    else:
        shared.chmod(0o700)
        cache = tmp_path / "link"
        cache.symlink_to(shared)
        said = f"the wasm cache {cache} is a symbolic link"
    monkeypatch.setenv("HYPERC_WASM_CACHE", str(cache))
    n = node_factory(packages=(os.path.join(WASM_PACKAGES, "ttrap"),))
    n.wait_log("trapper: started")
    assert n.ask(TRAPPER, "ping") == "pong 1"
    if CAN_TRANSLATE:
        assert (f"{TRAPPER}: runs in the wasm host (V8): cannot translate it to "
                f"native code: {said}") in n.log(), n.log()
    assert len(host_pids(n, native_code=False)) == 1
    assert os.listdir(shared) == []


@pytest.mark.skipif(not NATIVE_CODE, reason="components run in the wasm host")
def test_a_cached_translation_starts_without_nodejs(node_factory,
                                                    monkeypatch):
    # once translated (the first node here, if ctest's cache did not have
    # it), a component's shared object is found by the node itself: no
    # Node.js runs to start it
    n = node_factory(packages=(os.path.join(WASM_PACKAGES, "ttrap"),))
    n.stop()
    monkeypatch.setenv("HYPERC_NODE", "/nonexistent/node")
    n = node_factory(packages=(os.path.join(WASM_PACKAGES, "ttrap"),))
    assert n.ask(TRAPPER, "ping") == "pong 1"
    assert len(host_pids(n)) == 1


def cold_node(node_factory, tmp_path, monkeypatch):
    """A node with ttrap and a wasm cache of its own, empty (its first start
    translates), once it says it is ready; the compiler's time, which a
    loaded machine may make long, bounded by 300 s rather than the harness's
    20 s for a start."""
    monkeypatch.setenv("HYPERC_WASM_CACHE", str(tmp_path / "cold"))
    n = node_factory(packages=(os.path.join(WASM_PACKAGES, "ttrap"),),
                     wait_ready=False)
    ready, _, _ = select.select([n.proc.stdout], [], [], 300)
    assert ready, f"no ready line in 300 s: {n.stderr()}"
    line = n.proc.stdout.readline()
    assert "ready" in line, (line, n.stderr())
    return n


@pytest.mark.skipif(not NATIVE_CODE, reason="components run in the wasm host")
def test_ready_waits_for_a_first_translation(node_factory, tmp_path,
                                             monkeypatch):
    # a cache of its own, empty: the first start translates (seconds, more
    # than `hyperc run`'s 10 s for a start on a busy machine); the node says
    # so and is ready once the component has started, not before
    n = cold_node(node_factory, tmp_path, monkeypatch)
    assert "trapper: started" in n.log()  # before the ready line
    assert "translating components to native code" in n.stderr()
    assert "still starting" not in n.stderr()
    assert n.ask(TRAPPER, "ping") == "pong 1"
    assert len(host_pids(n)) == 1


@pytest.mark.skipif(not NATIVE_CODE, reason="components run in the wasm host")
def test_install_waits_for_a_first_translation(node_factory, tmp_path,
                                               monkeypatch):
    # installing a component on a running node, its cache cold: the install
    # answers once it has started (the translation's seconds do not count
    # in the 10 s a start may take), not "still busy"
    n = cold_node(node_factory, tmp_path, monkeypatch)
    r = subprocess.run([BIN, "install", "--home", n.home,
                        os.path.join(WASM_PACKAGES, "counter")],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert "installed counter:" in r.stdout and "still busy" not in r.stdout, r.stdout
    assert n.ask(pid("counter", "counter", "hyperc.os"), '{"Increment": 2}') == "2"
    assert len(host_pids(n)) == 2  # both as native code


@pytest.mark.skipif(not NATIVE_CODE, reason="components run in the wasm host")
def test_the_node_stops_while_a_component_is_translated(node_factory,
                                                        tmp_path, monkeypatch):
    # a cache of its own, empty: the node translates the component as it
    # starts it (seconds); a stop then kills the translation (translate.mjs
    # and the compiler it runs, a process group) and the node ends at once
    monkeypatch.setenv("HYPERC_WASM_CACHE", str(tmp_path / "cold"))
    n = node_factory(packages=(os.path.join(WASM_PACKAGES, "ttrap"),),
                     wait_ready=False)

    def translation():
        for c in children_by_parent().get(n.proc.pid, []):
            try:
                with open(f"/proc/{c}/cmdline", "rb") as f:
                    if b"translate.mjs" in f.read():
                        return c
            except OSError:
                pass
        return None
    deadline = time.monotonic() + 20
    while (pid_ := translation()) is None:
        assert time.monotonic() < deadline, n.log()
        time.sleep(0.02)
    pgid = os.getpgid(pid_)
    assert pgid != os.getpgid(n.proc.pid)  # a group of its own
    t0 = time.monotonic()
    n.stop()
    # (a compile takes seconds more, and longer on a loaded machine)
    assert time.monotonic() - t0 < 15, "the node waited for the translation"

    def group_left():
        out = []
        for d in os.listdir("/proc"):
            try:
                with open(f"/proc/{d}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                if fields[0] != "Z" and int(fields[2]) == pgid:
                    out.append(int(d))
            except (OSError, ValueError, IndexError):
                pass
        return out
    deadline = time.monotonic() + 10
    while group_left() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert group_left() == [], "the translation's processes are still there"
    assert "trapper: started" not in n.log()


def test_stdout_and_stderr_reach_the_terminal(node_factory):
    n = node_factory(packages=(os.path.join(WASM_PACKAGES, "ttrap"),))
    n.wait_log("trapper: started")
    assert n.ask(TRAPPER, "print") == "pong 1"
    n.wait_log("trapper: to stderr 1")
    n.wait_log("trapper: to stdout 1")


def test_a_task_stack_overflow_is_caught(node_factory):
    n = node_factory(packages=(os.path.join(WASM_PACKAGES, "ttrap"),))
    n.wait_log("trapper: started")
    assert n.ask(TRAPPER, "deep") == "pong 1"  # 10 KiB of the 16: fine
    assert not n.inject(TRAPPER, "overflow").get("ok")
    n.wait_log("task stack overflow: a task used more than its 16 KiB stack")
    n.wait_log(f"process {TRAPPER} crashed: task stack overflow (a wasm trap "
               f"in task_stack_overflow {WHERE}")
    n.wait_log("trapper: started", count=2)
    assert n.ask(TRAPPER, "ping") == "pong 1"


def test_the_c_library_running_past_a_task_stack_is_caught(node_factory):
    # a frame without the entry check (as the C library's) written into the
    # red zone below a 64 KiB stack: found at the next yield
    n = node_factory(packages=(os.path.join(WASM_PACKAGES, "ttrap"),))
    n.wait_log("trapper: started")
    assert not n.inject(TRAPPER, "redzone").get("ok")
    n.wait_log("task stack overflow: a task used more than its 64 KiB stack")
    n.wait_log(f"process {TRAPPER} crashed: task stack overflow (a wasm trap "
               f"in task_stack_overflow {WHERE}")


def host_pids(n, native_code=NATIVE_CODE):
    """The workers of the node `n` that run a component: its children
    running host.mjs, or, with components as native code, the workers that
    loaded a translated one."""
    out = []
    for d in children_by_parent().get(n.proc.pid, []):
        try:
            if native_code:
                with open(f"/proc/{d}/maps") as f:
                    found = "/component.so" in f.read()
            else:
                with open(f"/proc/{d}/cmdline", "rb") as f:
                    found = b"host.mjs" in f.read()
        except OSError:
            continue
        if found:
            out.append(d)
    return out


@pytest.mark.skipif(NATIVE_CODE, reason="components run as native code: no wasm host")
def test_the_host_takes_the_link_the_node_gives(node_factory):
    # The node's shared-memory rings when the host's addon is built (and
    # HYPERC_WASM_LINK does not ask for the socket), else a socket.
    tools = os.environ.get("HYPERC_WASM_TOOLS", "build/wasm")
    rings = (os.path.exists(os.path.join(tools, "hyperc_link.node"))
             and os.environ.get("HYPERC_WASM_LINK") != "socket")
    n = node_factory(packages=(os.path.join(WASM_PACKAGES, "ttrap"),))
    n.wait_log("trapper: started")
    assert n.ask(TRAPPER, "ping") == "pong 1"
    [host] = host_pids(n)
    with open(f"/proc/{host}/maps") as f:
        mapped = "memfd:hyperc-worker-link" in f.read()
    try:  # the link's fd: a socket; the memfd is closed once mapped
        fd3 = os.readlink(f"/proc/{host}/fd/3")
    except OSError:
        fd3 = ""
    assert mapped == rings
    assert fd3.startswith("socket:") == (not rings)


@pytest.mark.skipif(os.environ.get("HYPERC_WASM_LINK") == "socket",
                    reason="over the socket the host holds a computing "
                           "component's calls (docs/wasm.md)")
def test_an_answer_goes_before_the_component_computes_on(node_factory):
    # "busy" answers, then computes (half a second or more) without an
    # import call:
    # the answer reaches the caller at once, not when the component next
    # calls the host (the "ping" behind it waits for the work to end).
    n = node_factory(packages=(os.path.join(WASM_PACKAGES, "ttrap"),))
    n.wait_log("trapper: started")
    assert n.ask(TRAPPER, "ping") == "pong 1"
    t0 = time.monotonic()
    assert n.ask(TRAPPER, "busy", timeout=30) == "pong 2"
    answered = time.monotonic() - t0
    assert n.ask(TRAPPER, "ping", timeout=30) == "pong 3"
    worked = time.monotonic() - t0
    assert worked > 0.3, f"the work took only {worked:.2f} s: too short a test"
    assert answered < worked / 2, \
        f"answered after {answered:.2f} s of {worked:.2f} s of work"


def mixed_tpkg(tmp_path, wasm_processes):
    """The native tpkg package with `wasm_processes` as components."""
    out = tmp_path / "tpkg"
    shutil.copytree(os.path.join(PACKAGES, "tpkg"), out)
    shutil.copy(os.path.join(WASM_PACKAGES, "tpkg", "pkg", "tproc.wasm"),
                out / "pkg")
    manifest = json.loads((out / "pkg" / "manifest.json").read_text())
    for e in manifest:
        if e["process_name"] in wasm_processes:
            e["process_wasm_path"] = "/tproc.wasm"
    (out / "pkg" / "manifest.json").write_text(json.dumps(manifest))
    return str(out)


@pytest.mark.parametrize("wasm_process", ["a", "b"])
def test_a_component_and_a_native_worker_talk_by_lane(node_factory, tmp_path,
                                                      monkeypatch,
                                                      wasm_process):
    """A wasm host on the rings asks for lanes as hyperc-worker does
    (docs/wasm-lanes.md): a component and a native worker that keep talking
    get a lane both map, and requests and answers go by it, in order."""
    from test_lanes import (A, B, ROOMY, by_node, futex_waitv_exists,
                            maps_lane, notes_seen, open_lane, wait_for,
                            worker)
    if (not futex_waitv_exists() or
            os.environ.get("HYPERC_WASM_LINK") == "socket"):
        pytest.skip("lanes need futex_waitv and the host on the rings")
    monkeypatch.setenv("HYPERC_LANES", "1")
    n = node_factory(packages=(mixed_tpkg(tmp_path, (wasm_process,)),),
                     extra=ROOMY)
    assert n.ask(A, f"pingpong our@{B} 40", timeout=30) == "done 40"
    open_lane(n, A, B)
    assert maps_lane(worker(n, A)) and maps_lane(worker(n, B))
    [host] = host_pids(n)
    assert host == worker(n, wasm_process == "a" and A or B)
    # the native worker was told its peer is a wasm host (its spin budget
    # may grow to the host's turn: docs/worker-protocol.md, LANE_OPEN); a
    # component as native code is a hyperc-worker as any other
    native, component = (B, A) if wasm_process == "a" else (A, B)
    assert n.ask(native, f"lanehost our@{component}") == \
        f"peer_host {0 if NATIVE_CODE else 1}"
    ab, ba = by_node(n)
    rep = n.ask(A, f"flood our@{B} 300 5 echo x", timeout=60)
    assert rep == "flood ok=300 errors=0 busy=0", rep
    ab2, ba2 = by_node(n)
    assert ab2 == ab, (ab, ab2)  # none of a's requests went by node
    assert ba2 - ba < 10, (ba, ba2)
    # numbered notes, every 7th with a capability (which only the node
    # passes on), arrive in order
    assert n.ask(A, f"notes our@{B} 400 7", timeout=60) == "sent 400"
    wait_for(lambda: len(notes_seen(n, B)) >= 400)
    assert notes_seen(n, B) == list(range(1, 401))


def lane_peer_setup(n, wasm_process):
    """a and b (b a component), with a lane between them; the lane and
    each one's worker pid."""
    from test_lanes import A, B, open_lane, worker
    assert n.ask(A, f"pingpong our@{B} 40", timeout=30) == "done 40"
    lane = open_lane(n, A, B)
    [host] = host_pids(n)
    assert host == worker(n, B)
    return lane["lane"], {x: worker(n, x) for x in (A, B)}


def lanes_or_skip(monkeypatch):
    from test_lanes import futex_waitv_exists
    if (not futex_waitv_exists() or
            os.environ.get("HYPERC_WASM_LINK") == "socket"):
        pytest.skip("lanes need futex_waitv and the host on the rings")
    monkeypatch.setenv("HYPERC_LANES", "1")


def serves_on(n, pids):
    """a and b answer each other, neither restarted nor crashed."""
    from test_lanes import A, B, NODE, ps
    assert n.ask(B, "echo b") == "b"
    for x, y in ((A, B), (B, A)):
        assert n.ask(x, f"ask our@{y} 5 k echo hi {x}") == \
            f"reply from {NODE}@{y} ctx=k: hi {x}"
    procs = ps(n)
    for x in (A, B):
        assert procs[x]["crashes"] == 0, procs[x]
        assert procs[x]["worker_pid"] == pids[x], (x, procs[x])
    assert "crashed" not in n.log()


@pytest.mark.parametrize("what,which", [("latin1", "its metadata"),
                                        ("latin1-mime", "its blob's mime")])
def test_a_lane_peers_string_that_is_not_utf8_drops_the_lane(
        node_factory, tmp_path, monkeypatch, what, which):
    """A native peer writes on its lane to a component a note whose
    metadata (or blob's mime) is Latin-1: the component's host gives the
    lane up as any breach (the node logs why and closes it) and serves on,
    where it used to end as a protocol error."""
    from test_lanes import A, B, ISOLATE, wait_for, ps
    lanes_or_skip(monkeypatch)
    n = node_factory(packages=(mixed_tpkg(tmp_path, ("b",)),), extra=ISOLATE)
    lane, pids = lane_peer_setup(n, "b")
    assert n.ask(A, f"scribble our@{B} {what}") == f"scribbled {what}"
    n.wait_log(f"{B}: dropped lane {lane}: a frame with a string that is not "
               f"UTF-8 ({which})")
    wait_for(lambda: not any(x["lane"] == lane for p in (A, B)
                             for x in ps(n)[p]["lanes"]))
    assert "note: latin-1" not in n.log()  # refused: never handed over
    serves_on(n, pids)


@pytest.mark.parametrize("lanes", ["0", "1"])
def test_a_nodes_string_that_is_not_utf8_comes_with_replacements(
        node_factory, tmp_path, monkeypatch, lanes):
    """The node passes on a native process's metadata as it is, Latin-1
    too: the component's host lowers it with U+FFFD in place of the byte
    that is not UTF-8, says so, and serves on (it used to end as a protocol
    error).  A native worker with a lane to the component sends such a
    request by node, not by the lane (whose reader would refuse it)."""
    from test_lanes import A, B, NODE, ISOLATE, ps, worker
    if lanes == "1":
        lanes_or_skip(monkeypatch)
    else:
        monkeypatch.setenv("HYPERC_LANES", "0")
    n = node_factory(packages=(mixed_tpkg(tmp_path, ("b",)),), extra=ISOLATE)
    if lanes == "1":
        lane, pids = lane_peer_setup(n, "b")
    else:
        assert n.ask(A, f"ask our@{B} 5 k echo x") == \
            f"reply from {NODE}@{B} ctx=k: x"
        pids = {x: worker(n, x) for x in (A, B)}
    assert n.ask(A, f"askmeta our@{B} 5 k metadata") == \
        f"reply from {NODE}@{B} ctx=k: caf\ufffd"
    # (the canonical ABI's line, cabi.c's; over a socket host.mjs's)
    assert re.search(rf"{B}: hyperc (component|wasm host): [\w-]+: (1|a) string not "
                     r"UTF-8 from the node, each ill-formed sequence given "
                     r"as U\+FFFD", n.log()), n.log()
    if lanes == "1":  # still open: nothing was refused on it
        assert [x["lane"] for x in ps(n)[A]["lanes"]] == [lane]
        assert "dropped lane" not in n.log()
    serves_on(n, pids)
