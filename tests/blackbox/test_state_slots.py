"""Isolated processes save into state slots (src/worker/slot.h) on a real
node: the saver hyperprocess (tests/procs/saver.c, EveryMessage) saves
into its slot, not by message; what the slot holds survives the worker's
crash and the node's kill -9 (taken into the log at the worker's end and
at the next start), reads through the state module see it, a save too big
for a slot goes by message in order with the slot's, and a slot whose
value does not check is passed over with a line in the log."""
import json
import os
import struct

from conftest import ask_until, pid

SAVER = pid("saver", "tslot", "test.os")
KEY = "saver:tslot:test.os"
ISOLATE = ("--isolate", "--restart-base-ms", "50")
SLOT_VALUE_MAX = 1 << 20
HEAD = 4096
HALF = 16 + SLOT_VALUE_MAX


def slot_path(home):
    return home / "state" / "slots" / KEY.encode().hex()


def slot_seq(home):
    """The slot's published sequence number (the u64 at 64)."""
    with open(slot_path(home), "rb") as f:
        f.seek(64)
        return struct.unpack("<Q", f.read(8))[0]


def count(node):
    return int(node.ask(SAVER, '"Count"', timeout=15))


def stored_count(node):
    return json.loads(node.stored_state(KEY))["state"]["count"]


def add(node, by=1):
    return int(node.ask(SAVER, json.dumps({"Add": by})))


def kill9(node):
    node.proc.kill()
    node.proc.wait(timeout=30)


def test_saves_go_into_the_slot_and_survive_a_crash_and_kill9(
        node_factory, tmp_path):
    home = tmp_path / "home"
    n = node_factory(packages=("tslot",), home=home, extra=ISOLATE)
    for i in range(1, 41):
        assert add(n) == i
    # the saves went into the slot (a sequence number each), and a read
    # through the state module sees the newest
    assert slot_seq(home) >= 40
    assert stored_count(n) == 40
    # the worker crashes: what its slot held is in the log when the
    # process starts again
    rep = n.inject(SAVER, '"Crash"', timeout=5)
    assert not rep.get("ok"), rep
    ask_until(n, SAVER, '"Count"', "40")
    for i in range(41, 66):
        assert add(n) == i
    # killed: only the slot holds the last 25 (the log has 40 at most)
    kill9(n)
    assert slot_path(home).exists()
    # taken at the node's start, before any process runs: an in-process
    # node, which makes no slots, has them too
    n = node_factory(packages=("tslot",), home=home, extra=("--in-process",))
    assert count(n) == 65
    assert not slot_path(home).exists()
    n.stop()
    n = node_factory(packages=("tslot",), home=home, extra=ISOLATE)
    assert count(n) == 65
    assert add(n) == 66
    n.stop()
    # the stop ended the worker, which took its slot into the log and away
    assert not slot_path(home).exists()
    n = node_factory(packages=("tslot",), home=home, extra=ISOLATE)
    assert count(n) == 66
    n.stop()


def test_a_save_too_big_for_the_slot_goes_by_message_in_order(
        node_factory, tmp_path):
    home = tmp_path / "home"
    big = SLOT_VALUE_MAX + 1000
    n = node_factory(packages=("tslot",), home=home, extra=ISOLATE)
    assert add(n) == 1
    assert n.ask(SAVER, json.dumps({"Pad": 10})) == "10"
    before = slot_seq(home)
    # too big for the slot: by message, after the slot's value (which the
    # node stores first)
    assert n.ask(SAVER, json.dumps({"Pad": big}), timeout=15) == str(big)
    assert slot_seq(home) == before
    kill9(n)
    n = node_factory(packages=("tslot",), home=home, extra=ISOLATE)
    assert n.ask(SAVER, '"PadLen"', timeout=15) == str(big)
    assert count(n) == 1
    # small again: into the slot, after the message's
    assert n.ask(SAVER, json.dumps({"Pad": 10}), timeout=15) == "10"
    assert add(n) == 2
    assert slot_seq(home) == 2
    kill9(n)
    n = node_factory(packages=("tslot",), home=home, extra=ISOLATE)
    assert count(n) == 2
    assert n.ask(SAVER, '"PadLen"') == "10"
    n.stop()


def test_a_slot_that_does_not_check_is_passed_over(node_factory, tmp_path):
    home = tmp_path / "home"
    n = node_factory(packages=("tslot",), home=home, extra=ISOLATE)
    for i in range(1, 6):
        assert add(n) == i
    n.stop()  # the log (then SQLite) has 5
    n = node_factory(packages=("tslot",), home=home, extra=ISOLATE)
    for i in range(6, 9):
        assert add(n) == i
    kill9(n)
    # the published value's CRC no longer checks
    seq = slot_seq(home)
    fd = os.open(slot_path(home), os.O_RDWR)
    try:
        at = HEAD + (seq & 1) * HALF + 12
        crc = os.pread(fd, 4, at)
        os.pwrite(fd, bytes(b ^ 0xff for b in crc), at)
    finally:
        os.close(fd)
    n = node_factory(packages=("tslot",), home=home, extra=ISOLATE)
    n.wait_log(f"state: {KEY}'s state slot: its value {seq} is not whole")
    # the log's newest instead, and the node serves on
    assert count(n) == 5
    assert add(n) == 6
    n.stop()
