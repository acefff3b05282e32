"""A flood at one slow process must not stall the others: its mailbox is
bounded, excess requests are refused at once and their sender is answered
Busy (the framework's error shape, saying the mailbox is full) rather than
left to time out, the kernel's refusal lines are rate-limited and counted,
and two other processes keep exchanging messages meanwhile."""
import json
import re
import threading
import time

from conftest import addr, pid


def test_flood_at_slow_process_does_not_stall_others(node_factory):
    n = node_factory(extra=["--mailbox-max", "16"])
    flood = {}

    def run_flood():
        # slow takes 100 ms a message: while the 500 requests are being
        # sent (tens of ms, more in a sanitizer build on a busy machine)
        # it serves a few, hence the 5 of slack below
        flood["out"] = n.ask(
            pid("a"), f"flood {addr('slow')} 500 20 sleep 100", timeout=60)

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



def test_a_hyperprocess_fanout_into_a_full_mailbox_is_told_busy(node_factory):
    """What a hyperprocess caller sees: a fan-out of 2,000 calls (the
    runtime's hp_rpc_fanout) at a process whose handler holds its thread.
    The calls past the mailbox's bound end at once as Rejected with the
    Busy reason, none as a timeout, and the kernel says so in a few lines,
    the rest counted."""
    n = node_factory(packages=("ttasks",), extra=["--mailbox-max", "16"])
    n.wait_log("init got 7", timeout=30)  # a's init called b and is done
    a, b = pid("a", "ttasks"), pid("b", "ttasks")
    # b holds its thread 3 s: what comes meanwhile queues, up to 16
    assert n.inject(b, '{"Block": 3000}', non_block=True)["ok"]
    calls = 2000
    t0 = time.monotonic()
    got = json.loads(n.ask(a, json.dumps(
        {"Fanout": [["b"] * calls, [0] * calls, 20]}), timeout=60))
    took = time.monotonic() - t0
    assert len(got) == calls
    busy_reason = (f"Rejected: Busy: the mailbox of {b} is full (16 requests "
                   "queued): this request was not delivered; try again later")
    busy = sum(1 for r in got if r == busy_reason)
    ok = sum(1 for r in got if re.fullmatch(r"Ok \d+", r))
    assert ok + busy == calls, [r for r in got
                                if r != busy_reason and not r.startswith("Ok")]
    # at most the bound was queued (Block itself may have been one of the
    # 16 when the fan-out came before b took it); the queued were served
    assert 15 <= ok <= 16, ok
    # every answer came once b was free, well before the calls' 20 s timeout
    assert took < 15, took

    def said():
        log = n.log()
        shown = log.count(f"-> test.os@{b} refused: target mailbox is full")
        hidden = sum(int(x) for x in re.findall(
            r"(\d+) more refusals not shown \(at most 10 lines a second\)",
            log))
        return shown, hidden
    # the count of the lines held back is said soon after the burst, with
    # no refusal after it and the node still running
    deadline = time.monotonic() + 10
    while sum(said()) < busy and time.monotonic() < deadline:
        time.sleep(0.1)
    shown, hidden = said()
    assert shown + hidden == busy, (shown, hidden, busy)
    assert 1 <= shown <= 10 * (took + 2), shown
    n.stop()
    assert said() == (shown, hidden)
