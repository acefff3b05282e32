"""Task stack overflow: a process that runs off a coroutine stack hits the
guard page below it; the node reports it and stops that process alone
(on-exit applies), whether the overflow happened in the process's own code
or inside a host or library call it made (docs/architecture.md, "Task
stacks and overflow").  Other faults are not overflows and keep the default
behaviour.  Under the sanitizers nothing is set for this: ASan keeps
handle_segv=1 and the node's handler chains to ASan's for every fault that
is not in a guard."""
import resource

from conftest import ask_until, pid

# In-process processes (--in-process): how the node's thread stops an
# instance on the guard page.  A worker's overflow is in test_isolation.py.
IN = ("--in-process",)

HOG = pid("stackhog", "tstack")
REPORT = f"process {HOG}: task stack overflow (guard page hit)"


def overflow_and_check(node, command, where):
    assert node.ask(HOG, "ping") == "pong 1"
    assert node.ask(HOG, "deep 40") == "deep ok"  # deep use is fine
    node.inject(HOG, command, non_block=True)
    node.wait_log(REPORT)
    node.wait_log(f"{HOG} crashed; restarting in 0 ms")
    log = node.log()
    assert f"in {where} code" in log, log
    assert "no overflow?" not in log
    # The other processes never noticed.
    assert node.ask(pid("a"), "echo still here") == "still here"
    assert node.ask(pid("b"), "count") == "1"
    # A fresh instance of the process answers again.
    ask_until(node, HOG, "ping", "pong 1")
    return log


def test_overflow_in_process_code_stops_only_that_process(node_factory):
    n = node_factory(packages=("tpkg", "tstack"), extra=IN)
    overflow_and_check(n, "overflow", "the process's")
    n.stop()  # clean exit (and no leaks under the sanitizers)


def test_overflow_inside_a_host_call_lets_the_call_finish(node_factory):
    n = node_factory(packages=("tpkg", "tstack"), extra=IN)
    log = overflow_and_check(n, "overflow-host", "library or host")
    # The host call that ran into the guard (the node's logging, holding
    # its lock and stdio's) finished before the process was stopped, so
    # its line is there and logging still works.
    assert "stackhog: host call at the edge of the stack" in log
    assert log.index("host call at the edge") < log.index(REPORT)
    # Twice in a row: the restarted instance is stopped the same way.
    n.inject(HOG, "overflow-host", non_block=True)
    n.wait_log(REPORT, count=2)
    ask_until(n, HOG, "ping", "pong 1")
    n.stop()


def test_other_faults_are_not_taken_for_overflows(node_factory):
    # The node is meant to crash here: no core file from it.
    soft, hard = resource.getrlimit(resource.RLIMIT_CORE)
    resource.setrlimit(resource.RLIMIT_CORE, (0, hard))
    n = node_factory(packages=("tpkg", "tstack"), extra=IN)
    resource.setrlimit(resource.RLIMIT_CORE, (soft, hard))
    assert n.ask(HOG, "ping") == "pong 1"
    try:
        n.inject(HOG, "null", non_block=True)
    except ConnectionError:
        pass  # the node died before it answered the control socket
    try:
        rc = n.proc.wait(timeout=30)
    finally:
        n.stop(check=False)
    n._reader.join(timeout=10)  # all of stderr, the report included
    # The handler passed the fault on: the default action (or, under
    # AddressSanitizer, its report) ended the node.
    assert rc != 0
    assert REPORT not in n.log()
    # ... but not silently: which process crashed, and where, comes first
    said = f"process {HOG} crashed: SIGSEGV at 0x0"
    assert said in n.stderr(), n.stderr()
    assert said in n.log()
    after = n.stderr()[n.stderr().index(said):]
    assert f"run/{HOG}." in after  # frames in the instance's copy of the .so
    if "AddressSanitizer" in n.stderr():
        assert "SEGV on unknown address" in n.stderr()
