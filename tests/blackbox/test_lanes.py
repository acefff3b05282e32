"""Lanes between isolated workers (docs/lane-design.md), on unless the node
runs with HYPERC_LANES=0: the node gives two isolated processes that keep
messaging each other a lane — a shared memory only their two workers map —
and takes it back when either instance ends, when a dropped capability
leaves the pair without the permission the lane was opened with, or when the
node's log level goes to 3.  Requests with and without a response, and their
answers, go by lane; these tests check who maps what and when, the order of
what goes by lane and by node, and every end of an instance with messages in
a lane.  The fixture sets HYPERC_LANES=1 so that they hold whatever the
default.

With HYPERC_PACKAGES naming the wasm32 build's packages, tpkg's processes
are components, each run by a wasm host whose addon maps lanes as a worker
does (docs/wasm-lanes.md): the same tests then hold between two components,
but those that need hyperc-worker itself (its test hook, a fake worker in
its place) are skipped."""
import ctypes
import errno
import os
import re
import signal
import threading
import time

import pytest

from conftest import blob_line, ISOLATED, NODE, PACKAGES, pid

A, B, C, PRIVATE = pid("a"), pid("b"), pid("c"), pid("private")
ISOLATE = ("--isolate", "--restart-base-ms", "50")
LANE_MAP = "hyperc-lane"


def futex_waitv_exists():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    rc = libc.syscall(ctypes.c_long(449), None, 0, 0, None, 0)
    return rc == -1 and ctypes.get_errno() == errno.EINVAL


pytestmark = pytest.mark.skipif(
    not ISOLATED or not futex_waitv_exists(),
    reason="lanes are between isolated workers, which need futex_waitv")

# tpkg's processes are components (the wasm32 build's packages)
COMPONENTS = os.path.exists(os.path.join(PACKAGES, "tpkg", "pkg",
                                         "tproc.wasm"))
native_only = pytest.mark.skipif(
    COMPONENTS, reason="needs hyperc-worker itself (tpkg is components)")


@pytest.fixture
def lanes(node_factory, monkeypatch):
    monkeypatch.setenv("HYPERC_LANES", "1")
    return node_factory(packages=("tpkg",), extra=ISOLATE)


# A way of a lane holds at most max(16, mailbox-max / 16) unread requests
# (docs/lane-design.md §6), then its writer sends by node: the tests that
# check that a burst of several hundred goes by lane, whatever the reader's
# pace, give the mailboxes room for such a quota (1,024).
ROOMY = ISOLATE + ("--mailbox-max", "16384")


@pytest.fixture
def roomy_lanes(node_factory, monkeypatch):
    monkeypatch.setenv("HYPERC_LANES", "1")
    return node_factory(packages=("tpkg",), extra=ROOMY)


def ps(node):
    return {p["id"]: p for p in node.call({"op": "ps"})["processes"]}


def wait_for(what, timeout=20):
    """Poll what() until it returns something true; that value."""
    deadline = time.monotonic() + timeout
    while True:
        v = what()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what.__doc__}")
        time.sleep(0.05)


def open_lane(node, x, y):
    """The lane between x and y once both workers map it, as x's ps shows
    it."""
    def both_mapped():
        """both workers map the lane"""
        procs = ps(node)
        mine = [lane for lane in procs[x]["lanes"]
                if lane["peer"] == y and lane["state"] == "open"]
        theirs = [lane for lane in procs[y]["lanes"]
                  if lane["peer"] == x and lane["state"] == "open"]
        if mine and theirs and mine[0]["mapped"] and theirs[0]["mapped"]:
            assert mine[0]["lane"] == theirs[0]["lane"], procs
            return mine[0]
        return None
    return wait_for(both_mapped)


def worker(node, x):
    return ps(node)[x]["worker_pid"]


def maps_lane(worker_pid):
    with open(f"/proc/{worker_pid}/maps") as f:
        return LANE_MAP in f.read()


def lanes_gone(node, *who):
    """Wait until none of `who` has a lane any more, and their workers map
    none."""
    def gone():
        """the lanes are gone and unmapped"""
        procs = ps(node)
        if any(procs[x]["lanes"] for x in who):
            return False
        return not any(maps_lane(procs[x]["worker_pid"]) for x in who
                       if procs[x]["worker_pid"])
    return wait_for(gone)


def test_a_pair_that_keeps_talking_gets_a_lane(lanes):
    assert lanes.ask(C, "echo c is up") == "c is up"
    assert lanes.ask(A, f"pingpong our@{B} 40", timeout=30) == "done 40"
    lane = open_lane(lanes, A, B)
    assert lane["send"] and lane["receive"], lane  # both are public
    wa, wb, wc = worker(lanes, A), worker(lanes, B), worker(lanes, C)
    assert maps_lane(wa) and maps_lane(wb)
    # only the pair maps it: a third worker has no lane at all
    assert not maps_lane(wc)
    assert ps(lanes)[C]["lanes"] == []
    if not COMPONENTS:
        # LANE_OPEN told each worker its peer is no wasm host (a wasm
        # host's turn would let the spin budget grow to it)
        assert lanes.ask(A, f"lanehost our@{B}") == "peer_host 0"
        assert lanes.ask(B, f"lanehost our@{A}") == "peer_host 0"
        assert lanes.ask(C, f"lanehost our@{A}") == \
            "lanehost: no lane to that peer"
    # each memfd is closed once mapped (the link's fd 3 too): a worker's
    # descriptors stay its standard streams, its lane socket (4) and the
    # file of its CPU watch (its own thread's schedstat, read-only); a wasm
    # host has Node.js's own besides, but no memfd either
    for w in (wa, wb, wc):
        fds = sorted(int(fd) for fd in os.listdir(f"/proc/{w}/fd"))
        if not COMPONENTS:
            rest = [os.readlink(f"/proc/{w}/fd/{fd}") for fd in fds
                    if fd not in (0, 1, 2, 4)]
            assert [0, 1, 2, 4] == [fd for fd in fds if fd <= 4], (w, fds)
            assert len(rest) <= 1, (w, rest)
            assert all(re.fullmatch(rf"/proc/{w}/task/\d+/schedstat", x)
                       for x in rest), (w, rest)
        else:
            # (Node.js may reuse fd 3 once the link's memfd is closed)
            assert 4 in fds, (w, fds)
            assert os.readlink(f"/proc/{w}/fd/4").startswith("socket:")
            links = [os.readlink(f"/proc/{w}/fd/{fd}") for fd in fds
                     if os.path.exists(f"/proc/{w}/fd/{fd}")]
            assert not [x for x in links if x.startswith("/memfd:")], links
    # messages still go (through the node), and the lane stays one
    assert lanes.ask(B, f"pingpong our@{A} 40", timeout=30) == "done 40"
    assert [x["lane"] for x in ps(lanes)[A]["lanes"]] == [lane["lane"]]
    assert "lane %d opened between" % lane["lane"] in lanes.log()


def test_a_crash_closes_the_lane_and_the_survivor_unmaps_it(lanes):
    assert lanes.ask(A, f"pingpong our@{B} 40", timeout=30) == "done 40"
    open_lane(lanes, A, B)
    wb = worker(lanes, B)
    os.kill(worker(lanes, A), signal.SIGSEGV)
    lanes.wait_log(f"{A} crashed; restarting in")
    # B's worker is told and unmaps it; the record goes
    lanes_gone(lanes, B)
    assert worker(lanes, B) == wb  # B itself never noticed
    # A's next instance talks to B again; a new lane comes for the new pair
    wait_for(lambda: lanes.ask(A, "echo back") == "back")
    assert lanes.ask(A, f"pingpong our@{B} 40", timeout=30) == "done 40"
    open_lane(lanes, A, B)


def test_an_instance_that_ends_by_itself_closes_its_lanes(lanes):
    assert lanes.ask(B, f"pingpong our@{A} 40", timeout=30) == "done 40"
    open_lane(lanes, A, B)
    assert lanes.ask(B, "exit") == "bye"
    lanes_gone(lanes, A)


def test_a_dropped_capability_closes_the_lane_it_permitted(lanes):
    # b holds messaging for the private process (its manifest asks for it);
    # the private one may answer b, which is public
    assert lanes.ask(B, f"pingpong our@{PRIVATE} 40", timeout=30) == \
        "done 40"
    lane = open_lane(lanes, B, PRIVATE)
    assert lane["send"] and lane["receive"], lane
    # dropping another capability changes nothing
    assert lanes.ask(B, f"drop-cap {NODE}@{A} \"messaging\"") == "dropped"
    time.sleep(0.3)
    assert [x["lane"] for x in ps(lanes)[B]["lanes"]] == [lane["lane"]]
    assert lanes.ask(B, f"drop-cap {NODE}@{PRIVATE} \"messaging\"") == \
        "dropped"
    assert f"{NODE}@{PRIVATE}" not in lanes.ask(B, "caps")
    lanes_gone(lanes, B, PRIVATE)
    # and b can no longer reach it
    rep = lanes.ask(B, f"ask our@{PRIVATE} 2 x echo hi", timeout=10)
    assert rep.startswith("error"), rep


def test_log_level_3_closes_every_lane(lanes):
    assert lanes.ask(A, f"pingpong our@{B} 40", timeout=30) == "done 40"
    assert lanes.ask(C, f"pingpong our@{B} 40", timeout=30) == "done 40"
    open_lane(lanes, A, B)
    open_lane(lanes, C, B)
    assert lanes.call({"op": "verbosity", "level": 3}).get("ok")
    lanes_gone(lanes, A, B, C)
    # none opens while every routed message is printed
    assert lanes.ask(A, f"pingpong our@{B} 40", timeout=30) == "done 40"
    time.sleep(0.3)
    assert ps(lanes)[A]["lanes"] == []


def test_lanes_are_on_by_default(node_factory, monkeypatch):
    monkeypatch.delenv("HYPERC_LANES", raising=False)
    n = node_factory(packages=("tpkg",), extra=ISOLATE)
    assert n.ask(A, f"pingpong our@{B} 40", timeout=30) == "done 40"
    open_lane(n, A, B)


def test_no_lanes_with_lanes_0(node_factory, monkeypatch):
    monkeypatch.setenv("HYPERC_LANES", "0")
    n = node_factory(packages=("tpkg",), extra=ISOLATE)
    assert n.ask(A, f"pingpong our@{B} 40", timeout=30) == "done 40"
    time.sleep(0.3)
    assert ps(n)[A]["lanes"] == [] and ps(n)[B]["lanes"] == []
    assert not maps_lane(worker(n, A))


@pytest.mark.skipif(not COMPONENTS, reason="tpkg is native")
def test_no_lanes_for_a_wasm_host_over_a_socket(node_factory, monkeypatch):
    """A wasm host on a socket (no addon, or HYPERC_WASM_LINK=socket) has
    no binding and maps nothing: it asks for no lane and gets none."""
    monkeypatch.setenv("HYPERC_LANES", "1")
    monkeypatch.setenv("HYPERC_WASM_RUNTIME", "v8")  # the wasm host
    monkeypatch.setenv("HYPERC_WASM_LINK", "socket")
    n = node_factory(packages=("tpkg",), extra=ISOLATE)
    assert n.ask(A, f"pingpong our@{B} 40", timeout=30) == "done 40"
    time.sleep(0.3)
    assert ps(n)[A]["lanes"] == [] and ps(n)[B]["lanes"] == []
    assert not maps_lane(worker(n, A))


SLOW = pid("slow")


def test_a_worker_with_a_lane_gets_its_timeouts_at_their_deadline(lanes):
    # a worker that has a lane sends RECEIVE only to take what the node
    # delivered ahead: a timeout must come to it unasked, at its deadline
    assert lanes.ask(A, f"pingpong our@{B} 40", timeout=30) == "done 40"
    open_lane(lanes, A, B)
    t0 = time.monotonic()
    rep = lanes.ask(A, f"ask our@{SLOW} 1 t compute 3000", timeout=20)
    waited = time.monotonic() - t0
    assert rep.startswith("error timeout") and "ctx=t" in rep, rep
    assert waited < 2.8, waited


def test_forwarding_with_a_lane(lanes):
    assert lanes.ask(A, f"pingpong our@{B} 40", timeout=30) == "done 40"
    open_lane(lanes, A, B)
    # b passes a's request on with inherit; c answers a directly
    rep = lanes.ask(A, f"ask our@{B} 5 x forward our@{C} echo hi",
                    timeout=20)
    assert rep == f"reply from {NODE}@{C} ctx=x: hi", rep


def test_reinstalling_stops_workers_with_lanes(lanes):
    from conftest import PACKAGES
    assert lanes.ask(A, f"pingpong our@{B} 40", timeout=30) == "done 40"
    open_lane(lanes, A, B)
    starts = ps(lanes)[A]["starts"]
    t0 = time.monotonic()
    rep = lanes.call({"op": "install",
                      "dir": os.path.abspath(os.path.join(PACKAGES, "tpkg"))})
    assert rep.get("ok"), rep
    wait_for(lambda: ps(lanes)[A]["starts"] > starts
             and ps(lanes)[A]["started"])
    assert time.monotonic() - t0 < 10
    assert lanes.ask(A, "echo again") == "again"


def lane_to(node, x, y):
    return [lane for lane in ps(node)[x]["lanes"] if lane["peer"] == y][0]


def test_the_lane_says_what_the_peer_has_read(lanes):
    """What a sender needs before it may switch from the node to the lane
    (docs/lane-design.md §3a): the number its last message by node got in
    the peer's mailbox, and the newest the peer's worker has read."""
    assert lanes.ask(A, f"pingpong our@{B} 40", timeout=30) == "done 40"
    open_lane(lanes, A, B)
    # answers a send-and-await takes are not counted (it takes them out of
    # the mailbox's order); what receive takes is
    for x, y in ((A, B), (B, A)):
        assert lanes.ask(x, f"ask our@{y} 5 c echo hi") == \
            f"reply from {NODE}@{y} ctx=c: hi"

    def caught_up():
        """each worker has read what the other sent it"""
        ab, ba = lane_to(lanes, A, B), lane_to(lanes, B, A)
        ok = all(x["sent_seq"] > 0 and x["peer_read_seq"] >= x["sent_seq"]
                 for x in (ab, ba))
        return ok and ab
    before = wait_for(caught_up)
    # b's guest computes: what a sends it meanwhile by node (a capability
    # attached to each) waits unread
    lanes.inject(B, "compute 1500", non_block=True)
    time.sleep(0.3)
    assert lanes.ask(A, f"notes our@{B} 2 1") == "sent 2"
    busy = lane_to(lanes, A, B)
    assert busy["sent_seq"] >= before["sent_seq"] + 2, (before, busy)
    assert busy["peer_read_seq"] < busy["sent_seq"], busy
    # and once b is back, it has read them
    wait_for(caught_up)
    assert lane_to(lanes, A, B)["sent_seq"] == busy["sent_seq"]


def notes_seen(node, who, prefix="note: n-"):
    """The K of each "note n-K" `who` printed, in the log's order."""
    out = []
    for line in node.log().splitlines():
        if f"] {who}: {prefix}" in line:
            out.append(int(line.rsplit("-", 1)[1]))
    return out


def test_notes_go_by_lane_in_order(roomy_lanes):
    lanes = roomy_lanes
    assert lanes.ask(A, f"pingpong our@{B} 40", timeout=30) == "done 40"
    open_lane(lanes, A, B)
    before = lane_to(lanes, A, B)["sent_seq"]
    assert lanes.ask(A, f"notes our@{B} 300 0", timeout=30) == "sent 300"
    wait_for(lambda: len(notes_seen(lanes, B)) >= 300)
    assert notes_seen(lanes, B) == list(range(1, 301))
    # they went by lane: none reached b's mailbox
    assert lane_to(lanes, A, B)["sent_seq"] == before


# HYPERC_LANES_SOAK=N: the ordering tests make N rounds instead of 3 (a
# long run, by hand: `HYPERC_LANES_SOAK=200 pytest -k keep_their_order`)
ROUNDS = int(os.environ.get("HYPERC_LANES_SOAK", "3"))


def test_notes_by_lane_and_by_node_keep_their_order(lanes):
    assert lanes.ask(A, f"pingpong our@{B} 40", timeout=30) == "done 40"
    open_lane(lanes, A, B)
    before = lane_to(lanes, A, B)["sent_seq"]
    # every 7th carries a capability, which only the node passes on
    for rnd in range(ROUNDS):
        assert lanes.ask(A, f"notes our@{B} 400 7", timeout=30) == "sent 400"
        wait_for(lambda: len(notes_seen(lanes, B)) >= 400 * (rnd + 1))
    assert notes_seen(lanes, B) == list(range(1, 401)) * ROUNDS
    by_node = lane_to(lanes, A, B)["sent_seq"] - before
    assert ROUNDS * (400 // 7) <= by_node < 400 * ROUNDS, by_node


def test_notes_left_in_a_lane_reach_the_next_instance(lanes):
    # b's guest computes while a's notes wait in the lane; b's worker then
    # dies: the node drains the lane into b's queue, and b's next instance
    # takes them, in order, as it would have taken them from its mailbox
    assert lanes.ask(A, f"pingpong our@{B} 40", timeout=30) == "done 40"
    open_lane(lanes, A, B)
    before = lane_to(lanes, A, B)["sent_seq"]
    lanes.inject(B, "compute 5000", non_block=True)
    time.sleep(0.3)
    assert lanes.ask(A, f"notes our@{B} 50 0", timeout=30) == "sent 50"
    assert lane_to(lanes, A, B)["sent_seq"] == before  # all by lane
    assert notes_seen(lanes, B) == []
    os.kill(worker(lanes, B), signal.SIGKILL)
    lanes.wait_log(f"{B} crashed; restarting in")
    wait_for(lambda: len(notes_seen(lanes, B)) >= 50)
    assert notes_seen(lanes, B) == list(range(1, 51))
    lanes_gone(lanes, A)


def test_the_cpu_limit_counts_each_lane_message_apart(node_factory,
                                                       monkeypatch):
    # 20 requests by lane of 60 ms of CPU each, under a limit of 400 ms a
    # message: each is one message, though the node never sees them
    monkeypatch.setenv("HYPERC_LANES", "1")
    n = node_factory(packages=("tpkg",),
                     extra=ISOLATE + ("--cpu-limit-ms", "400"))
    assert n.ask(A, f"pingpong our@{B} 40", timeout=30) == "done 40"
    open_lane(n, A, B)
    before = lane_to(n, A, B)["sent_seq"]
    assert n.ask(A, f"repeat our@{B} 20 compute 60") == "sent 20"
    assert lane_to(n, A, B)["sent_seq"] == before  # by lane
    # b is busy about 1.2 s in all, then answers again, never stopped
    time.sleep(1.5)
    assert wait_for(lambda: n.ask(B, "echo done") == "done")
    assert "CPU" not in n.log(), n.log()
    assert ps(n)[B]["crashes"] == 0


def by_node(node):
    """For each way of the pair a-b, the number the receiver's mailbox gave
    the last message that went by node (it counts every push into that
    mailbox: unchanged means nothing went by node that way)."""
    return lane_to(node, A, B)["sent_seq"], lane_to(node, B, A)["sent_seq"]


def test_requests_and_responses_go_by_lane(roomy_lanes):
    lanes = roomy_lanes
    assert lanes.ask(A, f"pingpong our@{B} 40", timeout=30) == "done 40"
    open_lane(lanes, A, B)
    ab, ba = by_node(lanes)
    # 300 requests with a response in flight at once, each answered
    for _ in range(ROUNDS):
        rep = lanes.ask(A, f"flood our@{B} 300 5 echo x", timeout=30)
        assert rep == "flood ok=300 errors=0 busy=0", rep
    # a's requests went by lane; b's answers too once a's worker had read
    # what b sent it by node (a few; the test's own request to a counts 1)
    ab2, ba2 = by_node(lanes)
    assert ab2 == ab, (ab, ab2)
    assert ba2 - ba < 10, (ba, ba2)
    # a context comes back with its answer, and the request that prompted
    # a's send (the test's) is answered when the answer comes
    for k in range(5):
        assert lanes.ask(A, f"ask our@{B} 5 c{k} echo hi {k}") == \
            f"reply from {NODE}@{B} ctx=c{k}: hi {k}"
    assert by_node(lanes)[0] == ab


def test_a_lane_request_times_out_and_its_late_answer_is_dropped(lanes):
    assert lanes.ask(A, f"pingpong our@{B} 40", timeout=30) == "done 40"
    open_lane(lanes, A, B)
    ab = by_node(lanes)[0]
    t0 = time.monotonic()
    rep = lanes.ask(A, f"ask our@{B} 1 t compute 1500", timeout=20)
    waited = time.monotonic() - t0
    assert rep == f"error timeout target={NODE}@{B} ctx=t body=compute 1500", \
        rep
    assert 0.9 < waited < 1.4, waited
    assert by_node(lanes)[0] == ab  # it went by lane
    assert lanes.wait_log(f"{A}: dropped a response nobody waits for")
    assert lanes.ask(A, f"ask our@{B} 5 u echo after") == \
        f"reply from {NODE}@{B} ctx=u: after"


def test_an_answer_a_lane_cannot_carry_comes_by_node(lanes):
    assert lanes.ask(A, f"pingpong our@{B} 40", timeout=30) == "done 40"
    open_lane(lanes, A, B)
    ab, ba = by_node(lanes)
    # b's answer inherits the last blob, which only the node's path does:
    # it goes by node, to the context a keeps (the blob b got by lane is
    # the one it carries)
    rep = lanes.ask(A, f"blobask our@{B} 5 blobk 100 blobinherit")
    assert rep == f"reply from {NODE}@{B} ctx=blobk: inherited " \
        f"{blob_line(100, 100)}", rep
    ab2, ba2 = by_node(lanes)
    assert ab2 == ab and ba2 > ba, (ab, ba, ab2, ba2)
    # a plain answer goes by lane again
    rep = lanes.ask(A, f"ask our@{B} 5 p echo plain")
    assert rep == f"reply from {NODE}@{B} ctx=p: plain", rep
    assert by_node(lanes) == (ab2, ba2)


def blobnotes_seen(node, who):
    """(K, the blob's words) of each "blobnote: n-K ..." `who` printed, in
    the log's order."""
    out = []
    for line in node.log().splitlines():
        mark = f"] {who}: blobnote: n-"
        if mark in line:
            k, words = line.split(mark, 1)[1].split(" ", 1)
            out.append((int(k), words))
    return out


def test_notes_with_small_blobs_go_by_lane_in_order(roomy_lanes):
    lanes = roomy_lanes
    assert lanes.ask(A, f"pingpong our@{B} 40", timeout=30) == "done 40"
    open_lane(lanes, A, B)
    before = lane_to(lanes, A, B)["sent_seq"]
    # each frame (a blob and the rest) is under R/4 (16 KiB), and a burst
    # of 15 fits in the ring's 64 KiB (a burst beyond what the ring holds
    # goes by node from where it is full, and stays there to its end)
    want = []
    for size in (1, 64, 1000, 3000, 1000):
        assert lanes.ask(A, f"blobnotes our@{B} 15 {size}", timeout=30) == \
            "sent 15"
        want += [(k, blob_line(k, size)) for k in range(1, 16)]
        wait_for(lambda: len(blobnotes_seen(lanes, B)) >= len(want))
    assert blobnotes_seen(lanes, B) == want
    # they went by lane: none reached b's mailbox
    assert lane_to(lanes, A, B)["sent_seq"] == before


def test_notes_with_blobs_left_in_a_lane_reach_the_next_instance(lanes):
    # as test_notes_left_in_a_lane_reach_the_next_instance: the node's
    # drain carries each note's blob into b's queue
    assert lanes.ask(A, f"pingpong our@{B} 40", timeout=30) == "done 40"
    open_lane(lanes, A, B)
    before = lane_to(lanes, A, B)["sent_seq"]
    lanes.inject(B, "compute 5000", non_block=True)
    time.sleep(0.3)
    assert lanes.ask(A, f"blobnotes our@{B} 12 2000", timeout=30) == \
        "sent 12"
    assert lane_to(lanes, A, B)["sent_seq"] == before  # all by lane
    assert blobnotes_seen(lanes, B) == []
    os.kill(worker(lanes, B), signal.SIGKILL)
    lanes.wait_log(f"{B} crashed; restarting in")
    wait_for(lambda: len(blobnotes_seen(lanes, B)) >= 12)
    assert blobnotes_seen(lanes, B) == \
        [(k, blob_line(k, 2000)) for k in range(1, 13)]
    lanes_gone(lanes, A)


def test_a_blob_over_a_quarter_of_the_ring_goes_by_node(lanes):
    assert lanes.ask(A, f"pingpong our@{B} 40", timeout=30) == "done 40"
    open_lane(lanes, A, B)
    before = lane_to(lanes, A, B)["sent_seq"]
    assert lanes.ask(A, f"blobnotes our@{B} 3 20000", timeout=30) == "sent 3"
    wait_for(lambda: len(blobnotes_seen(lanes, B)) >= 3)
    assert blobnotes_seen(lanes, B) == \
        [(k, blob_line(k, 20000)) for k in range(1, 4)]
    assert lane_to(lanes, A, B)["sent_seq"] >= before + 3
    # and a request that large, answered with its blob: both by node
    rep = lanes.ask(A, f"blobask our@{B} 5 blobbig 20000 blob")
    assert rep == f"reply from {NODE}@{B} ctx=blobbig: blob 20000 bytes " \
        f"{blob_line(20000, 20000)}", rep


def test_a_request_with_a_blob_is_answered_by_lane_with_a_blob(roomy_lanes):
    lanes = roomy_lanes
    assert lanes.ask(A, f"pingpong our@{B} 40", timeout=30) == "done 40"
    open_lane(lanes, A, B)
    ab, ba = by_node(lanes)
    for size in (1, 700, 9000):
        rep = lanes.ask(A, f"blobask our@{B} 5 blob{size} {size} blob")
        assert rep == f"reply from {NODE}@{B} ctx=blob{size}: blob {size} " \
            f"bytes {blob_line(size, size)}", rep
    # both ways by lane (b's answers once a's worker read what b sent it
    # by node before: a few)
    ab2, ba2 = by_node(lanes)
    assert ab2 == ab, (ab, ab2)
    assert ba2 - ba < 4, (ba, ba2)
    # the guest's last blob is the answer's, which came by lane
    assert lanes.ask(A, "lastblob") == blob_line(9000, 9000)


def test_a_lane_requests_timeout_carries_its_blob(lanes):
    assert lanes.ask(A, f"pingpong our@{B} 40", timeout=30) == "done 40"
    open_lane(lanes, A, B)
    ab = by_node(lanes)[0]
    rep = lanes.ask(A, f"blobask our@{B} 1 blobt 500 compute 1500",
                    timeout=20)
    assert rep == f"error timeout target={NODE}@{B} ctx=blobt " \
        f"body=compute 1500 {blob_line(500, 500)}", rep
    assert by_node(lanes)[0] == ab  # it went by lane


def test_a_dropped_late_answers_blob_is_not_inherited(lanes):
    # a's lane request times out; b's late answer comes by node (its blob is
    # over 16 KiB) and a's worker drops it, as the node drops an answer
    # nobody waits for: a's last blob stays none, and a request a passes
    # on with inherit carries none
    assert lanes.ask(A, f"pingpong our@{B} 40", timeout=30) == "done 40"
    open_lane(lanes, A, B)
    rep = lanes.ask(A, f"ask our@{B} 1 t slowblob 1500 20000", timeout=20)
    assert rep.startswith("error timeout") and "ctx=t" in rep, rep
    assert lanes.wait_log(f"{A}: dropped a response nobody waits for")
    assert lanes.ask(A, "lastblob") == "none"
    assert lanes.ask(A, f"forward our@{C} blob") == "no blob"


def test_an_inherit_forward_after_a_blob_by_lane_carries_it(lanes):
    assert lanes.ask(A, f"pingpong our@{B} 40", timeout=30) == "done 40"
    open_lane(lanes, A, B)
    ab = by_node(lanes)[0]
    # b's node-side last blob first is one that came by node
    rep = lanes.ask(B, f"blobask our@{C} 5 blobc 50 blob")
    assert rep == f"reply from {NODE}@{C} ctx=blobc: blob 50 bytes " \
        f"{blob_line(50, 50)}", rep
    # a's request and its blob reach b by lane; b passes the request on
    # with inherit to c (by node): the blob it carries is the one b got by
    # lane, and c echoes it to a
    for size in (300, 4000, 300):
        rep = lanes.ask(A, f"blobask our@{B} 5 blobf{size} {size} "
                        f"forward our@{C} blob", timeout=20)
        assert rep == f"reply from {NODE}@{C} ctx=blobf{size}: blob {size} " \
            f"bytes {blob_line(size, size)}", rep
    assert by_node(lanes)[0] == ab  # a's requests went by lane
    # a lane message without a blob leaves the last blob as it was
    assert lanes.ask(A, f"ask our@{B} 5 p echo plain") == \
        f"reply from {NODE}@{B} ctx=p: plain"
    rep = lanes.ask(A, f"ask our@{B} 5 blobr forward our@{C} blob",
                    timeout=20)
    assert rep == f"reply from {NODE}@{C} ctx=blobr: blob 300 bytes " \
        f"{blob_line(300, 300)}", rep
    # send-and-await with inherit after a blob by lane (b's node-side last
    # blob is the 300 bytes' now): c gets the 700 bytes b got
    lanes.inject(A, f"blobask our@{B} 30 print-w 700 relay-await our@{C} 5 "
                 "blob", non_block=True)
    assert lanes.wait_log(f"{B}: relay-awaited: blob 700 bytes")


def test_forwarding_a_lane_request_by_node(lanes):
    assert lanes.ask(A, f"pingpong our@{B} 40", timeout=30) == "done 40"
    open_lane(lanes, A, B)
    ab = by_node(lanes)[0]
    # a asks b by lane; b passes it on with inherit to c (by node); c's
    # answer goes to a with a's lane id, and a pairs it with its context
    for k in range(3):
        rep = lanes.ask(A, f"ask our@{B} 5 x{k} forward our@{C} echo hi",
                        timeout=20)
        assert rep == f"reply from {NODE}@{C} ctx=x{k}: hi", rep
    assert by_node(lanes)[0] == ab


def test_a_crash_fails_the_lane_requests_it_took_at_once(lanes):
    assert lanes.ask(A, f"pingpong our@{B} 40", timeout=30) == "done 40"
    open_lane(lanes, A, B)
    t0 = time.monotonic()
    rep = lanes.ask(A, f"ask our@{B} 20 s trap", timeout=25)
    assert rep == f"error timeout target={NODE}@{B} ctx=s body=trap", rep
    assert time.monotonic() - t0 < 5
    lanes.wait_log(f"{B} crashed")
    assert lanes.ask(A, f"ask our@{B} 5 v echo back", timeout=20) == \
        f"reply from {NODE}@{B} ctx=v: back"


def test_lane_requests_left_by_a_killed_worker_are_answered(lanes):
    # b computes while a's requests wait in the lane; b's worker dies: the
    # node drains them into b's queue, b's next instance answers them, and
    # the answers reach a's contexts by node
    assert lanes.ask(A, f"pingpong our@{B} 40", timeout=30) == "done 40"
    open_lane(lanes, A, B)
    lanes.inject(B, "compute 5000", non_block=True)
    time.sleep(0.3)
    got = {}

    def flood():
        got["rep"] = lanes.ask(A, f"flood our@{B} 40 20 echo x", timeout=30)
    t = threading.Thread(target=flood)
    t.start()
    time.sleep(0.5)
    os.kill(worker(lanes, B), signal.SIGKILL)
    t.join(30)
    assert got.get("rep") == "flood ok=40 errors=0 busy=0", got


def late_ask_after_drain(lanes, late, ctx, size):
    """a asks b by lane with a blob of `size` bytes after the drain
    (`lateblobask LATE ...`, tproc.c) while b's worker is killed; the
    reply a got, and how long after b's crash line it came."""
    assert lanes.ask(A, f"pingpong our@{B} 40", timeout=30) == "done 40"
    open_lane(lanes, A, B)
    b_pid = worker(lanes, B)
    got = {}

    def ask():
        got["rep"] = lanes.ask(
            A, f"lateblobask {late} our@{B} 20 {ctx} {size} blob", timeout=25)
    t = threading.Thread(target=ask)
    t.start()
    time.sleep(0.3)
    os.kill(b_pid, signal.SIGKILL)
    lanes.wait_log(f"{B} crashed; restarting in")
    t0 = time.monotonic()
    t.join(30)
    assert not t.is_alive()
    assert worker(lanes, B) != b_pid
    return got.get("rep"), time.monotonic() - t0


@native_only
def test_a_blob_request_written_after_the_drain_is_sent_again_by_node(lanes):
    """b's worker dies while a's guest sleeps: the node closes the lane,
    drains what b did not read (nothing) and tells a (LANE_CLOSE with
    drained_to).  a's guest then sets the lane's state word open again
    (hyperc-worker's test hook), as a worker that looked just before the
    close, and asks b by lane with a blob: the request lies in the lane
    after the drain, and a's worker sends it again by node when it reads
    the LANE_CLOSE (lane_table.c, resend), under its lane id and with its
    blob.  b's next instance echoes the blob, and the answer reaches a's
    context (docs/lane-design.md §10, "Blobs by lane")."""
    rep, _ = late_ask_after_drain(lanes, "1500", "blobz", 5000)
    assert rep == f"reply from {NODE}@{B} ctx=blobz: blob 5000 " \
        f"bytes {blob_line(5000, 5000)}", rep
    lanes_gone(lanes, A)


@native_only
def test_an_answer_after_the_drain_does_not_stop_the_resend(lanes):
    """As above, but a's guest writes an answer into the reopened lane
    (an LRESP, to an id nobody has, as one to a request of b's answered
    just then) before its request: a's worker skips the answer when it
    sends again by node what lies after the drain, and the request after
    it still goes (it stopped at the answer, and the request's context
    waited out its 20 s)."""
    rep, waited = late_ask_after_drain(lanes, "1500+lresp", "blobr", 300)
    assert rep == f"reply from {NODE}@{B} ctx=blobr: blob 300 " \
        f"bytes {blob_line(300, 300)}", rep
    assert waited < 10, waited


def test_a_send_error_by_node_to_a_lane_request_carries_its_blob(lanes):
    """A lane request with a blob lies in the lane while b computes; b's
    worker dies: the node drains the request into b's queue, and b's next
    instance crashes handling it.  The node fails it to its rsvp, a, under
    a's lane id: a send error that comes as an ANSWER, which a's worker
    pairs with its context.  The guest gets the error with its context and
    the request's blob, at once, not at the deadline."""
    assert lanes.ask(A, f"pingpong our@{B} 40", timeout=30) == "done 40"
    open_lane(lanes, A, B)
    ab = by_node(lanes)[0]
    lanes.inject(B, "compute 5000", non_block=True)
    time.sleep(0.3)
    got = {}

    def ask():
        got["rep"] = lanes.ask(A, f"blobask our@{B} 20 blobt 700 trap",
                               timeout=25)
    t = threading.Thread(target=ask)
    t0 = time.monotonic()
    t.start()
    time.sleep(0.5)
    assert by_node(lanes)[0] == ab  # it went by lane
    os.kill(worker(lanes, B), signal.SIGKILL)
    t.join(30)
    assert not t.is_alive()
    assert got.get("rep") == f"error timeout target={NODE}@{B} ctx=blobt " \
        f"body=trap {blob_line(700, 700)}", got
    assert time.monotonic() - t0 < 12
    lanes.wait_log(f"process {B} crashed")


# How a's guest passes on, with inherit and expects-response, the request
# that came back to it under its own lane id, and what it prints once the
# answer comes: at once; after the first context's deadline has passed (its
# Timeout is due, not yet received); by send-and-await.
RELAYS = {
    "relay": (f"relay our@{C} 20 print-c2 0 echo hi",
              f"reply from {NODE}@{C} ctx=print-c2: hi"),
    "relay-late": (f"relay our@{C} 20 print-c2 1500 echo hi",
                   f"reply from {NODE}@{C} ctx=print-c2: hi"),
    "relay-await": (f"relay-await our@{C} 20 echo hi", "relay-awaited: hi"),
}


@pytest.mark.parametrize("lanes_on", ["1", "0"])
@pytest.mark.parametrize("how", sorted(RELAYS))
def test_an_own_lane_id_inherited_with_expects_replaces_its_context(
        node_factory, monkeypatch, lanes_on, how):
    """a asks b by lane (context print-c1, 1 s); b passes the request back
    to a with inherit, so that it reaches a by node under a's own lane id;
    a passes it on with inherit and expects-response to c.  The node files
    a context of a's under that id: newest wins, as in its own table, so
    a's first context is gone (FORGET, docs/lane-design.md §4) and its
    deadline passes without a Timeout.  With HYPERC_LANES=0 the node's
    table alone does the same: the test says both agree."""
    monkeypatch.setenv("HYPERC_LANES", lanes_on)
    n = node_factory(packages=("tpkg",), extra=ISOLATE)
    assert n.ask(A, f"pingpong our@{B} 40", timeout=30) == "done 40"
    if lanes_on == "1":
        open_lane(n, A, B)
        ab = by_node(n)[0]
    relay, printed = RELAYS[how]
    t0 = time.monotonic()
    n.inject(A, f"ask our@{B} 1 print-c1 forward our@{A} {relay}",
             non_block=True)
    n.wait_log(f"] {A}: {printed}")
    if lanes_on == "1":
        assert by_node(n)[0] == ab  # a's request went by lane
    # the first context's deadline is 1 s: well past it, nothing came
    time.sleep(max(0.0, t0 + 2.5 - time.monotonic()))
    assert n.ask(A, "echo alive") == "alive"
    log = n.log()
    assert "ctx=print-c1" not in log, log
    assert log.count(f"] {A}: {printed}") == 1, log


@native_only
def test_a_forget_that_waits_for_room_still_comes_before_the_timeout(lanes):
    """As relay-late above, with a's replies ring full when the node files
    the context under a's lane id: a's guest, after the first context's
    deadline, has pads it sends itself delivered ahead until not even a
    FORGET fits (hyperc-worker's test hook says how full the ring is), then
    passes the request on with inherit and expects.  The FORGET waits for
    room and `served` with it, so a's worker, about to give the guest that
    context's Timeout, waits and reads the ring until the FORGET comes: no
    Timeout, and c's answer arrives.  (Without lanes there is no reference
    here: the node's own context under that id has timed out, and its
    Timeout, which the guest could still inherit, holds back what is behind
    it, the pads too.)"""
    n = lanes
    assert n.ask(A, f"pingpong our@{B} 40", timeout=30) == "done 40"
    open_lane(n, A, B)
    ab = by_node(n)[0]
    t0 = time.monotonic()
    n.inject(A, f"ask our@{B} 1 print-c1 forward our@{A} fillrelay "
             f"our@{C} 20 print-c2 1500 echo hi", non_block=True)
    printed = f"reply from {NODE}@{C} ctx=print-c2: hi"
    n.wait_log(f"] {A}: {printed}")
    assert by_node(n)[0] == ab  # a's request went by lane
    time.sleep(max(0.0, t0 + 3.0 - time.monotonic()))
    assert n.ask(A, "echo alive") == "alive"
    log = n.log()
    assert "fill:" not in log, log
    assert "ctx=print-c1" not in log, log
    assert log.count(f"] {A}: {printed}") == 1, log


def fake_worker(monkeypatch, mode):
    """Every process of tpkg run by tests/procs/fake_worker in `mode`."""
    fake = os.environ.get("HYPERC_FAKE_WORKER")
    if not fake:
        pytest.skip("needs tests/procs/fake_worker")
    if COMPONENTS:
        pytest.skip("the fake worker stands in for hyperc-worker, not for "
                    "a wasm host")
    monkeypatch.setenv("HYPERC_WORKER", fake)
    monkeypatch.setenv("FAKE_WORKER_READY", mode)


def test_answers_stubs_and_flags_of_step_5(node_factory, monkeypatch):
    """The node's side of step 5 (docs/lane-design.md §10), spoken by a fake
    worker: items carry flags and an ANSWER id; a request sent under a lane
    id is answered as an ANSWER (no context of the node's), and one
    inheriting it with expects brings a FORGET; a SYNC stub of
    a lane peer's request is answered to the peer, which gets an ANSWER,
    and fails to it when the instance ends with the stub prompting; a stub
    from a process that is no lane's peer is a breach."""
    fake_worker(monkeypatch, "lanes")
    monkeypatch.setenv("HYPERC_LANES", "1")
    n = node_factory(packages=("tpkg",), extra=ISOLATE, wait_ready=False)
    # a request with expects prompts (flag bit 0), and is no ANSWER
    n.wait_log("fake_worker: request flags 1 answer 0")
    # its answer, to the lane id, comes as an ANSWER without a context and
    # leaves the prompting message alone
    n.wait_log("fake_worker: response ok flags 0 answer 0x8000000000000001 "
               "context 0")
    # a request inheriting that lane id with expects: the node files a
    # context under it and says so (FORGET) before `served` moves past it
    n.wait_log("fake_worker: an own lane id inherited: served, FORGET "
               "[0x8000000000000001]")
    n.wait_log("fake_worker: a lane to b")
    # a stub's id is its lane peer's: nothing to forget
    n.wait_log("fake_worker: a stub's id inherited: served, FORGET []")
    n.wait_log("fake_worker: stub answered")
    # (b holds no prompting message: its ANSWERs go ahead)
    n.wait_log("fake_worker: b got answer 0x8000000000000002 by DELIVER, "
               "flags 0 body by stub")
    n.wait_log(f"process {A} crashed: its worker broke the protocol (SYNC of "
               "a request from a process that is no lane's peer)")
    # the stub prompting when a's instance ended fails to b, as an ANSWER
    n.wait_log("fake_worker: b got answer 0x8000000000000005 by DELIVER, "
               "flags 0 error")
    # nothing else was refused on the way
    log = n.log()
    assert log.count("broke the protocol") == log.count(
        "no lane's peer"), log


def test_forgets_that_wait_for_room_come_first(node_factory, monkeypatch):
    """FORGETs that do not fit in a full replies ring when their contexts
    are filed wait for room, in order, and `served` with them (isolate.c,
    forget_flush): a fake worker fills its ring with notes it has itself
    delivered ahead and does not read, then inherits two of its own lane
    ids with expects.  served stays before the first such frame until the
    worker reads; once served covers them both FORGETs are in the ring,
    after the notes, in order.  Again with a call whose REPLY waits for
    room: the FORGET comes before it."""
    fake_worker(monkeypatch, "forget-full")
    monkeypatch.setenv("HYPERC_LANES", "1")
    n = node_factory(packages=("tpkg",), extra=ISOLATE, wait_ready=False)
    n.wait_log("fake_worker: full ring (no room for a FORGET): served held "
               "back; served, the notes' DELIVERs, then FORGET "
               "0x8000000000000001 FORGET 0x8000000000000002")
    n.wait_log("fake_worker: full ring and a call: served, the notes' "
               "DELIVERs, then FORGET 0x8000000000000003 REPLY")
    assert "fill:" not in n.log(), n.log()
    assert "broke the protocol" not in n.log(), n.log()


@pytest.mark.parametrize("mode,said", [
    ("sync", "SYNC from a worker without lanes"),
    ("send5", "SEND_REQUEST's fifth argument wants a lane id (bit 63, no "
              "inherit) from a worker with lanes"),
])
def test_step_5_calls_without_lanes_are_breaches(node_factory, monkeypatch,
                                                 mode, said):
    """SYNC and SEND_REQUEST's lane id are for a worker with lanes only."""
    fake_worker(monkeypatch, mode)
    monkeypatch.setenv("HYPERC_LANES", "1")
    n = node_factory(packages=("tpkg",), extra=ISOLATE, wait_ready=False)
    n.wait_log(f"process {A} crashed: its worker broke the protocol ({said})")


# Hostile lanes (docs/lane-design.md §7, §10 "Step 6, hostile-lane tests"):
# a's guest writes on its lane to b, with hyperc-worker's test hook
# (hcw_test_lane_scribble, src/worker/scribble.c), what no honest worker
# writes.  Whichever worker finds it gives the lane up (LANE_DROP with a
# sentence) and the node closes it and logs it; a and b keep answering by
# node, nothing crashes, and c, which talks to b meanwhile over its own
# lane, notices nothing.

def scribble(node, x, y, what):
    if COMPONENTS:
        pytest.skip("the scribble hook is hyperc-worker's")
    rep = node.ask(x, f"scribble our@{y} {what}")
    assert rep == f"scribbled {what}", rep


def lane_mappings(worker_pid):
    with open(f"/proc/{worker_pid}/maps") as f:
        return sum(LANE_MAP in line for line in f)


class Third:
    """c asks b, 50 requests in flight at a time, until stopped: every
    answer must come."""

    def __init__(self, node):
        import threading
        self.node, self.reps, self.stopping = node, [], False
        self.t = threading.Thread(target=self.run)
        self.t.start()

    def run(self):
        try:
            while not self.stopping:
                self.reps.append(self.node.ask(
                    C, f"flood our@{B} 50 10 echo x", timeout=30))
        except Exception as e:  # (the node stopped: a failed test)
            self.reps.append(repr(e))

    def stop(self):
        self.stopping = True
        self.t.join(60)
        assert not self.t.is_alive()
        assert self.reps, "c asked nothing"
        assert all(r == "flood ok=50 errors=0 busy=0" for r in self.reps), \
            self.reps


def hostile_setup(node):
    """Lanes a-b and c-b, and the workers' pids."""
    if COMPONENTS:
        pytest.skip("the scribble hook is hyperc-worker's")
    assert node.ask(A, f"pingpong our@{B} 40", timeout=30) == "done 40"
    assert node.ask(C, f"pingpong our@{B} 40", timeout=30) == "done 40"
    ab, cb = open_lane(node, A, B), open_lane(node, C, B)
    # requests with a response go by lane both ways (b's answers too)
    assert node.ask(A, f"flood our@{B} 100 5 echo x") == \
        "flood ok=100 errors=0 busy=0"
    assert node.ask(B, f"flood our@{A} 100 5 echo x") == \
        "flood ok=100 errors=0 busy=0"
    pids = {x: worker(node, x) for x in (A, B, C)}
    return ab["lane"], cb["lane"], pids


def still_whole(node, ab, cb, pids):
    """a and b answer each other by node, none of a, b, c restarted, and
    c's lane to b is the one it had."""
    for x, y in ((A, B), (B, A)):
        assert node.ask(x, f"ask our@{y} 5 k echo hi {x}") == \
            f"reply from {NODE}@{y} ctx=k: hi {x}"
        assert node.ask(x, f"pingpong our@{y} 40", timeout=30) == "done 40"
    assert node.ask(A, "echo a") == "a" and node.ask(B, "echo b") == "b"
    procs = ps(node)
    crashes = [line for line in node.log().splitlines()
               if "crashed" in line or "exited" in line]
    for x in (A, B, C):
        assert procs[x]["crashes"] == 0, (procs[x], crashes)
        assert procs[x]["worker_pid"] == pids[x], (x, procs[x], crashes)
    assert [x["lane"] for x in procs[C]["lanes"]] == [cb], procs[C]
    assert "crashed" not in node.log()


def closed(node, number):
    """Lane `number` is gone from a's and b's records and a's and b's
    workers map only the lanes they have (a none, b c's)."""
    def gone():
        """the lane is closed and unmapped"""
        procs = ps(node)
        if any(x["lane"] == number for p in (A, B)
               for x in procs[p]["lanes"]):
            return False
        return all(lane_mappings(procs[p]["worker_pid"]) ==
                   len(procs[p]["lanes"]) for p in (A, B))
    wait_for(gone)


BREACHES = {
    # what a writes: the line of the worker that finds it
    "tail": rf"{B}: dropped lane N: lane: the ring's positions are "
            r"impossible \(\d+ bytes in a ring of 65536\)",
    "len-cap": rf"{B}: dropped lane N: lane: a frame of 16381 bytes, over "
               r"the limit of 16380",
    "len-ring": rf"{B}: dropped lane N: lane: a frame of 65533 bytes, over "
                r"the limit of 16380",
    "op": rf"{B}: dropped lane N: a frame that is not an LREQ or LRESP a "
          r"lane carries \(op 1\)",
    "junk": rf"{B}: dropped lane N: worker frame: not one well-formed "
            r"msgpack value",
    # a note whose strings are Latin-1 (the protocol's are UTF-8)
    "latin1": rf"{B}: dropped lane N: a frame with a string that is not "
              r"UTF-8 \(its metadata\)",
    "latin1-mime": rf"{B}: dropped lane N: a frame with a string that is "
                   r"not UTF-8 \(its blob's mime\)",
    # the state word is the pair's: either worker may see it first
    "state": rf"({A}|{B}): dropped lane N: a state word of 92",
    "state-closed": rf"({A}|{B}): dropped lane N: its state word says "
                    r"closed, which the node did not write",
}


@pytest.mark.parametrize("what", list(BREACHES))
def test_a_scribbled_lane_is_dropped_and_the_rest_goes_on(lanes, what):
    import re
    ab, cb, pids = hostile_setup(lanes)
    third = Third(lanes)
    time.sleep(0.2)
    scribble(lanes, A, B, what)
    line = re.compile(BREACHES[what].replace("lane N", f"lane {ab}"))
    wait_for(lambda: line.search(lanes.log()))
    closed(lanes, ab)
    third.stop()
    still_whole(lanes, ab, cb, pids)


def test_an_impossible_head_is_found_by_its_writer(lanes):
    # a claims a head of its inbound ring that no reader has: b finds it
    # when it next looks for room, after 30 notes of 3 000 bytes by lane
    # (a sleeps meanwhile: its worker's next take would write the real head
    # back)
    import threading
    ab, cb, pids = hostile_setup(lanes)
    third = Third(lanes)
    got = {}

    def hostile():
        got["rep"] = lanes.ask(A, f"scribble our@{B} head 1500", timeout=10)
    t = threading.Thread(target=hostile)
    t.start()
    time.sleep(0.3)
    body = "x" * 3000
    assert lanes.ask(B, f"repeat our@{A} 30 note {body}") == "sent 30"
    lanes.wait_log(f"{B}: dropped lane {ab}: lane: the ring's positions are "
                   "impossible (its reader's head)")
    t.join(10)
    assert got.get("rep") == "scribbled head", got
    closed(lanes, ab)
    # every note reached a: by lane before, by node after (the log cuts
    # long lines)
    wait_for(lambda: lanes.log().count(f"] {A}: note: {body[:4]}") == 30)
    third.stop()
    still_whole(lanes, ab, cb, pids)


def test_scribbled_counters_are_advice(lanes):
    # last_seq and read_seq only decide when a sender switches to the lane:
    # bogus ones misroute nothing and close nothing
    ab, cb, pids = hostile_setup(lanes)
    third = Third(lanes)
    scribble(lanes, A, B, "counters")
    for x, y in ((A, B), (B, A)):
        rep = lanes.ask(x, f"flood our@{y} 200 5 echo x", timeout=30)
        assert rep == "flood ok=200 errors=0 busy=0", rep
    third.stop()
    still_whole(lanes, ab, cb, pids)
    assert [x["lane"] for x in ps(lanes)[A]["lanes"]] == [ab]
    assert "dropped lane" not in lanes.log()


def test_a_forged_answer_reaches_no_one(lanes):
    # an LRESP to an id b's worker has no context for is dropped with the
    # node's level-2 line, as a late answer is: not a breach, the lane stays
    ab, cb, pids = hostile_setup(lanes)
    third = Third(lanes)
    scribble(lanes, A, B, "lresp")
    lanes.wait_log(f"{B}: dropped a response nobody waits for")
    third.stop()
    still_whole(lanes, ab, cb, pids)
    assert [x["lane"] for x in ps(lanes)[A]["lanes"]] == [ab]
    assert "dropped lane" not in lanes.log()


def lane_ids(node, x, y):
    """The lane ids x's worker saw on its lane to y: the last request y
    sent by it, and one of x's to y still waiting (0: none)."""
    rep = node.ask(x, f"laneids our@{y}")
    parts = rep.split()
    assert len(parts) == 4 and parts[0] == "last_in", rep
    return int(parts[1], 16), int(parts[3], 16)


def test_a_forged_answer_to_another_lanes_request_is_dropped(lanes):
    # a, which sees b's lane ids, forges an answer to one of b's requests
    # still pending, which b sent c by lane (the test learns its id from
    # b's worker: lane ids are random).  b's worker takes an LRESP only for
    # a context of the lane it came by: the forged one is dropped, and c's
    # real answer reaches b's context
    import threading
    ab, cb, pids = hostile_setup(lanes)
    for k in range(3):  # b's requests to c go by lane
        assert lanes.ask(B, f"ask our@{C} 5 w echo warm {k}") == \
            f"reply from {NODE}@{C} ctx=w: warm {k}"
    bc = lane_to(lanes, B, C)["sent_seq"]
    ba = lane_to(lanes, B, A)["sent_seq"]
    assert lanes.ask(B, f"ask our@{A} 5 k echo last") == \
        f"reply from {NODE}@{A} ctx=k: last"
    got = {}

    def slow():
        got["rep"] = lanes.ask(B, f"ask our@{C} 10 z sleep 1500", timeout=20)
    t = threading.Thread(target=slow)
    t.start()
    time.sleep(0.5)  # b's request is with c
    _, pending = lane_ids(lanes, B, C)
    assert pending >> 63 == 1, hex(pending)
    scribble(lanes, A, B, f"lresp={pending:x}")
    lanes.wait_log(f"{B}: dropped a response nobody waits for")
    t.join(20)
    assert got.get("rep") == f"reply from {NODE}@{C} ctx=z: slept 1500", got
    # both of b's requests went by lane (nothing more by node to a or c)
    assert lane_to(lanes, B, C)["sent_seq"] == bc
    assert lane_to(lanes, B, A)["sent_seq"] == ba
    still_whole(lanes, ab, cb, pids)
    assert "dropped lane" not in lanes.log()


def test_lane_ids_cannot_be_told_from_the_ones_seen(lanes):
    # a peer sees the ids of the requests sent to it by lane; they must
    # tell it nothing of the others (docs/security.md, "Lane ids"): b's
    # requests to a, one at a time, to c between them, as a sees them
    ab, cb, pids = hostile_setup(lanes)
    ba = lane_to(lanes, B, A)["sent_seq"]
    seen = []
    for k in range(8):
        assert lanes.ask(B, f"ask our@{A} 5 k echo id {k}") == \
            f"reply from {NODE}@{A} ctx=k: id {k}"
        assert lanes.ask(B, f"ask our@{C} 5 w echo between {k}") == \
            f"reply from {NODE}@{C} ctx=w: between {k}"
        last_in, _ = lane_ids(lanes, A, B)
        assert last_in >> 63 == 1, hex(last_in)
        seen.append(last_in)
    # every request to a went by lane (none by node)
    assert lane_to(lanes, B, A)["sent_seq"] == ba
    assert len(set(seen)) == len(seen), [hex(x) for x in seen]
    # counted ids (one apart, or two with a request to c between) would be
    # close; 63 random bits are 2^32 apart or more but once in 2^30 pairs
    gaps = [abs(b - a) for a, b in zip(seen, seen[1:])]
    assert min(gaps) > 1 << 32, [hex(x) for x in seen]
    still_whole(lanes, ab, cb, pids)


@native_only
def test_the_scribble_hook_is_in_hyperc_worker_only(node_factory,
                                                    monkeypatch):
    monkeypatch.setenv("HYPERC_LANES", "1")
    n = node_factory(packages=("tpkg",), extra=("--in-process",))
    assert n.ask(A, f"scribble our@{B} tail") == \
        "scribble tail: no hook here (not in hyperc-worker)"
    w = node_factory(packages=("tpkg",), extra=ISOLATE)
    assert w.ask(A, f"scribble our@{B} tail") == \
        "scribble tail: no lane to that peer"
    assert w.ask(A, f"pingpong our@{B} 40", timeout=30) == "done 40"
    open_lane(w, A, B)
    assert w.ask(A, f"scribble our@{B} nonsense") == \
        "scribble nonsense: no such scribble"


def test_ps_counts_the_requests_waiting_in_a_lane(lanes):
    """`hyperc ps` "queued" counts what waits unread in a process's inbound
    lanes as it counts its mailbox (docs/lane-design.md §6)."""
    assert lanes.ask(A, f"pingpong our@{B} 40", timeout=30) == "done 40"
    open_lane(lanes, A, B)
    lanes.inject(B, "sleep 4000", non_block=True)  # b's guest is held
    wait_for(lambda: ps(lanes)[B]["busy_ms"] and ps(lanes)[B]["queued"] == 0)
    before = lane_to(lanes, A, B)["sent_seq"]
    assert lanes.ask(A, f"notes our@{B} 10 0") == "sent 10"
    ab = lane_to(lanes, A, B)
    assert ab["sent_seq"] == before and ab["sent_unread"] == 10, ab  # by lane
    assert ps(lanes)[B]["queued"] == 10
    # two by node (a capability each) queue after them: 12
    assert lanes.ask(A, f"notes our@{B} 2 1") == "sent 2"
    assert lane_to(lanes, A, B)["sent_seq"] > before
    assert ps(lanes)[B]["queued"] == 12
    # once b is back it takes them all, and nothing is queued
    wait_for(lambda: len(notes_seen(lanes, B)) >= 12)
    assert notes_seen(lanes, B) == list(range(1, 11)) + [1, 2]
    wait_for(lambda: ps(lanes)[B]["queued"] == 0)
    assert lane_to(lanes, A, B)["sent_unread"] == 0


def test_ps_shows_a_handler_of_a_lane_message_busy(lanes):
    """`hyperc ps` "busy_ms" of a worker with lanes is its own word (the link
    header's busy_ns): a message by lane, which the node never sees, makes
    it busy, and it is 0 again once the guest waits."""
    assert lanes.ask(A, f"pingpong our@{B} 40", timeout=30) == "done 40"
    open_lane(lanes, A, B)
    assert lanes.ask(A, f"notes our@{B} 5 0") == "sent 5"
    wait_for(lambda: len(notes_seen(lanes, B)) >= 5)
    # waiting for its next message (by lane or by node): not busy
    wait_for(lambda: ps(lanes)[B]["busy_ms"] == 0)
    before = lane_to(lanes, A, B)["sent_seq"]
    assert lanes.ask(A, f"repeat our@{B} 1 compute 1500") == "sent 1"
    assert lane_to(lanes, A, B)["sent_seq"] == before  # by lane
    first = wait_for(lambda: ps(lanes)[B]["busy_ms"])
    time.sleep(0.5)
    second = ps(lanes)[B]["busy_ms"]
    assert second >= first + 300, (first, second)
    # done: waiting again
    wait_for(lambda: ps(lanes)[B]["busy_ms"] == 0)


def test_a_flood_by_lane_meets_busy_at_the_bound(node_factory, monkeypatch):
    """A lane's way holds at most its quota of unread requests, max(16,
    bound / 16), 16 here; past it the sender goes by node, where the
    mailbox's bound counts its requests and the lanes' together, and the
    rest are answered Busy.  A second sender whose own lane has room is
    refused too while the reader is full (the lanes' `full` flag)."""
    monkeypatch.setenv("HYPERC_LANES", "1")
    n = node_factory(packages=("tpkg",),
                     extra=ISOLATE + ("--mailbox-max", "64"))
    assert n.ask(A, f"pingpong our@{B} 40", timeout=30) == "done 40"
    assert n.ask(C, f"pingpong our@{B} 40", timeout=30) == "done 40"
    open_lane(n, A, B)
    open_lane(n, C, B)
    n.inject(B, "sleep 5000", non_block=True)  # b's guest is held
    wait_for(lambda: ps(n)[B]["busy_ms"] and ps(n)[B]["queued"] == 0)
    before = lane_to(n, A, B)["sent_seq"]
    got = {}

    def flood(who, count, key):
        got[key] = n.ask(who, f"flood our@{B} {count} 20 echo x", timeout=30)
    ta = threading.Thread(target=flood, args=(A, 200, "a"))
    ta.start()
    # the bound is reached: 16 in a's lane, 48 in b's mailbox; both of b's
    # inbound ways are marked full
    wait_for(lambda: ps(n)[B]["queued"] == 64)
    n.wait_log("target mailbox is full")
    ab, cb = lane_to(n, A, B), lane_to(n, C, B)
    assert ab["sent_unread"] == 16 and ab["sent_seq"] > before, ab
    assert ab["full"] and cb["full"] and cb["sent_unread"] == 0, cb
    # c's lane is empty, but b is full: c's requests go by node, refused
    tc = threading.Thread(target=flood, args=(C, 10, "c"))
    tc.start()
    tc.join(30)
    ta.join(30)
    assert got["c"] == "flood ok=0 errors=0 busy=10", got
    assert got["a"] == "flood ok=64 errors=0 busy=136", got
    assert ps(n)[B]["queued"] == 0
    # b answers as before
    assert n.ask(A, f"ask our@{B} 5 k echo fine") == \
        f"reply from {NODE}@{B} ctx=k: fine"
    log = n.log()
    assert ("refused: target mailbox is full; the sender is answered Busy"
            in log), log
