"""State versions, migration and EveryNSeconds, on a real node: a process
at state version 2 migrates a version-1 state, refuses what it cannot
migrate without touching it, and saves on a timer with no message
needed."""
import json
import sqlite3
import time

from conftest import pid

VERSIONED = pid("versioned", "tstate", "test.os")
KEY = "versioned:tstate:test.os"


def stored(node):
    """What is stored for KEY, asked through the running node."""
    return node.stored_state(KEY)


def seed(home, value):
    db = sqlite3.connect(str(home / "state" / "state.sqlite"))
    db.execute("UPDATE state SET value=? WHERE process_id=?", (value, KEY))
    db.commit()
    db.close()


def wait_stored(node, pred, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = stored(node)
        if v is not None and pred(json.loads(v)):
            return json.loads(v)
        time.sleep(0.1)
    raise AssertionError(f"state not saved as expected: {stored(node)!r}")


def test_every_n_seconds_saves_on_the_timer(node_factory, tmp_path):
    home = tmp_path / "home"
    n = node_factory(packages=("tstate",), home=home)
    assert n.ask(VERSIONED, '"Increment"') == "1"
    assert n.ask(VERSIONED, '"Increment"') == "2"
    # no further message: the timer alone saves it, in the versioned
    # envelope
    v = wait_stored(n, lambda s: s["state"]["count"] == 2)
    assert v == {"hyperc_state": 2, "state": {"count": 2, "origin": ""}}
    assert "EveryNSeconds" not in n.log()  # the timer worked: no fallback
    # and again later
    assert n.ask(VERSIONED, '"Increment"') == "3"
    wait_stored(n, lambda s: s["state"]["count"] == 3)


def test_skipped_field_is_not_saved_and_zero_at_start(node_factory,
                                                     tmp_path):
    """HP_SKIP (Rust's #[serde(skip)]): the field lives while the process
    runs, is never in the saved state, and is zero after a restart, even
    when a stored state carries a value under its name."""
    home = tmp_path / "home"
    n = node_factory(packages=("tstate",), home=home)
    assert n.ask(VERSIONED, '"Increment"') == "1"
    assert n.ask(VERSIONED, '"Increment"') == "2"
    assert n.ask(VERSIONED, '"Calls"') == "2"
    v = wait_stored(n, lambda s: s["state"]["count"] == 2)
    assert v == {"hyperc_state": 2, "state": {"count": 2, "origin": ""}}
    # the save left the live field alone
    assert n.ask(VERSIONED, '"Calls"') == "2"
    n.stop()
    n2 = node_factory(packages=("tstate",), home=home)
    assert n2.ask(VERSIONED, '"Calls"') == "0"
    assert n2.ask(VERSIONED, '"Increment"') == "3"
    assert n2.ask(VERSIONED, '"Calls"') == "1"
    n2.stop()
    seed(home, b'{"hyperc_state":2,"state":{"count":7,"origin":"x",'
         b'"calls":9}}')
    n3 = node_factory(packages=("tstate",), home=home)
    assert n3.ask(VERSIONED, '"Calls"') == "0"
    assert json.loads(n3.ask(VERSIONED, '"Origin"')) == "x"
    assert n3.ask(VERSIONED, '"Increment"') == "8"


def test_old_version_is_migrated_and_saved(node_factory, tmp_path):
    home = tmp_path / "home"
    n = node_factory(packages=("tstate",), home=home)
    n.ask(VERSIONED, '"Increment"')
    wait_stored(n, lambda s: True)
    n.stop()
    seed(home, b'{"hyperc_state":1,"state":{"n":41}}')
    n2 = node_factory(packages=("tstate",), home=home)
    n2.wait_log("state migrated from version 1 to 2")
    assert json.loads(n2.ask(VERSIONED, '"Origin"')) == "migrated from v1 (n=41)"
    assert n2.ask(VERSIONED, '"Increment"') == "42"
    # the migrated state was saved at once, at the new version
    v = wait_stored(n2, lambda s: s["state"]["count"] >= 41)
    assert v["hyperc_state"] == 2


def test_unmigratable_state_is_kept_and_process_refuses(node_factory,
                                                        tmp_path):
    home = tmp_path / "home"
    n = node_factory(packages=("tstate",), home=home)
    n.ask(VERSIONED, '"Increment"')
    wait_stored(n, lambda s: True)
    n.stop()
    bad = b'{"hyperc_state":7,"state":{"n":1}}'
    seed(home, bad)
    n2 = node_factory(packages=("tstate",), home=home)
    n2.wait_log("the stored state has version 7; this build has 2; "
                "migration failed: no migration from version 7; not starting")
    rep = n2.inject(VERSIONED, '"Increment"', timeout=2)
    assert rep["ok"] is False
    assert stored(n2) == bad  # never overwritten
