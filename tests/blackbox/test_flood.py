"""A flood at one slow process must not stall the others: its mailbox is
bounded, excess requests are refused at once and their sender is answered
Busy (the framework's error shape, saying the mailbox is full) rather than
left to time out, the kernel's refusal lines are rate-limited and counted,
and two other processes keep exchanging messages meanwhile."""
import re
import threading
import time

from conftest import addr, pid


def test_flood_at_slow_process_does_not_stall_others(node_factory):
    n = node_factory(extra=["--mailbox-max", "16"])
    flood = {}

    def run_flood():
        flood["out"] = n.ask(pid("a"), f"flood {addr('slow')} 500 20 sleep 20",
                             timeout=60)

    t = threading.Thread(target=run_flood)
    t.start()
    n.wait_log("target mailbox is full")
    # While slow is swamped, b and c exchange 300 round trips.
    t0 = time.monotonic()
    assert n.ask(pid("b"), f"pingpong {addr('c')} 300", timeout=30) == "done 300"
    took = time.monotonic() - t0
    t.join(timeout=90)
    ok, errors, busy = [int(x.split("=")[1])
                        for x in flood["out"].split()[1:]]
    assert ok + errors + busy == 500
    assert errors == 0, flood["out"]  # none left to time out
    assert busy >= 500 - 17 - 5, flood["out"]  # at most the bound queued
    assert ok >= 16, flood["out"]  # the queued ones were served
    assert took < 10, took
    # slow is still alive and answers
    assert n.ask(pid("slow"), "echo alive") == "alive"
    # the refusals' lines: a few each second, the rest counted
    log = n.log()
    shown = log.count("refused: target mailbox is full; the sender is "
                      "answered Busy")
    assert 1 <= shown <= 10 * (took + 25), shown
    # the Busy answer says what happened
    assert ('first busy: {"HypercError":{"kind":"Busy","message":"the '
            f'mailbox of {pid("slow")} is full (16 requests queued): '
            'this request was not delivered; try again later"}}') in log, log
    n.stop()
    log = n.log()
    hidden = sum(int(x) for x in re.findall(
        r"(\d+) more refusals not shown \(at most 10 lines a second\)", log))
    shown = log.count("refused: target mailbox is full")
    assert shown + hidden == busy, (shown, hidden, busy)

