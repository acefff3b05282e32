"""Every acknowledged save survives kill -9 of the node.

A node serves saving processes under load and is killed with SIGKILL in the
middle, again and again on the same home: the counter example
(EveryMessage, its saves grouped by the runtime and the state store, run
isolated and in-process by turns) incremented by several clients at once,
and a raw-ABI process (tproc) setting its state synchronously to
increasing numbers.  After each restart, what is stored must hold every
update a client had an answer for, and nothing no client sent.

HYPERC_KILL_ROUNDS sets the number of kills (default 6; `scripts/soak.sh`
style long runs: HYPERC_KILL_ROUNDS=100)."""
import os
import threading
import time

import pytest

from conftest import pid

COUNTER = pid("counter", "counter", "hyperc.os")
SETTER = pid("a")
ROUNDS = int(os.environ.get("HYPERC_KILL_ROUNDS", "6"))


class Load:
    """Clients calling the node until it dies (or `stop` is set)."""

    def __init__(self, node, counters=6):
        self.node = node
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.acked_count = 0  # the highest count the counter answered
        self.sent_incr = 0    # increments sent (answered or not)
        self.acked_set = 0    # the highest value tproc said it stored
        self.sent_set = 0     # the highest value sent to tproc
        self.threads = [threading.Thread(target=self.counter, daemon=True)
                        for _ in range(counters)]
        self.threads.append(threading.Thread(target=self.setter, daemon=True))

    def start(self, first_set):
        self.next_set = first_set
        for t in self.threads:
            t.start()

    def counter(self):
        while not self.stop.is_set():
            with self.lock:
                self.sent_incr += 1
            try:
                rep = self.node.inject(COUNTER, '{"Increment": 1}', timeout=5)
            except (OSError, ValueError):
                return  # the node is gone
            if not rep.get("ok"):
                continue  # (e.g. a restart under way)
            with self.lock:
                self.acked_count = max(self.acked_count, int(rep["body"]))

    def setter(self):
        v = self.next_set
        while not self.stop.is_set():
            with self.lock:
                self.sent_set = v
            try:
                rep = self.node.inject(SETTER, f"state-set {v}", timeout=5)
            except (OSError, ValueError):
                return
            if rep.get("ok") and rep["body"] == "ok":
                with self.lock:
                    self.acked_set = v
            v += 1

    def join(self):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=30)
            assert not t.is_alive(), "a client did not end"


@pytest.mark.parametrize("drain_bytes", [None, "2048"])
def test_acknowledged_saves_survive_kill9(node_factory, tmp_path,
                                          monkeypatch, drain_bytes):
    """drain_bytes: with 2048, the state module drains its log into SQLite
    every few saves, so kills also land in drains (rotation, commit,
    retire)."""
    if drain_bytes:
        monkeypatch.setenv("HYPERC_STATE_DRAIN_BYTES", drain_bytes)
    home = tmp_path / "home"
    acked_count = sent_incr = 0
    acked_set = sent_set = 0
    for r in range(ROUNDS + 1):
        extra = ("--in-process",) if r % 2 else ()
        n = node_factory(packages=("tpkg", "counter"), home=home, extra=extra)
        count = int(n.ask(COUNTER, '"GetCount"', timeout=15))
        # every increment answered before the kill is there, and nothing
        # that was never sent
        assert acked_count <= count <= sent_incr, (r, acked_count, count,
                                                    sent_incr)
        got = n.ask(SETTER, "state-get", timeout=15)
        stored = 0 if got == "(none)" else int(got)
        assert acked_set <= stored <= sent_set, (r, acked_set, stored,
                                                 sent_set)
        if r == ROUNDS:
            n.stop()
            break
        # the clients go on from what is stored
        acked_count, sent_incr = count, count
        load = Load(n)
        load.sent_incr = sent_incr
        load.acked_count = acked_count
        load.start(stored + 1)
        # kill once the load is well under way (a different moment each
        # round), while calls are in flight
        time.sleep(0.6 + 0.13 * (r % 5))
        moved = load.acked_count > acked_count
        n.proc.kill()
        n.proc.wait(timeout=30)
        load.join()
        assert moved, f"round {r}: no increment was answered before the kill"
        acked_count, sent_incr = load.acked_count, load.sent_incr
        acked_set, sent_set = max(load.acked_set, stored), load.sent_set
        if sent_set == 0:
            sent_set = stored


def test_kill9_with_saves_only_in_the_log(node_factory, tmp_path):
    """Saves answered just before a kill -9 are only in the state module's
    log (SQLite gets them when the log is drained: when a log file fills,
    or when the node stops): the next start replays them before any
    process runs, so the stored values are the last answered ones, and a
    cleared state stays cleared."""
    import sqlite3
    home = tmp_path / "home"
    n = node_factory(packages=("tpkg", "counter"), home=home)
    for i in range(5):
        assert int(n.ask(COUNTER, '{"Increment": 1}')) == i + 1
    assert n.ask(SETTER, "state-set v1") == "ok"
    assert n.ask(SETTER, "state-set v2") == "ok"
    assert n.ask(pid("c"), "state-set gone soon") == "ok"
    assert n.ask(pid("c"), "state-clear") == "ok"
    n.proc.kill()
    n.proc.wait(timeout=30)
    # the killed node holds no lock: SQLite does not have the saves yet
    db = sqlite3.connect(f"file:{home}/state/state.sqlite?mode=ro", uri=True)
    rows = dict(db.execute("SELECT process_id, value FROM state"))
    db.close()
    assert SETTER not in rows and COUNTER not in rows, rows
    n = node_factory(packages=("tpkg", "counter"), home=home,
                     extra=("--in-process",))
    assert n.ask(COUNTER, '"GetCount"', timeout=15) == "5"
    assert n.ask(SETTER, "state-get") == "v2"
    assert n.ask(pid("c"), "state-get") == "(none)"
    n.stop()
    # the stop drained the log: SQLite has them
    db = sqlite3.connect(f"file:{home}/state/state.sqlite?mode=ro", uri=True)
    rows = dict(db.execute("SELECT process_id, value FROM state"))
    db.close()
    assert bytes(rows[SETTER]) == b"v2"
    assert pid("c") not in rows
