"""In-process processes as fibers on scheduler threads (`--schedulers N`,
experimental): messages, timeouts and shutdown as with a thread each, and
what a process that blocks outside `receive` does to the others.  The rest
of the suite runs this way with HYPERC_TEST_IN_PROCESS=1
HYPERC_TEST_SCHEDULERS=N."""
import time

from conftest import addr, pid

SCHED = ("--in-process", "--schedulers", "2")


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
