"""Process lifecycle on a real node: on-exit none / restart / requests,
restart backoff and give-up, spawn, clean shutdown."""
import re
import time

from conftest import addr, pid

FAST_RESTART = ["--restart-base-ms", "100", "--restart-give-up", "4",
                "--restart-window-ms", "20000"]


def test_restart_backoff_then_give_up(node_factory):
    n = node_factory(packages=("tcrash",), extra=FAST_RESTART)
    n.wait_log("giving up", timeout=15)
    log = n.log()
    starts = re.findall(r"crasher start #(\d+)", log)
    assert starts == ["1", "2", "3", "4"], log
    delays = [int(d) for d in re.findall(
        r"crasher:tcrash:test.os exited; restarting in (\d+) ms", log)]
    assert delays == [0, 100, 200], log  # immediate, then base * 2^(n-1)
    assert "exited 4 times within 20000 ms: giving up" in log
    # Gone for good: sends to it fail at once.
    time.sleep(0.5)
    assert log.count("crasher start") == n.log().count("crasher start")
    ps = n.call({"op": "ps"})
    assert all(p["id"] != "crasher:tcrash:test.os" for p in ps["processes"])


def test_backoff_spacing_is_real(node_factory):
    n = node_factory(packages=("tcrash",), extra=FAST_RESTART)
    n.wait_log("giving up", timeout=15)
    # Restarts 3 and 4 came after 100 ms and 200 ms waits: the whole run
    # took at least 300 ms (timestamps in the log have 1 s resolution, so
    # measure from the test side instead).
    t0 = time.monotonic()
    n2 = node_factory(packages=("tcrash",), extra=FAST_RESTART)
    n2.wait_log("giving up", timeout=15)
    assert time.monotonic() - t0 >= 0.3


def test_exit_with_restart_gives_a_fresh_instance(node):
    assert node.ask(pid("a"), "count") == "1"
    assert node.ask(pid("a"), "count") == "2"
    assert node.ask(pid("a"), "exit") == "bye"
    node.wait_log("a:tpkg:test.os exited; restarting in 0 ms")
    deadline = time.monotonic() + 5
    while True:
        rep = node.inject(pid("a"), "count")
        if rep.get("ok"):
            break
        assert time.monotonic() < deadline, rep
        time.sleep(0.05)
    assert rep["body"] == "1"  # a new instance: its globals start afresh


def test_exit_with_none_removes_process_and_its_grants(node):
    assert node.ask(pid("b"), f"ask {addr('private')} 5 x echo hi").endswith(": hi")
    assert node.ask(pid("private"), "exit") == "bye"
    time.sleep(0.3)
    out = node.ask(pid("b"), f"ask {addr('private')} 5 y echo hi")
    assert out.startswith("error timeout target=test.os@private:tpkg:test.os")


def test_exit_with_requests_sends_them(node):
    assert node.ask(pid("notifier"), "exit") == "bye"
    node.wait_log("note: notifier exited")
    assert node.ask(pid("a"), "count") == "2"  # the note, then this


def test_spawn_child_and_errors(node):
    out = node.ask(pid("a"), "spawn kid tproc.so")
    assert out == "spawned kid:tpkg:test.os"
    assert node.ask(pid("kid"), "whoami") == "test.os@kid:tpkg:test.os"
    assert node.ask(pid("a"), "spawn kid tproc.so") == "spawn error name-taken"
    assert node.ask(pid("a"), "spawn other nothing.so") == "spawn error no-file-at-path"
    # parent and child may message each other
    assert node.ask(pid("a"), f"ask {addr('kid')} 5 k echo hey").endswith(": hey")


def test_shutdown_is_clean_with_processes_blocked(node):
    # a is blocked waiting for slow's answer while slow sleeps.
    node.inject(pid("a"), f"ask {addr('slow')} 30 z sleep 500", non_block=True)
    time.sleep(0.1)
    t0 = time.monotonic()
    node.stop()  # asserts exit status 0 (sanitizers report leaks as non-zero)
    assert time.monotonic() - t0 < 5
    assert "shutting down" in node.log()


def test_shutdown_ends_idle_control_connections(node):
    import socket
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(f"{node.home}/node.sock")  # connected, never says anything
    t0 = time.monotonic()
    node.stop()
    assert time.monotonic() - t0 < 2.5
    assert "still busy" not in node.log()
    s.close()


def test_what_a_process_sent_before_it_ended_is_carried_out(node_factory):
    """A process fires requests and ends at once: every request it made
    reaches its target, however late the node reads them (an isolated
    process's calls may still wait in its ring when its end is seen)."""
    n = node_factory(extra=["--mailbox-max", "100000", "--restart-base-ms",
                            "1", "--restart-window-ms", "1"])
    sprays = 4000
    for i in range(40):
        before = int(n.ask(pid("b"), "count"))
        n.inject(pid("a"), f"spray {addr('b')} {sprays} count", non_block=True)
        n.wait_log("tproc test.os@a:tpkg:test.os up", timeout=30, count=i + 2)
        got = int(n.ask(pid("b"), "count", timeout=30)) - before - 1
        assert got == sprays, f"round {i}: {got} of {sprays} arrived"
    # each time it ended as it did, not as a crash
    assert n.log().count("a:tpkg:test.os exited; restarting") == 40, n.log()
    assert "crashed" not in n.log()


def test_stop_leaves_an_in_process_loop_and_exits_cleanly(node_factory):
    # In the node's own address space a loop cannot be stopped: after the
    # grace period the node says so and exits, keeping its memory for the
    # thread left behind (nothing freed under it; a sanitizer build exits
    # non-zero on a leak or a use after free).
    hog = pid("stackhog", "tstack")
    n = node_factory(packages=("tpkg", "tstack"), extra=("--in-process",))
    n.inject(hog, "spin", non_block=True)
    time.sleep(0.3)
    assert n.ask(pid("a"), "echo beside") == "beside"
    t0 = time.monotonic()
    n.stop()  # asserts exit status 0
    took = time.monotonic() - t0
    assert 4.5 < took < 15, f"stopped after {took:.1f} s"
    assert re.search(r"\d+ thread\(s\) still busy after 5 s \(in their own "
                     r"code: stackhog:tstack:test\.os\); leaving them",
                     n.log()), n.log()
