"""state:distro:sys through the ABI: set, get, clear, and surviving a node
restart."""
import pytest
from conftest import pid


def test_state_set_get_clear(node):
    assert node.ask(pid("a"), "state-get") == "(none)"
    assert node.ask(pid("a"), "state-set first value") == "ok"
    assert node.ask(pid("a"), "state-get") == "first value"
    assert node.ask(pid("c"), "state-get") == "(none)"  # one row per process
    assert node.ask(pid("a"), "state-clear") == "ok"
    assert node.ask(pid("a"), "state-get") == "(none)"


def test_state_survives_node_restart(node_factory, tmp_path):
    home = tmp_path / "persist"
    n = node_factory(home=home)
    assert n.ask(pid("a"), "state-set kept across boots") == "ok"
    n.stop()
    n2 = node_factory(home=home)
    assert n2.ask(pid("a"), "state-get") == "kept across boots"


def test_state_is_in_sqlite_wal(node):
    import sqlite3
    assert node.ask(pid("c"), "state-set xyz") == "ok"
    # The running node holds the database exclusively (no file locks per
    # commit); it is readable once the node has stopped.
    busy = sqlite3.connect(f"{node.home}/state/state.sqlite", timeout=0.1)
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        busy.execute("SELECT count(*) FROM state").fetchone()
    busy.close()
    node.stop()
    db = sqlite3.connect(f"{node.home}/state/state.sqlite")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    row = db.execute("SELECT value FROM state WHERE process_id=?",
                     ("c:tpkg:test.os",)).fetchone()
    assert bytes(row[0]) == b"xyz"
