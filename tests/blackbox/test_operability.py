"""Operating a node from the shell with the real `hyperc` command: inject's
exit status for the framework's error replies, install naming a process
that does not start and why, `ps` as a table and as JSON (state, restarts,
queue, live tasks, busy, last crash), `logs` (the node's, a process's,
followed across a rotation), and verbosity 3 showing every message."""
import json
import os
import signal
import subprocess
import threading
import time

import pytest

from conftest import BIN, ISOLATED, PACKAGES, pid

VERSIONED = pid("versioned", "tstate")
FRAGILE = pid("fragile", "tfragile")


def hyperc(*args, timeout=60):
    return subprocess.run([BIN, *args], capture_output=True, text=True,
                          timeout=timeout)


def ps_json(node, *extra):
    r = hyperc("ps", "--home", node.home, "--json", *extra)
    assert r.returncode == 0, r.stderr
    return {p["id"]: p for p in json.loads(r.stdout)}


def ps_table(node, *extra):
    """`hyperc ps` as {id: {column: cell}}, split at the header's columns."""
    r = hyperc("ps", "--home", node.home, *extra)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    head = lines[0]
    names = ["PROCESS", "STATE", "RESTARTS", "QUEUE", "TASKS", "BUSY",
             "LAST CRASH"]
    assert head.split("  ")[0] == "PROCESS" and head.endswith("LAST CRASH")
    rows = {}
    for line in lines[1:]:
        # the last column may hold spaces: split the others off first
        cells = line.split(None, len(names) - 1)
        rows[cells[0]] = dict(zip(names, cells))
    return rows


def wait_until(pred, timeout=15, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.1)
    raise AssertionError(f"{what} not met within {timeout} s")


def set_state(node, process, value):
    """Store `value` as process's state through state:distro:sys, as the
    terminal may (inject --blob)."""
    path = os.path.join(node.home, "state-blob")
    with open(path, "wb") as f:
        f.write(value)
    r = hyperc("inject", "--home", node.home, "--blob", path,
               "state:distro:sys", json.dumps({"SetState": process}))
    assert r.returncode == 0 and r.stdout == '"SetState"\n', r.stderr


# ------------------------------------------------------------------ inject

def test_inject_shows_bytes_with_a_nul_as_base64(node_factory):
    """Valid UTF-8 with a NUL byte in it is not text a C string (or the
    control socket's JSON reader) can carry: the reply gives it as base64
    only, and `hyperc inject` prints it so."""
    n = node_factory(packages=("tpkg",))
    set_state(n, "nul:tpkg:test.os", b"hel\x00o")
    r = hyperc("inject", "--home", n.home, "state:distro:sys",
               json.dumps({"GetState": "nul:tpkg:test.os"}))
    assert r.returncode == 0, r.stderr
    assert r.stdout == '"GetState"\nblob (base64): aGVsAG8=\n', r.stdout
    rep = n.inject("state:distro:sys",
                   json.dumps({"GetState": "nul:tpkg:test.os"}))
    assert "text" not in rep["blob"] and rep["blob"]["b64"] == "aGVsAG8=", rep


def test_inject_exits_3_on_a_framework_error_and_still_prints_it(
        node_factory):
    n = node_factory(packages=("tstate", "tpkg"))
    ok = hyperc("inject", "--home", n.home, VERSIONED, '"Increment"')
    assert ok.returncode == 0 and ok.stdout == "1\n", ok.stderr
    for body, kind in (('{"Nope": 1}', "UnknownVariant"),
                       ("not json", "BadJson"),
                       ('{"Increment": {"by": "x"}}', "BadArguments")):
        r = hyperc("inject", "--home", n.home, VERSIONED, body)
        assert r.returncode == 3, (body, r.returncode, r.stdout, r.stderr)
        reply = json.loads(r.stdout)
        assert reply["HypercError"]["kind"] == kind, reply
        assert (f"{VERSIONED} answered with the framework's error reply "
                f"({kind})") in r.stderr
        # the whole reply for machines: the same status
        r = hyperc("inject", "--home", n.home, "--json", VERSIONED, body)
        assert r.returncode == 3
        assert json.loads(json.loads(r.stdout)["body"])["HypercError"][
            "kind"] == kind
    # a raw process's answer is never taken for one, whatever it says
    r = hyperc("inject", "--home", n.home, pid("a"), "echo HypercError")
    assert r.returncode == 0 and r.stdout == "HypercError\n"
    # transport failures keep status 1, usage errors 2
    r = hyperc("inject", "--home", n.home, "--timeout", "1", pid("slow"),
               "sleep 2500")
    assert r.returncode == 1 and "timeout" in r.stderr
    assert hyperc("inject", "--home", n.home, pid("a")).returncode == 2


# ----------------------------------------------------------------- install

@pytest.mark.skipif(not ISOLATED, reason="a crash in-process ends the node")
def test_install_names_a_process_that_crashes_as_it_starts(node_factory):
    n = node_factory(packages=("tfragile",))
    pkg = os.path.join(PACKAGES, "tfragile")
    r = hyperc("install", "--home", n.home, pkg)
    assert r.returncode == 0, r.stderr
    assert "reinstalled: fragile:tfragile:test.os;" in r.stdout
    assert n.ask(FRAGILE, "set segv") == "ok"
    r = hyperc("install", "--home", n.home, pkg)
    assert r.returncode == 3, (r.stdout, r.stderr)
    assert "installed tfragile:test.os" in r.stdout
    assert (f"hyperc install: {FRAGILE} did not start: crashed as it "
            "started: SIGSEGV in hw_init (fragile.c:") in r.stderr
    # ps says so too, while it keeps restarting (on-exit Restart)
    p = ps_json(n)[FRAGILE]
    assert p["start_failure"].startswith(
        "crashed as it started: SIGSEGV in hw_init (fragile.c:"), p
    assert p["last_crash"].startswith("SIGSEGV in hw_init (fragile.c:"), p
    wait_until(lambda: ps_json(n)[FRAGILE]["restarts"] >= 1, what="restart")
    row = ps_table(n)[FRAGILE]
    assert row["LAST CRASH"].startswith(
        "did not start: crashed as it started: SIGSEGV in hw_init"), row
    # a good state again, and a reinstall starts it at once (no waiting
    # out the restart backoff) and says nothing failed
    set_state(n, FRAGILE, b"fine")
    r = hyperc("install", "--home", n.home, pkg)
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert "did not start" not in r.stderr and "still busy" not in r.stdout
    assert n.ask(FRAGILE, "hello") == "hello"
    assert ps_json(n)[FRAGILE]["start_failure"] is None


def test_install_names_a_process_that_returns_as_it_starts(node_factory):
    n = node_factory(packages=("tfragile",))
    set_state(n, FRAGILE, b"quit")
    r = hyperc("install", "--home", n.home, os.path.join(PACKAGES, "tfragile"))
    assert r.returncode == 3, (r.stdout, r.stderr)
    assert (f"{FRAGILE} did not start: exited before it started; it said: "
            "fragile: my state says quit; not starting") in r.stderr


def test_install_names_a_process_whose_state_does_not_load(node_factory,
                                                           tmp_path):
    home = tmp_path / "home"
    n = node_factory(packages=("tstate",), home=home)
    assert n.ask(VERSIONED, '"Increment"') == "1"
    # saved on its timer, every second; wait for that save, not init's
    # (count 0), which a later tick would otherwise write over what is
    # planted below
    deadline = time.monotonic() + 10
    while b'"count":1' not in (n.stored_state(VERSIONED) or b""):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    # a state it cannot load, planted through the running node (which holds
    # the database exclusively), as the terminal may
    rep = n.inject("state:distro:sys", json.dumps({"SetState": VERSIONED}),
                   blob=b'{"hyperc_state":7,"state":{"n":1}}')
    assert rep.get("ok") and rep["body"] == '"SetState"', rep
    r = hyperc("install", "--home", n.home, os.path.join(PACKAGES, "tstate"))
    assert r.returncode == 3, (r.stdout, r.stderr)
    assert "reinstalled: versioned:tstate:test.os;" in r.stdout
    assert (f"{VERSIONED} did not start: exited before it started; it said: "
            "ERROR versioned: the stored state has version 7; this build has "
            "2") in r.stderr
    # it set its on-exit to None: it left the node
    assert VERSIONED not in ps_json(n)


# ---------------------------------------------------------------------- ps

def test_ps_shows_state_queue_tasks_busy_and_crashes(node_factory):
    n = node_factory(packages=("tpkg", "ttasks", "tcrash"))
    slow, c = pid("slow"), pid("c", "ttasks")
    # slow blocks 8 s in one handler while two more requests queue for it;
    # c has three handlers in flight, each waiting on a timer (long enough
    # for the five `hyperc inject`s of a loaded machine)
    assert hyperc("inject", "--home", n.home, "-l", slow,
                  "sleep 8000").returncode == 0
    for i in range(2):
        hyperc("inject", "--home", n.home, "-l", slow, f"echo {i}")
    for i in range(3):
        hyperc("inject", "--home", n.home, "-l", c,
               json.dumps({"SleepThen": [10000, i]}))
    procs = wait_until(
        lambda: (lambda p: p if p[slow]["busy_ms"] >= 800 and
                 p[c]["tasks"] == 3 else None)(ps_json(n, "--busy-ms", "800")),
        what="slow busy and c's tasks")
    assert procs[slow]["busy"] is True and procs[slow]["queued"] == 2
    assert procs[slow]["status"] == "running" and procs[slow]["tasks"] is None
    assert procs[c]["busy"] is False and procs[c]["busy_ms"] < 800
    assert procs[pid("a")]["busy_ms"] == 0 and procs[pid("a")]["busy"] is False
    assert procs["timer:distro:sys"]["busy_ms"] is None
    # the default threshold (5 s) flags the handler only once past it
    p = ps_json(n)[slow]
    assert p["busy"] is (p["busy_ms"] >= 5000), p
    rows = ps_table(n, "--busy-ms", "800")
    assert rows[slow]["BUSY"].endswith("s") and rows[slow]["QUEUE"] == "2"
    assert rows[c]["TASKS"] == "3" and rows[c]["BUSY"] == "-"
    assert rows[pid("a")]["TASKS"] == "-" and rows[pid("a")]["BUSY"] == "-"
    # once done: nothing queued, nothing in flight, not busy
    procs = wait_until(
        lambda: (lambda p: p if p[slow]["queued"] == 0 and p[slow]["busy_ms"]
                 == 0 and p[c]["tasks"] == 0 else None)(ps_json(n)),
        timeout=30, what="idle again")
    # a process that exits at once: restarted by its on-exit
    crasher = pid("crasher", "tcrash")
    wait_until(lambda: ps_json(n)[crasher]["restarts"] >= 2, what="restarts")
    assert int(ps_table(n)[crasher]["RESTARTS"]) >= 2


def test_ps_without_a_node_and_with_bad_flags(tmp_path):
    r = hyperc("ps", "--home", str(tmp_path))
    assert r.returncode == 1 and "no running node" in r.stderr
    r = hyperc("ps", "--busy-ms", "soon")
    assert r.returncode == 2 and "--busy-ms" in r.stderr
    r = hyperc("ps", "--help")
    assert r.returncode == 0 and "LAST CRASH" in r.stdout


# -------------------------------------------------------------------- logs

class Follow:
    """`hyperc logs -f ...` in the background, its output collected."""

    def __init__(self, *args):
        self.proc = subprocess.Popen([BIN, "logs", "-f", *args],
                                     stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        self.lines = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line)

    def text(self):
        return "".join(self.lines)

    def wait_for(self, what, timeout=15):
        wait_until(lambda: what in self.text(), timeout, repr(what))

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout=10)
        self.reader.join(timeout=5)
        return rc


def test_logs_of_the_node_and_of_a_process(node_factory):
    n = node_factory(packages=("tpkg", "tstate"))
    n.inject(pid("a"), "note first line", non_block=True)
    n.wait_log("note: first line")
    r = hyperc("logs", "--home", n.home)
    assert r.returncode == 0, r.stderr
    assert f"[0] {pid('a')}: note: first line\n" in r.stdout
    assert r.stdout == open(os.path.join(n.home, "log", "node.log")).read()
    r = hyperc("logs", "--home", n.home, "-n", "1")
    assert r.stdout.count("\n") == 1 and "note: first line" in r.stdout
    # a hyperprocess's own file, its debug lines included
    wait_until(lambda: os.path.exists(os.path.join(
        n.home, "vfs", "tstate:test.os", "log", "versioned.log")),
        what="versioned.log")
    r = hyperc("logs", "--home", n.home, VERSIONED)
    assert r.returncode == 0, r.stderr
    assert "DEBUG versioned: started with a new state" in r.stdout
    # what there is none of is said, with where to look
    r = hyperc("logs", "--home", n.home, pid("a"))
    assert r.returncode == 1
    assert "no log file for a:tpkg:test.os at" in r.stderr
    assert "the node's log" in r.stderr
    r = hyperc("logs", "--home", n.home, "not-an-id")
    assert r.returncode == 2 and "not a process id" in r.stderr
    r = hyperc("logs", "--home", os.path.join(n.home, "nothing"))
    assert r.returncode == 1 and "no node log at" in r.stderr


def test_logs_follow_the_node_across_rotations_and_a_process(node_factory):
    n = node_factory(packages=("tpkg", "tstate"),
                     extra=["--max-log-size", "4000"])
    f = Follow("--home", n.home, "-n", "0")
    try:
        # -n 0: nothing of what was there; a line written once it follows
        def follows():
            n.inject(pid("a"), "note are you there", non_block=True)
            return "note: are you there" in f.text()
        wait_until(follows, what="the follow to start")
        for i in range(60):
            n.inject(pid("a"), f"note follow {i:03d} " + "x" * 40,
                     non_block=True)
        f.wait_for("note: follow 059")
        # every line once, in order, though the log rotated on the way
        got = [l for l in f.lines if "note: follow" in l]
        assert [l.split("note: follow ")[1][:3] for l in got] == \
            [f"{i:03d}" for i in range(60)]
        assert os.path.exists(os.path.join(n.home, "log", "node.log.1"))
    finally:
        assert f.stop() == 0
    # a process's file: what it logs from now on
    g = Follow("--home", n.home, VERSIONED, "-n", "0")
    try:
        def follows():
            r = hyperc("inject", "--home", n.home, VERSIONED, '{"Nope": 1}')
            assert r.returncode == 3
            return "INFO versioned: refused a request: UnknownVariant" in \
                g.text()
        wait_until(follows, what="a line the process logs")
        assert "started with a new state" not in g.text()
    finally:
        assert g.stop() == 0


# --------------------------------------------------------------- verbosity

def test_a_hyperprocess_debug_line_only_at_verbosity_3(node_factory):
    """hp_log_debug: neither shown nor in the node's log below 3 (only in
    the process's own file); at 3 (the node's, or the process's own) on the
    terminal and in the node's log."""
    n = node_factory(packages=("ttasks",), wait_ready=False)
    b = pid("b", "ttasks")
    n.wait_log("test.os running")
    for level in ("0", "1", "2"):
        assert hyperc("verbosity", "--home", n.home, level).returncode == 0
        assert n.ask(b, '{"DebugLine": "below-%s"}' % level) != ""
    # the process's own file has them (the runtime writes it on its own)
    vfs_log = os.path.join(n.home, "vfs", "ttasks:test.os", "log", "b.log")
    wait_until(lambda: os.path.exists(vfs_log) and
               "said: below-2" in open(vfs_log).read(),
               what="the process's log file")
    assert "said: below" not in n.stderr()
    assert "said: below" not in n.log()
    assert hyperc("verbosity", "--home", n.home, "3").returncode == 0
    n.ask(b, '{"DebugLine": "at-three"}')
    wait_until(lambda: "said: at-three" in n.stderr() and
               "said: at-three" in n.log(), what="the debug line")
    assert "[3] b:ttasks:test.os: DEBUG b: said: at-three" in n.log()
    # a process's own level 3, the node's at 0
    assert hyperc("verbosity", "--home", n.home, "0").returncode == 0
    n.ask(b, '{"DebugLine": "node-quiet"}')
    assert hyperc("verbosity", "--home", n.home, b, "3").returncode == 0
    n.ask(b, '{"DebugLine": "process-three"}')
    wait_until(lambda: "said: process-three" in n.stderr(),
               what="the process's debug line")
    assert "said: node-quiet" not in n.stderr() + n.log()
    # -1: it follows the node's (0) again
    r = hyperc("verbosity", "--home", n.home, b, "-1")
    assert r.returncode == 0, r.stderr
    n.ask(b, '{"DebugLine": "following"}')
    n.ask(b, '{"DebugLine": "marker"}')
    wait_until(lambda: os.path.exists(vfs_log) and
               "said: marker" in open(vfs_log).read(),
               what="the process's log file")
    assert "said: following" not in n.stderr() + n.log()
    # the node itself has no -1
    for args in (("--home", n.home, "-1"), ("-1",)):
        r = hyperc("verbosity", *args)
        assert r.returncode == 2 and "LEVEL must be 0 to 3" in r.stderr, \
            (args, r.stderr)


def test_verbosity_3_shows_every_message_the_kernel_routes(node):
    body = "echo level-three"
    assert hyperc("verbosity", "--home", node.home, "3").returncode == 0
    assert node.ask(pid("a"), body) == "level-three"
    # the request and its response, on the terminal and in the log at [3]
    request = (f"test.os@terminal:terminal:sys -> test.os@a:tpkg:test.os "
               f"({len(body)} bytes, expects 5 s): {body}")
    response = ("test.os@a:tpkg:test.os -> test.os@terminal:terminal:sys "
                "(11 bytes): level-three")
    wait_until(lambda: request in node.stderr() and response in
               node.stderr(), what="the kernel's lines")
    assert "[3] kernel: request " in node.log()
    # back at 0: no such lines, on the terminal or in the log
    assert hyperc("verbosity", "--home", node.home, "0").returncode == 0
    before = node.log().count("kernel: request ")
    assert node.ask(pid("a"), "echo quiet-again") == "quiet-again"
    time.sleep(0.3)
    assert "quiet-again" not in node.stderr()
    assert node.log().count("kernel: request ") == before
    r = hyperc("verbosity", "--home", node.home, "4")
    assert r.returncode == 2 and "LEVEL must be 0 to 3" in r.stderr
