"""Tasks: every handler and init is a coroutine that may wait while the
process goes on serving; each wait ends exactly once (reply, timeout,
offline, cancel); replies go to the right callers; context survives the
wait.  Package ttasks: instances a, b, c of tests/procs/tasker.c and
`limited` (two tasks at most)."""
import json
import threading
import time

from conftest import ISOLATED, pid

A, B, C = (pid(n, "ttasks") for n in ("a", "b", "c"))
LIMITED = pid("limited", "ttasks")


def started(n):
    n.wait_log("init got 7", timeout=30)
    return n


def ask_json(n, proc, body, timeout=10):
    return json.loads(n.ask(proc, json.dumps(body), timeout=timeout))


def test_init_waits_while_messages_are_served(node_factory):
    # (`hyperc run` says ready once init is done: not waited for here)
    n = node_factory(packages=("ttasks",), wait_ready=False)
    # a's init waits 5 s for b; a serves requests meanwhile
    n.wait_log("test.os running")
    assert n.ask(A, '"Ping"', timeout=10) == "1"
    assert "init got 7" not in n.log()  # init is still waiting
    started(n)
    assert n.ask(A, '"InitResult"') == "7"


def test_ready_once_every_init_is_done(node_factory):
    # a's init waits 5 s for b: `hyperc run` says ready after it
    n = node_factory(packages=("ttasks",))
    assert "init got 7" in n.log()
    procs = {p["id"]: p for p in n.call({"op": "ps"})["processes"]}
    assert procs[A]["started"] is True


def test_a_looping_task_keeps_its_arena_flat(node_factory):
    n = started(node_factory(packages=("ttasks",)))
    # back to a mark after each call: 300 calls hold what 200 did
    few = ask_json(n, A, {"CallLoop": ["b", 200, True, True]})
    many = ask_json(n, A, {"CallLoop": ["b", 300, True, True]})
    assert few > 0 and many == few
    # without it, every reply of a string stays until the task ends
    grows = ask_json(n, A, {"CallLoop": ["b", 300, False, True]})
    assert grows > few + 100 * 16, (few, grows)
    # a stub whose value holds nothing in the arena (Ping's number) gives
    # the reply back itself
    few = ask_json(n, A, {"CallLoop": ["b", 200, False, False]})
    many = ask_json(n, A, {"CallLoop": ["b", 300, False, False]})
    assert many == few, (few, many)


def test_two_waits_replied_in_reverse_order(node_factory):
    n = started(node_factory(packages=("ttasks",)))
    out = {}

    def call(tag, ms):
        out[tag] = ask_json(n, A, {"SleepThen": [ms, tag]})
        out[f"t{tag}"] = time.monotonic()

    slow = threading.Thread(target=call, args=(1, 800))
    fast = threading.Thread(target=call, args=(2, 100))
    slow.start()
    time.sleep(0.1)
    fast.start()
    slow.join()
    fast.join()
    # each caller got its own answer, the later request first
    assert out[1] == 1 and out[2] == 2
    assert out["t2"] < out["t1"]


def test_timeout_and_late_reply(node_factory):
    n = started(node_factory(packages=("ttasks",)))
    # b answers after 2.5 s; a waits 1 s
    r = ask_json(n, A, {"Ask": ["b", 2500, 5, 1]})
    assert r == "Timeout: no reply from test.os@b:ttasks:test.os within 1 s"
    # the late reply arrives and is dropped; a goes on serving
    time.sleep(2)
    assert ask_json(n, A, {"Ask": ["b", 10, 6, 5]}) == "Ok 6"
    # no such process: at once; another node: offline
    assert ask_json(n, A, {"Ask": ["nobody", 10, 1, 5]}).startswith(
        "Timeout: no reply from test.os@nobody:ttasks:test.os")


def test_nested_calls(node_factory):
    n = started(node_factory(packages=("ttasks",)))
    # a -> b -> c -> a: each hop waits on the next, a serves the last hop
    # while its first task waits
    assert ask_json(n, A, {"Chain": [["b", "c", "a"], 10]}) == 13


def test_fanout_each_target_its_own_outcome(node_factory):
    n = started(node_factory(packages=("ttasks",)))
    r = ask_json(n, A, {"Fanout": [["b", "c", "b", "nobody"],
                                   [100, 3000, 10, 0], 1]}, timeout=20)
    assert r[0] == "Ok 0" and r[2] == "Ok 2"
    assert r[1] == "Timeout: no reply from test.os@c:ttasks:test.os"
    assert r[3].startswith("Timeout: no reply from test.os@nobody")


def test_callers_context_comes_back(node_factory):
    n = started(node_factory(packages=("ttasks",)))
    assert ask_json(n, A, {"Contexts": "b"}) == ["0 first", "1 second"]


def test_cancel_a_wait(node_factory):
    n = started(node_factory(packages=("ttasks",)))
    t0 = time.monotonic()
    assert ask_json(n, A, {"CancelSleep": 5000}) == "cancelled Cancelled"
    assert time.monotonic() - t0 < 4  # did not sleep the 5 s
    # the timer's reply comes later and is dropped; a is fine
    assert n.ask(A, '"Ping"') == "1"


def test_context_is_right_after_the_wait(node_factory):
    n = started(node_factory(packages=("ttasks",)))
    res = {}

    def who():
        res["who"] = ask_json(n, A, {"WhoAfter": 800})

    t = threading.Thread(target=who)
    t.start()
    time.sleep(0.2)
    # meanwhile b calls a (a serves b's request while WhoAfter waits)
    assert ask_json(n, B, {"Ask": ["a", 10, 3, 5]}) == "Ok 3"
    t.join()
    me = "test.os@terminal:terminal:sys"
    assert res["who"] == f"{me}|{me}"


def test_ten_thousand_waiting_tasks(node_factory):
    n = started(node_factory(packages=("ttasks",)))
    assert n.ask(A, '{"Flood": [10000, 2000]}', timeout=120) == "10000"
    n.wait_log("flood: 10000 started, 10000 slept")
    assert n.ask(A, '"Ping"') == "1"


def test_task_limit_gives_busy(node_factory):
    n = started(node_factory(packages=("ttasks",)))
    for _ in range(2):
        rep = n.inject(LIMITED, '{"Nap": 6000}', non_block=True)
        assert rep["ok"], rep
    time.sleep(0.3)
    err = json.loads(n.ask(LIMITED, '{"Nap": 1}'))["HypercError"]
    assert err["kind"] == "Busy"
    assert "too many tasks (limit 2)" in err["message"]
    # once a nap is done, there is room again: the first call let in is the
    # third nap to end (both long naps done) or, when the two long naps end
    # more than a poll apart, the second (one of them still running)
    deadline = time.monotonic() + 20
    rep = None
    while time.monotonic() < deadline:
        rep = json.loads(n.ask(LIMITED, '{"Nap": 1}'))
        if not (isinstance(rep, dict) and "HypercError" in rep):
            break
        assert rep["HypercError"]["kind"] == "Busy", rep
        time.sleep(0.5)
    assert rep in (2, 3), rep


def test_task_stack_overflow_stops_only_that_process(node_factory):
    n = started(node_factory(packages=("ttasks",)))
    rep = n.inject(LIMITED, '{"Overflow": 1000000}', timeout=5)
    assert rep["ok"] is False
    # in the node's thread, or in a worker of its own (--isolate)
    n.wait_log("process limited:ttasks:test.os crashed: task stack overflow"
               if ISOLATED else
               "limited:ttasks:test.os: task stack overflow (guard page hit)")
    assert n.ask(A, '"Ping"') == "1"  # the others are fine
