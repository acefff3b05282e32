"""In-process processes as fibers on scheduler threads (`--schedulers N`,
the default for in-process processes): messages, timeouts and shutdown as
with a thread each, and what a process that computes or blocks outside
`receive` does to the others (the watchdog hands its scheduler's other
processes to another thread).  The rest of the suite runs this way with
HYPERC_TEST_IN_PROCESS=1, and with HYPERC_TEST_SCHEDULERS=N for N."""
import json
import subprocess
import threading
import time

import pytest

from conftest import BIN, ISOLATED, addr, pid, thread_names

SCHED = ("--in-process", "--schedulers", "2")


def ps_json(node):
    r = subprocess.run([BIN, "ps", "--home", node.home, "--json",
                        "--busy-ms", "500"], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0, r.stderr
    return {p["id"]: p for p in json.loads(r.stdout)}


@pytest.mark.parametrize("n", ["1", "2"])
def test_others_answer_while_one_computes(node_factory, n):
    # slow computes for 5 s without a system call (C cannot be preempted):
    # after a few ms the watchdog hands its scheduler to another thread, so
    # a and b, whose fibers wait on that scheduler, keep answering; `ps`
    # sees slow busy in its handler, and the others not.
    node = node_factory(extra=("--in-process", "--schedulers", n))
    assert node.ask(pid("a"), f"ask {addr('b')} 5 w echo warm") == \
        "reply from test.os@b:tpkg:test.os ctx=w: warm"
    node.inject(pid("slow"), "compute 5000", non_block=True)
    sent = time.monotonic()
    time.sleep(0.2)
    t0 = time.monotonic()
    for i in range(20):
        assert node.ask(pid("a"), f"ask {addr('b')} 5 k{i} echo q{i}") == \
            f"reply from test.os@b:tpkg:test.os ctx=k{i}: q{i}"
        assert node.ask(pid("c"), f"echo c{i}") == f"c{i}"
    took = time.monotonic() - t0
    assert took < 3.0, took  # (a loaded machine's slowness; not 4.8 s)
    time.sleep(max(0, sent + 1.0 - time.monotonic()))  # past --busy-ms 500
    procs = ps_json(node)
    assert procs[pid("slow")]["busy"] is True, procs[pid("slow")]
    for other in ("a", "b", "c"):
        assert procs[pid(other)]["busy"] is False, procs[pid(other)]
    # and slow itself answers once done
    assert node.ask(pid("slow"), "echo done", timeout=15) == "done"


def test_two_compute_on_one_scheduler(node_factory):
    # two processes compute at once on --schedulers 1: each holds a thread,
    # the scheduler goes on on a third, the rest still answer
    node = node_factory(extra=("--in-process", "--schedulers", "1"))
    node.inject(pid("slow"), "compute 4000", non_block=True)
    node.inject(pid("c"), "compute 4000", non_block=True)
    time.sleep(0.3)
    t0 = time.monotonic()
    for i in range(10):
        assert node.ask(pid("a"), f"ask {addr('b')} 5 k{i} echo q{i}") == \
            f"reply from test.os@b:tpkg:test.os ctx=k{i}: q{i}"
    took = time.monotonic() - t0
    assert took < 2.5, took
    assert node.ask(pid("c"), "echo back", timeout=15) == "back"
    assert node.ask(pid("slow"), "echo back", timeout=15) == "back"
    node.stop()
    assert "hand-over" in node.log()


def test_timer_fires_while_the_only_scheduler_computes(node_factory):
    # a's timeout is in the heap of the one scheduler, held by slow
    node = node_factory(extra=("--in-process", "--schedulers", "1"))
    out = {}

    def ask():
        t0 = time.monotonic()
        out["r"] = node.ask(pid("a"), f"ask {addr('b')} 1 t sleep 2500",
                            timeout=10)
        out["took"] = time.monotonic() - t0

    th = threading.Thread(target=ask)
    th.start()
    time.sleep(0.2)
    node.inject(pid("slow"), "compute 3000", non_block=True)
    th.join()
    assert out["r"] == ("error timeout target=test.os@b:tpkg:test.os "
                        "ctx=t body=sleep 2500")
    assert 0.9 <= out["took"] < 2.4, out["took"]


def test_thread_per_process_with_schedulers_0(node_factory):
    node = node_factory(extra=("--in-process", "--schedulers", "0"))
    node.inject(pid("slow"), "compute 2000", non_block=True)
    time.sleep(0.2)
    assert node.ask(pid("a"), f"ask {addr('b')} 5 z echo hi") == \
        "reply from test.os@b:tpkg:test.os ctx=z: hi"
    node.stop()
    assert "hand-over" not in node.log()


def test_messages_between_fibers(node_factory):
    node = node_factory(extra=SCHED)
    assert node.ask(pid("a"), "echo hello") == "hello"
    for i in range(50):
        out = node.ask(pid("a"), f"ask {addr('b')} 5 k{i} echo hi{i}")
        assert out == f"reply from test.os@b:tpkg:test.os ctx=k{i}: hi{i}"
    out = node.ask(pid("a"), f"ask {addr('b')} 5 k forward {addr('c')} whoami")
    assert out == ("reply from test.os@c:tpkg:test.os ctx=k: "
                   "test.os@c:tpkg:test.os")


def test_timeout_while_the_target_holds_its_scheduler(node_factory):
    # slow sleeps in its handler (outside receive): its scheduler thread is
    # held, a's deadline is then fired by the other scheduler.
    node = node_factory(extra=SCHED)
    t0 = time.monotonic()
    out = node.ask(pid("a"), f"ask {addr('slow')} 1 myctx sleep 3000",
                   timeout=10)
    took = time.monotonic() - t0
    assert out == ("error timeout target=test.os@slow:tpkg:test.os "
                   "ctx=myctx body=sleep 3000")
    assert 0.9 <= took < 2.9, took


def test_others_answer_while_one_blocks(node_factory):
    node = node_factory(extra=SCHED)
    node.inject(pid("slow"), "sleep 3000", non_block=True)
    time.sleep(0.2)
    t0 = time.monotonic()
    assert node.ask(pid("a"), "echo still here") == "still here"
    assert node.ask(pid("b"), "echo me too") == "me too"
    assert time.monotonic() - t0 < 1.5


def test_shutdown_is_clean_with_fibers_waiting(node_factory):
    node = node_factory(extra=SCHED)
    node.inject(pid("a"), f"ask {addr('slow')} 30 z sleep 500", non_block=True)
    time.sleep(0.1)
    t0 = time.monotonic()
    node.stop()  # asserts exit status 0
    assert time.monotonic() - t0 < 5
    assert "still busy" not in node.log()


@pytest.mark.parametrize("bad", ["5000", "-1", "two"])
def test_bad_schedulers_value_is_refused(tmp_path, bad):
    r = subprocess.run([BIN, "run", "--home", str(tmp_path),
                        "--schedulers", bad], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 2 and "--schedulers needs 0..1024" in r.stderr


@pytest.mark.skipif(not ISOLATED, reason="the suite runs every node "
                    "in-process (HYPERC_TEST_IN_PROCESS)")
def test_scheduler_threads_start_with_the_first_fiber(node_factory):
    # every process isolated (the default): no scheduler thread, no
    # watchdog; in-process ones: a thread per scheduler and the watchdog
    node = node_factory(extra=("--schedulers", "2"))
    assert node.ask(pid("c"), "echo hi") == "hi"
    names = thread_names(node.proc.pid)
    assert "hc-sched" not in names and "hc-watchdog" not in names, names
    node = node_factory(extra=("--in-process", "--schedulers", "2"))
    assert node.ask(pid("c"), "echo hi") == "hi"
    names = thread_names(node.proc.pid)
    assert names.count("hc-sched") >= 2 and "hc-watchdog" in names, names
