"""Node-to-node networking (net:distro:sys) between real nodes over
loopback TCP: the Noise handshake with signed payloads, KernelMessages in
encrypted chunks, Hyperware's rules for who may talk to other nodes, and
its Offline rules.  Each node writes its own entry (name, networking key,
address, port) to <home>/net/identity.json; the tests give each node the
others' entries in its peers file, which the node re-reads when it
changes."""
import json
import os
import time

import pytest

from conftest import free_port, needs_fibers, pid

NET = pid("net")  # tpkg's process with "request_networking": true


def entry(node):
    with open(os.path.join(node.home, "net", "identity.json")) as f:
        return json.load(f)


def write_peers(path, entries):
    with open(path + ".new", "w") as f:
        json.dump(entries, f)
    os.replace(path + ".new", path)


def ask(node, process, text, timeout=10):
    rep = node.inject(process, text, timeout=timeout)
    assert rep.get("ok"), rep
    return rep["body"]


def ask_until(node, process, text, want_prefix, timeout=10):
    """The peers file is re-read within a second of a change: ask until
    the answer starts as wanted."""
    deadline = time.monotonic() + timeout
    while True:
        body = ask(node, process, text)
        if body.startswith(want_prefix):
            return body
        assert time.monotonic() < deadline, body
        time.sleep(0.2)


def two_nodes(node_factory, tmp_path, a_extra=(), b_extra=(),
              packages=("tpkg",), a_port="--net-port", b_port="--net-port"):
    """Nodes a.os and b.os, each knowing the other; each offers the
    transport its *_port flag names (--net-port: TCP, --net-ws-port:
    WebSocket)."""
    pa, pb = str(tmp_path / "peers-a.json"), str(tmp_path / "peers-b.json")
    write_peers(pa, [])
    write_peers(pb, [])
    port_a, port_b = free_port(), free_port()
    a = node_factory(name="a.os", packages=packages,
                     extra=(a_port, str(port_a), "--peers", pa, *a_extra))
    b = node_factory(name="b.os", packages=packages,
                     extra=(b_port, str(port_b), "--peers", pb, *b_extra))
    write_peers(pa, [entry(b)])
    write_peers(pb, [entry(a)])
    return a, b, pa, pb


def peer_hello(node, peer, text):
    """A hand-driven peer says hello to `node` (a.os) and gets its ack."""
    peer.send_message(peer.kernel_message(
        "evil.os@hi:terminal:sys", "a.os@net:distro:sys", text.encode(),
        rsvp="evil.os@hi:terminal:sys"))
    got = peer.recv_message()
    assert got[1] == "a.os@net:distro:sys"
    assert got[4]["Response"][0][1] in (b"ack", [97, 99, 107])
    node.wait_log("evil.os: " + text)


def hello(node, to, text, timeout=5):
    return node.call({"op": "inject", "process": "net:distro:sys",
                      "node": to, "body": text,
                      "expects_response": timeout})


def test_identity_written_and_kept(node_factory, tmp_path):
    port = free_port()
    a = node_factory(name="a.os", extra=("--net-port", str(port)))
    e = entry(a)
    assert e["name"] == "a.os" and e["ports"] == {"tcp": port}
    assert len(e["public_key"]) == 64
    key = os.path.join(a.home, "net", "networking_key.pem")
    assert os.stat(key).st_mode & 0o777 == 0o600
    a.stop()
    # the same key after a restart
    a2 = node_factory(name="a.os", home=a.home,
                      extra=("--net-port", str(port)))
    assert entry(a2)["public_key"] == e["public_key"]


def test_hello_ack_both_ways(node_factory, tmp_path):
    a, b, _, _ = two_nodes(node_factory, tmp_path)
    deadline = time.monotonic() + 10
    while True:
        rep = hello(a, "b.os", "hello from a")
        if rep.get("ok"):
            break
        assert time.monotonic() < deadline, rep
        time.sleep(0.2)
    assert rep["body"] == "ack"
    b.wait_log("a.os: hello from a")
    rep = hello(b, "a.os", "hello from b")
    assert rep.get("ok") and rep["body"] == "ack", rep
    a.wait_log("b.os: hello from b")


def test_remote_request_and_response(node_factory, tmp_path):
    a, b, _, _ = two_nodes(node_factory, tmp_path)
    got = ask_until(a, NET, "ask b.os@net:tpkg:test.os 5 c1 echo hello",
                    "reply from")
    assert got == "reply from b.os@net:tpkg:test.os ctx=c1: hello"
    # and the other way, on the same connection
    got = ask(b, NET, "ask a.os@net:tpkg:test.os 5 c2 whoami")
    assert got == "reply from a.os@net:tpkg:test.os ctx=c2: a.os@net:tpkg:test.os"


def test_a_full_mailbox_answers_a_remote_caller_busy(node_factory, tmp_path):
    """A request from another node into a full mailbox is answered Busy
    over the network at once, as it is for a caller on the same node,
    rather than left to the caller's timeout."""
    a, b, _, _ = two_nodes(node_factory, tmp_path,
                           b_extra=("--mailbox-max", "4"))
    ask_until(a, NET, "ask b.os@net:tpkg:test.os 5 c1 echo hello",
              "reply from")
    # b's net holds its thread 5 s; 20 requests from a's net come meanwhile
    assert b.inject(NET, "sleep 5000", non_block=True)["ok"]
    time.sleep(0.3)
    t0 = time.monotonic()
    got = ask(a, NET, "flood b.os@net:tpkg:test.os 20 20 echo x", timeout=60)
    took = time.monotonic() - t0
    ok, errors, busy = [int(x.split("=")[1]) for x in got.split()[1:]]
    assert ok + errors + busy == 20, got
    assert errors == 0, got  # none left to time out
    assert busy >= 20 - 4 - 1 and ok >= 3, got  # the queued were served
    assert took < 15, took  # well before the requests' 20 s
    a.wait_log('first busy: {"HypercError":{"kind":"Busy","message":"the '
               f'mailbox of {NET} is full (4 requests queued)')
    b.wait_log(f"request a.os@{NET} -> b.os@{NET} refused: target mailbox "
               "is full; the sender is answered Busy")


def test_one_megabyte_each_way(node_factory, tmp_path):
    a, b, _, _ = two_nodes(node_factory, tmp_path)
    ask_until(a, NET, "ask b.os@net:tpkg:test.os 5 w echo warm", "reply from")
    big = "x" * 1_000_000
    got = ask(a, NET, "ask b.os@net:tpkg:test.os 20 big echo " + big,
              timeout=30)
    assert got.startswith("reply from b.os@net:tpkg:test.os ctx=big: xxxx"), \
        got[:200]


def test_calls_one_at_a_time_and_bursts_share_a_connection(node_factory,
                                                          tmp_path):
    """A message that finds nothing queued and comes after a pause is
    written by its sender's thread; those of a burst are queued for the
    connection's thread.  Both ways write into one encrypted stream, whose
    chunks must go out in the order they were encrypted: round trips one at
    a time, then a burst (answered as fast as the other side can, some of
    the answers Busy), alternately, each way, on the one connection; every
    call is answered and the connection is never replaced."""
    a, b, _, _ = two_nodes(node_factory, tmp_path, a_extra=("-v", "2"),
                           b_extra=("-v", "2"))
    ask_until(a, NET, "ask b.os@net:tpkg:test.os 5 w echo warm", "reply from")
    for node, peer in ((a, "b.os"), (b, "a.os"), (a, "b.os")):
        target = peer + "@net:tpkg:test.os"
        assert ask(node, NET, f"pingpong {target} 200", timeout=60) == \
            "done 200"
        got = ask(node, NET, f"flood {target} 300 20 echo y", timeout=60)
        counts = dict(x.split("=") for x in got.split()[1:])
        assert counts["errors"] == "0", got
        assert int(counts["ok"]) + int(counts["busy"]) == 300, got
        assert int(counts["ok"]) > 0, got
    for node in (a, b):
        log = node.log()
        assert log.count("net: connected to") == 1, log[-3000:]


@needs_fibers
def test_idle_scheduler_threads_read_the_connection(node_factory,
                                                    tmp_path):
    """With in-process processes on scheduler threads, an idle scheduler
    thread waits on the connections (the netpoller) and reads, decrypts and
    delivers what comes itself, while the connection's thread (and senders'
    threads) write into the same encrypted stream: round trips and bursts
    each way, every call answered, the connection never replaced (a chunk
    read out of order would not decrypt), and each node says its scheduler
    threads read."""
    flags = ("--in-process", "--schedulers", "2", "-v", "2")
    a, b, _, _ = two_nodes(node_factory, tmp_path, a_extra=flags,
                           b_extra=flags)
    ask_until(a, NET, "ask b.os@net:tpkg:test.os 5 w echo warm", "reply from")
    for node, peer in ((a, "b.os"), (b, "a.os"), (a, "b.os")):
        target = peer + "@net:tpkg:test.os"
        assert ask(node, NET, f"pingpong {target} 300", timeout=60) == \
            "done 300"
        got = ask(node, NET, f"flood {target} 300 20 echo y", timeout=60)
        counts = dict(x.split("=") for x in got.split()[1:])
        assert counts["errors"] == "0", got
        assert int(counts["ok"]) + int(counts["busy"]) == 300, got
    for node in (a, b):
        node.wait_log("read by an idle scheduler thread (netpoller)")
        log = node.log()
        assert log.count("net: connected to") == 1, log[-3000:]


@needs_fibers
def test_the_connection_is_read_while_the_only_scheduler_computes(
        node_factory, tmp_path):
    """Once the netpoller reads a connection, its own thread no longer
    does: while b.os's only scheduler thread is held by a process that
    computes for 4 s, the watchdog hands the scheduler to another thread,
    which parks in the netpoller and reads, so remote calls to b.os are
    answered meanwhile, not after the computation."""
    flags = ("--in-process", "--schedulers", "1", "-v", "2")
    a, b, _, _ = two_nodes(node_factory, tmp_path, a_extra=flags,
                           b_extra=flags)
    ask_until(a, NET, "ask b.os@net:tpkg:test.os 5 w echo warm", "reply from")
    # (the netpoller watches from the first message on; the next is its)
    ask(a, NET, "ask b.os@net:tpkg:test.os 5 w2 echo warm")
    b.wait_log("read by an idle scheduler thread (netpoller)")
    b.inject(pid("slow"), "compute 4000", non_block=True)
    time.sleep(0.3)
    t0 = time.monotonic()
    for i in range(10):
        assert ask(a, NET, f"ask b.os@net:tpkg:test.os 5 k{i} echo q{i}") == \
            f"reply from b.os@net:tpkg:test.os ctx=k{i}: q{i}"
    took = time.monotonic() - t0
    assert took < 2.5, took  # (a loaded machine's slowness; not 3.7 s)
    assert b.ask(pid("slow"), "echo done", timeout=15) == "done"


def test_network_capability(node_factory, tmp_path):
    a, b, _, _ = two_nodes(node_factory, tmp_path)
    ask_until(a, NET, "ask b.os@net:tpkg:test.os 5 w echo warm", "reply from")
    # a sender without it: a timeout at once, nothing leaves the node
    t0 = time.monotonic()
    got = ask(a, pid("c"), "ask b.os@net:tpkg:test.os 30 c3 echo x")
    assert got.startswith("error timeout target=b.os@net:tpkg:test.os ctx=c3")
    assert time.monotonic() - t0 < 5
    a.wait_log("sender lacks the network capability")
    # a target without it: the message is dropped there, the sender times
    # out
    got = ask(a, NET, "ask b.os@c:tpkg:test.os 2 c4 echo x")
    assert got.startswith("error timeout target=b.os@c:tpkg:test.os ctx=c4")
    b.wait_log("the target lacks the network capability")


PRIV = "privnet:tpkg:test.os"  # networking, not public
MESSAGING = '"messaging"'


@pytest.mark.parametrize("isolate", [(), ("--isolate",)],
                         ids=["in-process", "isolated"])
def test_a_private_process_hears_only_holders_of_its_capability(
        node_factory, tmp_path, isolate):
    """hyperc is stricter than Hyperware here: a process that is not public
    hears another node only from a sender that shows the messaging
    capability for it, signed by the target's node.  (Isolated, the
    capability is saved through the worker's link.)"""
    a, b, _, _ = two_nodes(node_factory, tmp_path, a_extra=isolate,
                           b_extra=isolate)
    ask_until(a, NET, "ask b.os@net:tpkg:test.os 5 w echo warm", "reply from")
    # (a) a plain request: dropped on b.os, the sender times out
    got = ask(a, NET, "ask b.os@%s 2 c1 echo x" % PRIV)
    assert got.startswith("error timeout target=b.os@%s ctx=c1" % PRIV), got
    b.wait_log("a.os@net:tpkg:test.os -> b.os@%s dropped: the target is not "
               "public and the request carries no messaging capability" % PRIV)
    # a capability a.os does not hold is not passed on: refused the same way
    got = ask(a, NET, "askcap b.os@%s 2 c2 b.os@%s %s echo x"
              % (PRIV, PRIV, MESSAGING))
    assert got.startswith("error timeout target=b.os@%s ctx=c2" % PRIV), got
    # (b) the private process hands a.os's process its messaging
    # capability (b.os signs it as it leaves), which saves it ...
    got = ask(b, PRIV, "askcap a.os@net:tpkg:test.os 5 g b.os@%s %s "
              "save-offered" % (PRIV, MESSAGING))
    assert got == "reply from a.os@net:tpkg:test.os ctx=g: saved 1", got
    caps = ask(a, NET, "caps")
    assert "b.os@%s %s" % (PRIV, MESSAGING) in caps.splitlines(), caps
    # ... and shows it back with b.os's signature: heard and answered
    got = ask(a, NET, "askcap b.os@%s 5 c3 b.os@%s %s echo hello"
              % (PRIV, PRIV, MESSAGING))
    assert got == "reply from b.os@%s ctx=c3: hello" % PRIV, got
    # its other requests still need it
    got = ask(a, NET, "ask b.os@%s 2 c4 echo x" % PRIV)
    assert got.startswith("error timeout target=b.os@%s ctx=c4" % PRIV), got
    # a local process without the capability still cannot reach it
    assert ask(b, pid("c"), "ask our@%s 2 c5 echo x" % PRIV).startswith(
        "error timeout")
    assert b.log().count("carries no messaging capability") == 3


def test_a_capability_with_a_broken_signature_is_refused(node_factory,
                                                           tmp_path):
    import msgpack
    a, b, evil, port = evil_setup(node_factory, tmp_path)
    evil.connect(port).handshake()
    cap = [["a.os@" + PRIV, MESSAGING], [0] * 64]
    evil.send_message(msgpack.packb(
        [7, "evil.os@hi:terminal:sys", "a.os@" + PRIV, None,
         {"Request": [False, 5, list(b"echo forged"), None, [cap]]}, None]))
    a.wait_log("evil.os@hi:terminal:sys -> a.os@%s dropped: the target is "
               "not public" % PRIV)
    # the connection and the node serve on
    peer_hello(a, evil, "still here")
    evil.close()
    still_fine(a, b)


def test_unknown_node_is_offline_at_once(node_factory, tmp_path):
    a, b, _, _ = two_nodes(node_factory, tmp_path)
    t0 = time.monotonic()
    got = ask(a, NET, "ask nobody.os@net:tpkg:test.os 30 c5 echo x")
    assert got.startswith("error offline target=nobody.os@net:tpkg:test.os")
    assert time.monotonic() - t0 < 5


def test_stopped_node_offline_then_back(node_factory, tmp_path):
    a, b, _, pb = two_nodes(node_factory, tmp_path)
    ask_until(a, NET, "ask b.os@net:tpkg:test.os 5 w echo warm", "reply from")
    port_b = entry(b)["ports"]["tcp"]
    b.stop()
    # the connection is gone; dialing again is refused: Offline, at once
    t0 = time.monotonic()
    got = ask_until(a, NET, "ask b.os@net:tpkg:test.os 30 c6 echo x",
                    "error offline")
    assert time.monotonic() - t0 < 10
    # back on the same port with the same key: reachable again
    node_factory(name="b.os", home=b.home,
                 extra=("--net-port", str(port_b), "--peers", pb))
    got = ask_until(a, NET, "ask b.os@net:tpkg:test.os 5 c7 echo again",
                    "reply from")
    assert got == "reply from b.os@net:tpkg:test.os ctx=c7: again"


def test_killed_node_timeout_in_flight_then_offline_then_back(node_factory,
                                                              tmp_path):
    """b.os is killed (SIGKILL) while a request of a.os's waits for its
    answer: the connection drops and that sender gets its own timeout,
    not Offline; the next message finds b.os offline; b.os started again
    (same home, key and port) is reachable again."""
    import signal
    import threading
    a, b, _, pb = two_nodes(node_factory, tmp_path)
    ask_until(a, NET, "ask b.os@net:tpkg:test.os 5 w echo warm", "reply from")
    port_b = entry(b)["ports"]["tcp"]
    got = {}
    t = threading.Thread(target=lambda: got.update(r=ask(
        a, NET, "ask b.os@net:tpkg:test.os 3 d1 sleep 2000", timeout=20)))
    t.start()
    time.sleep(0.7)  # (delivered: b's process sleeps on it)
    b.proc.send_signal(signal.SIGKILL)
    b.proc.wait()
    t.join(30)
    assert got["r"].startswith(
        "error timeout target=b.os@net:tpkg:test.os ctx=d1"), got
    got = ask_until(a, NET, "ask b.os@net:tpkg:test.os 30 d2 echo x",
                    "error offline")
    assert got.startswith("error offline target=b.os@net:tpkg:test.os"), got
    node_factory(name="b.os", home=b.home,
                 extra=("--net-port", str(port_b), "--peers", pb))
    got = ask_until(a, NET, "ask b.os@net:tpkg:test.os 5 d3 echo again",
                    "reply from")
    assert got == "reply from b.os@net:tpkg:test.os ctx=d3: again"


def test_wrong_key_is_refused(node_factory, tmp_path):
    """a.os is told a key for b.os that is not b's: b's handshake
    signature does not verify, the connection ends, the message is
    Offline."""
    a, b, pa, _ = two_nodes(node_factory, tmp_path)
    forged = entry(b)
    forged["public_key"] = entry(a)["public_key"]
    write_peers(pa, [forged])
    time.sleep(1.1)  # a new second: the file is looked at again
    got = ask(a, NET, "ask b.os@net:tpkg:test.os 30 c8 echo x")
    assert got.startswith("error offline"), got
    a.wait_log("connection to b.os: bad signature")
    # only that connection paid: both nodes serve on
    assert ask(a, NET, "echo alive") == "alive"
    assert ask(b, NET, "echo alive") == "alive"


# ------------------------------------------------------- WebSocket

WS = "--net-ws-port"


def test_websocket_nodes_both_ways(node_factory, tmp_path):
    """Two nodes that offer only WebSocket (as hyperdrive's development
    nodes do): hello, a request both ways on one connection, a megabyte
    in many chunks."""
    a, b, _, _ = two_nodes(node_factory, tmp_path, a_port=WS, b_port=WS)
    assert set(entry(a)["ports"]) == {"ws"}
    got = ask_until(a, NET, "ask b.os@net:tpkg:test.os 5 c1 echo hello",
                    "reply from")
    assert got == "reply from b.os@net:tpkg:test.os ctx=c1: hello"
    got = ask(b, NET, "ask a.os@net:tpkg:test.os 5 c2 whoami")
    assert got == "reply from a.os@net:tpkg:test.os ctx=c2: a.os@net:tpkg:test.os"
    rep = hello(b, "a.os", "hello over ws")
    assert rep.get("ok") and rep["body"] == "ack", rep
    big = "y" * 1_000_000
    got = ask(a, NET, "ask b.os@net:tpkg:test.os 20 big echo " + big,
              timeout=30)
    # (the test process shows the first KiB of a reply; every chunk is
    # authenticated, so a megabyte that arrives arrived whole)
    assert got.startswith("reply from b.os@net:tpkg:test.os ctx=big: yyyy"), \
        got[:200]
    # one connection carried everything
    for n in (a, b):
        body, _ = net_action(n, "GetDiagnostics")
        assert "ws port" in body["Diagnostics"]
        assert "with 1 peers (1 connections open" in body["Diagnostics"], \
            body


def test_tcp_node_dials_a_websocket_node(node_factory, tmp_path):
    """a.os offers TCP, b.os only WebSocket: a dials b over WebSocket and
    b answers on that connection."""
    a, b, _, _ = two_nodes(node_factory, tmp_path, b_port=WS)
    got = ask_until(a, NET, "ask b.os@net:tpkg:test.os 5 c1 echo mixed",
                    "reply from")
    assert got == "reply from b.os@net:tpkg:test.os ctx=c1: mixed"


def test_hand_driven_websocket_peer(node_factory, tmp_path):
    """An independent WebSocket client (python3-wsproto) shakes hands with
    the node's WebSocket port, is heard, and is answered; a text frame and
    an oversized frame each end only their own connection."""
    from noise_peer import WsPeer
    a, b, _, pb = two_nodes(node_factory, tmp_path, a_port=WS)
    evil = WsPeer("evil.os")
    pa = str(tmp_path / "peers-a.json")
    write_peers(pa, [entry(b), evil.entry()])
    port = entry(a)["ports"]["ws"]
    time.sleep(1.1)
    evil.connect(port).handshake()
    assert evil.their_name == "a.os"
    peer_hello(a, evil, "hi over ws")
    # a text frame ends the connection
    from wsproto.events import TextMessage
    evil.send_raw(evil.ws.send(TextMessage(data="hello?")))
    assert evil.closed_by_node()
    a.wait_log("a text frame")
    # a frame longer than one encrypted chunk ends it too
    evil2 = WsPeer("evil.os")
    evil2.key = evil.key
    evil2.connect(port).handshake()
    from wsproto.events import BytesMessage
    evil2.send_raw(evil2.ws.send(BytesMessage(data=b"z" * 70000)))
    assert evil2.closed_by_node()
    # not an upgrade at all: a 400, and the node serves on
    import socket
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert s.recv(100).startswith(b"HTTP/1.1 400")
    s.close()
    assert ask(a, NET, "echo alive") == "alive"
    assert ask_until(a, NET, "ask b.os@net:tpkg:test.os 5 ok echo fine",
                     "reply from") == \
        "reply from b.os@net:tpkg:test.os ctx=ok: fine"


def test_tcp_keepalive_every_30_s(node_factory, tmp_path):
    """Both ends of a TCP link set TCP keep-alive at 30 s (hyperdrive's
    socket2 settings): `ss` shows each socket's keep-alive timer, due
    within 30 s (the system default would be two hours)."""
    import re
    import subprocess
    a, b, _, _ = two_nodes(node_factory, tmp_path)
    ask_until(a, NET, "ask b.os@net:tpkg:test.os 5 w echo warm", "reply from")
    port_b = entry(b)["ports"]["tcp"]
    # (a socket with bytes not yet acknowledged shows its retransmission
    # timer instead: look again until both are idle)
    deadline = time.monotonic() + 10
    while True:
        out = subprocess.run(
            ["ss", "-tnoH", "state", "established",
             f"( sport = :{port_b} or dport = :{port_b} )"],
            capture_output=True, text=True, check=True).stdout
        lines = [ln for ln in out.splitlines() if ln.strip()]
        assert len(lines) == 2, out  # the dialer's end and the acceptor's
        if all("timer:(keepalive" in ln for ln in lines) or \
                time.monotonic() > deadline:
            break
        time.sleep(0.2)
    for ln in lines:
        m = re.search(r"timer:\(keepalive,(?:(\d+)min)?([\d.]+)(m?s)ec", ln)
        assert m, ln
        secs = int(m.group(1) or 0) * 60 + float(m.group(2)) / (
            1000 if m.group(3) == "ms" else 1)
        assert 0 < secs <= 30, ln


def test_a_connection_lives_its_lifetime_whatever_its_traffic(
        node_factory, tmp_path, monkeypatch):
    """A connection ends when its lifetime from its start is over (30
    minutes, as hyperdrive's IDLE_TIMEOUT; a.os is given 3 s here), even
    while it carries traffic; the next message dials again, and calls go
    on being answered."""
    monkeypatch.setenv("HYPERC_NET_LIFETIME_S", "3")
    pa, pb = str(tmp_path / "peers-a.json"), str(tmp_path / "peers-b.json")
    write_peers(pa, [])
    write_peers(pb, [])
    a = node_factory(name="a.os", extra=("--net-port", str(free_port()),
                                         "--peers", pa, "-v", "2"))
    monkeypatch.delenv("HYPERC_NET_LIFETIME_S")
    b = node_factory(name="b.os", extra=("--net-port", str(free_port()),
                                         "--peers", pb, "-v", "2"))
    write_peers(pa, [entry(b)])
    write_peers(pb, [entry(a)])
    ask_until(a, NET, "ask b.os@net:tpkg:test.os 5 w echo warm", "reply from")
    t0 = time.monotonic()
    replies = 0
    while "its lifetime ended" not in a.log():
        assert time.monotonic() - t0 < 10, a.log()[-3000:]
        got = ask(a, NET, "ask b.os@net:tpkg:test.os 5 t echo busy")
        replies += got.startswith("reply from")
        time.sleep(0.05)
    assert 2 < time.monotonic() - t0, a.log()[-3000:]
    assert replies >= 3  # (it carried calls until it ended)
    a.wait_log("net: connection to b.os: its lifetime ended")
    assert ask_until(a, NET, "ask b.os@net:tpkg:test.os 5 n echo next",
                     "reply from") == \
        "reply from b.os@net:tpkg:test.os ctx=n: next"
    a.wait_log("net: connected to b.os", count=2)


def test_websocket_ping_after_30_s_without_writes(node_factory, tmp_path):
    """A WebSocket link on which the node has written nothing for 30 s
    gets a ping from it, as hyperdrive's writer sends one."""
    from noise_peer import WsPeer
    from wsproto.events import Ping
    a, b, _, _ = two_nodes(node_factory, tmp_path, a_port=WS)
    evil = WsPeer("evil.os")
    pa = str(tmp_path / "peers-a.json")
    write_peers(pa, [entry(b), evil.entry()])
    time.sleep(1.1)
    evil.connect(entry(a)["ports"]["ws"]).handshake()
    peer_hello(a, evil, "then nothing")  # a writes its ack: the last write
    t0 = time.monotonic()
    evil.sock.settimeout(60)
    ev = evil._event()
    took = time.monotonic() - t0
    assert isinstance(ev, Ping), ev
    assert 28 < took < 45, took
    # answered, the link goes on
    evil.send_raw(evil.ws.send(ev.response()))
    peer_hello(a, evil, "still here")


# ------------------------------------------------------- the framework

APP = "async-app"
REQUESTER = "requester:async-app:hyperc.os"
RECEIVER = "receiver:async-app:hyperc.os"


def remote_probe(node, target, increment=False):
    """async-app's requester calls `target`'s receiver through the
    generated remote stub; what it says."""
    body = json.dumps({"RemoteProbe": [target, 5, increment]})
    return json.loads(node.ask(REQUESTER, body, timeout=30))


def probe_until(node, target, want, timeout):
    """remote_probe with increment until it says `want` (the peers file is
    read, the connection made, or a router's link set up meanwhile)."""
    deadline = time.monotonic() + timeout
    while True:
        got = remote_probe(node, target, True)
        if got == want or time.monotonic() > deadline:
            return got
        time.sleep(0.2)


@pytest.mark.parametrize("transport", ["--net-port", "--net-ws-port"])
def test_remote_stubs_between_nodes(node_factory, tmp_path, transport):
    """Generated `_remote_rpc` stubs reach a hyperprocess on another node,
    over TCP and over WebSocket; a handler that is local only refuses a
    call from another node with a typed error, and the process serves
    on."""
    a, b, _, _ = two_nodes(node_factory, tmp_path, packages=("tpkg", APP),
                           a_port=transport, b_port=transport)
    a.wait_log("the receiver's count at start")
    b.wait_log("the receiver's count at start")

    assert probe_until(a, "b.os@" + RECEIVER, "Ok 1", 10) == "Ok 1"
    assert remote_probe(a, "b.os@" + RECEIVER) == "Ok 1"
    # the other way; b's receiver was the one counted, not a's
    assert remote_probe(b, "a.os@" + RECEIVER) == "Ok 0"
    assert b.ask(RECEIVER, '"GetCount"') == "1"
    b.wait_log("incremented by 1 (remote probe)")
    # hp_source() in b's handler named the caller on a.os
    b.wait_log("(that call came from a.os@requester:async-app:hyperc.os)")
    assert "(that call came from" not in a.log()
    # Offline and Timeout stay apart in the typed result
    assert remote_probe(a, "nobody.os@" + RECEIVER) == (
        "Offline: nobody.os@receiver:async-app:hyperc.os is offline")
    # and a process on b.os without the network capability drops the
    # call, and the stub's caller sees Timeout (after the 5 s it gave)
    got = remote_probe(a, "b.os@c:tpkg:test.os")
    assert got == "Timeout: no reply from b.os@c:tpkg:test.os within 5 s", got
    # a local-only handler (Probe) called from another node: refused with a
    # reply that says so
    got = ask(a, NET, 'ask b.os@requester:async-app:hyperc.os 5 c10 '
                      '{"Probe":["our@receiver:async-app:hyperc.os",1,false]}')
    assert got.startswith("reply from b.os@requester:async-app:hyperc.os "
                          "ctx=c10: "), got
    assert "may not be called from another node" in got, got
    assert json.loads(b.ask(REQUESTER, '"GetCount"')) >= 0


# ------------------------------------------------------- bad peers

def evil_setup(node_factory, tmp_path, evil_name="evil.os"):
    """Node a.os that knows b.os (real) and a hand-driven peer."""
    from noise_peer import Peer
    a, b, pa, pb = two_nodes(node_factory, tmp_path)
    evil = Peer(evil_name)
    write_peers(pa, [entry(b), evil.entry()])
    ask_until(a, NET, "ask b.os@net:tpkg:test.os 5 w echo warm", "reply from")
    return a, b, evil, entry(a)["ports"]["tcp"]


def still_fine(a, b):
    """The node and its processes serve on; a real peer still gets through."""
    assert ask(a, NET, "echo alive") == "alive"
    assert ask(a, NET, "ask b.os@net:tpkg:test.os 5 ok echo fine") == \
        "reply from b.os@net:tpkg:test.os ctx=ok: fine"


def test_a_good_hand_driven_peer_is_heard(node_factory, tmp_path):
    """The test peer itself is right: a hello gets its ack."""
    a, b, evil, port = evil_setup(node_factory, tmp_path)
    evil.connect(port).handshake()
    assert evil.their_name == "a.os"
    peer_hello(a, evil, "hi there")
    evil.close()


@pytest.mark.parametrize("transport", ["tcp", "ws"])
def test_the_node_dials_a_hand_driven_peer(node_factory, tmp_path,
                                           transport):
    """The node as initiator, against the test's own Noise responder (over
    TCP, and over WebSocket with python3-wsproto as the server, as a
    hyperdrive development node offers): its first message is exactly 32
    bytes, its payload is [1, name, signature, false] with the signature
    (an array of integers, as rmp-serde writes bytes) its networking key's
    over the static key Noise saw; its hello arrives as a KernelMessage
    (TCP: u32-length framed chunks; WebSocket: the length inside the first
    encrypted message), and the reply the peer writes by hand comes back to
    the sender as "ack"."""
    import socket
    import threading
    import msgpack
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PublicKey)
    from noise_peer import Peer, WsPeer
    a, b, pa, _ = two_nodes(node_factory, tmp_path)
    peer = (Peer if transport == "tcp" else WsPeer)("evil.os")
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(4)
    write_peers(pa, [entry(b), peer.entry(port=ls.getsockname()[1])])
    time.sleep(1.1)
    seen = {}

    def serve():
        ls.settimeout(20)
        conn, _ = ls.accept()
        conn.settimeout(20)
        if transport == "ws":
            peer.accept(conn)
            seen["path"] = peer.request.target
        seen["first"], seen["payload"], seen["rs"] = peer.respond(conn)
        km = peer.recv_message()
        seen["km"] = km
        peer.send_message(msgpack.packb(
            [km[0], "evil.os@net:distro:sys", km[3] or km[1], None,
             {"Response": [[False, list(b"ack"), None, []], None]}, None]))
        time.sleep(1)

    t = threading.Thread(target=serve)
    t.start()
    try:
        rep = hello(a, "evil.os", "hello, responder")
        t.join(30)
        assert rep.get("ok") and rep["body"] == "ack", (rep, seen)
        assert seen["first"] == 32
        version, name, sig, proxy = seen["payload"]
        assert (version, name, proxy) == (1, "a.os", False)
        assert isinstance(sig, list) and len(sig) == 64
        Ed25519PublicKey.from_public_bytes(
            bytes.fromhex(entry(a)["public_key"])).verify(bytes(sig),
                                                          seen["rs"])
        km = seen["km"]
        assert km[1].startswith("a.os@") and \
            km[2] == "evil.os@net:distro:sys", km
        assert bytes(km[4]["Request"][2]) == b"hello, responder", km
        if transport == "ws":
            assert seen["path"] == "/"
    finally:
        ls.close()
        peer.close()


def test_spoofed_source_and_forgeries(node_factory, tmp_path):
    a, b, evil, port = evil_setup(node_factory, tmp_path)
    # a source on another node than the one that shook hands
    evil.connect(port).handshake()
    evil.send_message(evil.kernel_message(
        "b.os@net:tpkg:test.os", "a.os@net:distro:sys", b"i am b"))
    assert evil.closed_by_node()
    a.wait_log("connection from evil.os: a spoofed source node")
    # a process name that is not hypermap-safe
    evil.connect(port).handshake()
    evil.send_message(evil.kernel_message(
        "evil.os@Bad_Name:p:u", "a.os@net:distro:sys", b"x"))
    assert evil.closed_by_node()
    a.wait_log("a source address that is not hypermap-safe")
    # a handshake signed by a key the PKI does not give for the name
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey)
    evil.connect(port)
    try:
        evil.handshake(sign_with=Ed25519PrivateKey.generate())
    except ConnectionError:
        pass
    assert evil.closed_by_node()
    a.wait_log("connection from an unknown node: bad signature")
    # a name the PKI does not know
    evil.connect(port)
    try:
        evil.handshake(name="stranger.os")
    except ConnectionError:
        pass
    assert evil.closed_by_node()
    a.wait_log("unknown name (not in the PKI)")
    # a protocol version other than 1, rightly signed
    evil.connect(port)
    try:
        evil.handshake(version=2)
    except ConnectionError:
        pass
    assert evil.closed_by_node()
    a.wait_log("protocol version is not 1")
    still_fine(a, b)
    # each refusal was logged once, with its reason
    log = a.log()
    for why in ("a spoofed source node", "not hypermap-safe",
                "connection from an unknown node: bad signature",
                "unknown name (not in the PKI)", "protocol version is not 1"):
        assert log.count(why) == 1, (why, log[-3000:])


def test_bad_frames_cost_only_their_connection(node_factory, tmp_path):
    import struct
    a, b, evil, port = evil_setup(node_factory, tmp_path)
    # a length prefix past 10,485,800 bytes: refused at once
    evil.connect(port).handshake()
    evil.send_raw(struct.pack(">I", 10_485_801))
    assert evil.closed_by_node()
    a.wait_log("a message length over 10,485,800 bytes")
    # msgpack that is no KernelMessage
    evil.connect(port).handshake()
    evil.send_message(b"\x93\x01\x02")
    assert evil.closed_by_node()
    a.wait_log("garbage msgpack")
    # a chunk sent twice (replayed): its nonce is spent
    evil.connect(port).handshake()
    m = evil.kernel_message("evil.os@x:y:z", "a.os@net:distro:sys", b"once",
                            expects=None)
    f = evil.frame(m)
    evil.send_raw(f + f)
    assert evil.closed_by_node()
    a.wait_log("evil.os: once")
    a.wait_log("fails authentication")
    # a chunk that claims more than its message holds
    evil.connect(port).handshake()
    evil.send_raw(struct.pack(">IH", 5, 100) + b"\0" * 100)
    assert evil.closed_by_node()
    a.wait_log("a chunk that runs past its message")
    # a first message that is not a handshake (a routing request)
    evil.connect(port)
    evil.send16(b"x" * 40)
    assert evil.closed_by_node()
    a.wait_log("a routing request")
    still_fine(a, b)


def test_stalled_handshake_and_a_flood(node_factory, tmp_path):
    import socket
    a, b, evil, port = evil_setup(node_factory, tmp_path)
    # connect and say nothing: dropped after 5 s
    evil.connect(port)
    t0 = time.monotonic()
    assert evil.closed_by_node(timeout=15)
    assert 4 < time.monotonic() - t0 < 12
    a.wait_log("the handshake took over 5 s")
    # more connections than the node keeps: the rest are closed at once,
    # and the node serves on (an established peer keeps its connection)
    socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(80)]
    a.wait_log("a connection refused: 64 open")
    still_fine(a, b)
    for s in socks:
        s.close()


# ------------------------------------------------------- NetAction

def net_action(node, action, blob=None, expects=5):
    """Send net:distro:sys a NetAction (msgpack) as the injector; the
    decoded NetResponse and the reply's blob bytes (None when no answer is
    expected)."""
    import base64
    import msgpack
    req = {"op": "inject", "process": "net:distro:sys",
           "body_b64": base64.b64encode(msgpack.packb(action)).decode(),
           "expects_response": expects}
    if blob is not None:
        req["blob_b64"] = base64.b64encode(blob).decode()
    rep = node.call(req, timeout=30)
    if not expects:
        return None, None
    assert rep.get("ok"), rep
    body = msgpack.unpackb(base64.b64decode(rep["body_b64"]))
    got = rep.get("blob")
    return body, (base64.b64decode(got["b64"]) if got else None)


def test_net_actions_feed_and_answer(node_factory, tmp_path):
    """Local processes feed the PKI with HnsUpdates (as hns-indexer does)
    and ask net:distro:sys for peers, signatures and checks."""
    a, b, pa, _ = two_nodes(node_factory, tmp_path)
    write_peers(pa, [])  # a forgets b ...
    time.sleep(1.1)
    got = ask(a, NET, "ask b.os@net:tpkg:test.os 5 n1 echo x")
    assert got.startswith("error offline"), got
    eb = entry(b)
    # ... and learns it again from an HnsUpdate
    net_action(a, {"HnsUpdate": [eb["name"], "0x" + eb["public_key"],
                                 eb["ips"], eb["ports"], []]}, expects=None)
    # (a request after it in net:distro:sys's mailbox: the update is in
    # once it is answered; the remote send below does not pass through
    # that mailbox)
    body, _ = net_action(a, {"GetPeer": "b.os"})
    assert body["Peer"][0] == "b.os", body
    assert ask(a, NET, "ask b.os@net:tpkg:test.os 5 n2 echo back") == \
        "reply from b.os@net:tpkg:test.os ctx=n2: back"
    # an HnsUpdate entry outlives a change of the peers file
    write_peers(pa, [])
    time.sleep(1.1)
    assert ask(a, NET, "ask b.os@net:tpkg:test.os 5 n3 echo kept") == \
        "reply from b.os@net:tpkg:test.os ctx=n3: kept"
    # GetPeer: b as the PKI has it, ourselves, and someone unknown
    body, _ = net_action(a, {"GetPeer": "b.os"})
    assert body == {"Peer": ["b.os", eb["public_key"],
                             {"Direct": ["127.0.0.1", eb["ports"]]}]}
    body, _ = net_action(a, {"GetPeer": "a.os"})
    assert body["Peer"][0] == "a.os"
    assert body["Peer"][1] == entry(a)["public_key"]
    body, _ = net_action(a, {"GetPeer": "nobody.os"})
    assert body == {"Peer": None}
    # GetPeers: the nodes we are connected with
    body, _ = net_action(a, "GetPeers")
    assert [p[0] for p in body["Peers"]] == ["b.os"]
    body, _ = net_action(a, "GetDiagnostics")
    assert "connections with 1 peers" in body["Diagnostics"]
    # Sign: our key over the sender's address and the blob; Verify checks
    # it, and not an altered blob
    body, sig = net_action(a, "Sign", blob=b"some data")
    assert body == "Signed" and len(sig) == 64
    me = "a.os@terminal:terminal:sys"
    body, _ = net_action(a, {"Verify": [me, list(sig)]}, blob=b"some data")
    assert body == {"Verified": True}
    body, _ = net_action(a, {"Verify": [me, list(sig)]}, blob=b"other data")
    assert body == {"Verified": False}
    # b checks a's signature with the key its PKI has for a
    body, _ = net_action(b, {"Verify": [me, list(sig)]}, blob=b"some data")
    assert body == {"Verified": True}
    # something that is no NetAction: logged, the node serves on
    a.call({"op": "inject", "process": "net:distro:sys", "body": "GetPeers",
            "expects_response": None})
    a.wait_log("is not a NetAction")
    assert ask(a, NET, "echo alive") == "alive"


def test_hns_batch_update_and_updates_from_other_nodes(node_factory,
                                                      tmp_path):
    """An HnsBatchUpdate from a local process feeds several entries at
    once, a direct one and an indirect one (as hns-indexer sends them);
    the same NetAction from another node is refused, as hyperdrive
    refuses it, and changes nothing."""
    import base64
    import msgpack
    a, b, pa, _ = two_nodes(node_factory, tmp_path)
    write_peers(pa, [])  # a forgets b
    time.sleep(1.1)
    got = ask(a, NET, "ask b.os@net:tpkg:test.os 5 h1 echo x")
    assert got.startswith("error offline"), got
    eb = entry(b)
    key = "ab" * 32
    net_action(a, {"HnsBatchUpdate": [
        [eb["name"], eb["public_key"], eb["ips"], eb["ports"], []],
        ["c.os", "0x" + key, [], {}, ["b.os"]]]}, expects=None)
    body, _ = net_action(a, {"GetPeer": "b.os"})
    assert body == {"Peer": ["b.os", eb["public_key"],
                             {"Direct": ["127.0.0.1", eb["ports"]]}]}, body
    body, _ = net_action(a, {"GetPeer": "c.os"})
    assert body["Peer"][0] == "c.os" and body["Peer"][2] == \
        {"Routers": ["b.os"]}, body
    assert ask(a, NET, "ask b.os@net:tpkg:test.os 5 h2 echo back") == \
        "reply from b.os@net:tpkg:test.os ctx=h2: back"
    # b.os tells a.os's net:distro:sys about a node: refused, logged
    for action in ({"HnsUpdate": ["x.os", key, ["127.0.0.1"], {"tcp": 1},
                                  []]},
                   {"HnsBatchUpdate": [["y.os", key, ["127.0.0.1"],
                                        {"tcp": 1}, []]]}):
        b.call({"op": "inject", "process": "net:distro:sys", "node": "a.os",
                "body_b64": base64.b64encode(msgpack.packb(action)).decode(),
                "expects_response": None})
    a.wait_log("net: b.os may not update our PKI (refused)", count=2)
    for name in ("x.os", "y.os"):
        body, _ = net_action(a, {"GetPeer": name})
        assert body == {"Peer": None}, body
    assert ask(a, NET, "ask b.os@net:tpkg:test.os 5 h3 echo still") == \
        "reply from b.os@net:tpkg:test.os ctx=h3: still"


def test_a_silent_peer_is_offline_and_a_queue_is_bounded(node_factory,
                                                         tmp_path):
    """A node whose port takes the connection but never answers the
    handshake: what waits for it is Offline once 5 s have passed, and the
    refusal is logged.  Meanwhile at most 4,096 messages wait for it; the
    rest get their error at once.  The node serves on."""
    import socket
    a, b, pa, _ = two_nodes(node_factory, tmp_path)
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(64)  # (the kernel accepts; no one ever reads)
    mute = {"name": "mute.os", "public_key": "cd" * 32,
            "ips": ["127.0.0.1"], "ports": {"tcp": silent.getsockname()[1]},
            "routers": []}
    write_peers(pa, [entry(b), mute])
    time.sleep(1.1)
    try:
        t0 = time.monotonic()
        got = ask(a, NET, "ask mute.os@net:tpkg:test.os 30 m1 echo x",
                  timeout=20)
        took = time.monotonic() - t0
        assert got.startswith(
            "error offline target=mute.os@net:tpkg:test.os ctx=m1"), got
        assert 4 < took < 12, took
        a.wait_log("net: connection to mute.os: the handshake took over 5 s")
        # 4,200 at once: 4,096 wait (then are offline), 104 are refused at
        # once; every one gets an error, none an answer
        got = ask(a, NET, "flood mute.os@net:tpkg:test.os 4200 30 echo y",
                  timeout=40)
        assert got == "flood ok=0 errors=4200 busy=0", got
        a.wait_log("messages already wait for mute.os", count=104)
        assert a.log().count("messages already wait for mute.os") == 104
        still_fine(a, b)
    finally:
        silent.close()


# ------------------------------------------------------- routers

def three_nodes(node_factory, tmp_path, passthroughs=4, packages=("tpkg",),
                transport="--net-port"):
    """r.os, a router; t.os, an indirect node whose router is r.os (no
    port of its own); a.os, a direct node; r.os and a.os offer the
    transport `transport` names (--net-port: TCP, --net-ws-port:
    WebSocket).  One peers file for all."""
    peers = str(tmp_path / "peers.json")
    r = node_factory(name="r.os", packages=packages,
                     extra=(transport, str(free_port()), "--peers", peers,
                            "--max-passthroughs", str(passthroughs)))
    t = node_factory(name="t.os", packages=packages,
                     extra=("--net-routers", "r.os", "--peers", peers))
    a = node_factory(name="a.os", packages=packages,
                     extra=(transport, str(free_port()), "--peers", peers))
    assert entry(t)["routers"] == ["r.os"] and entry(t)["ips"] == []
    write_peers(peers, [entry(r), entry(t), entry(a)])
    return r, t, a


@pytest.mark.parametrize("transport", ["--net-port", "--net-ws-port"])
def test_indirect_node_through_a_router(node_factory, tmp_path, transport):
    """a.os reaches t.os, which has no address, through its router r.os:
    a routing request, a ConnectionRequest to t.os over the link it keeps
    to r.os, t.os dialing back, r.os splicing the two (over WebSocket:
    relaying each message, re-framed); the Noise session is a.os's and
    t.os's, so r.os relays ciphertext it cannot read."""
    r, t, a = three_nodes(node_factory, tmp_path, transport=transport)
    got = ask_until(a, NET, "ask t.os@net:tpkg:test.os 5 c1 echo routed",
                    "reply from", timeout=20)
    assert got == "reply from t.os@net:tpkg:test.os ctx=c1: routed"
    # the other way on the same (spliced) connection
    got = ask(t, NET, "ask a.os@net:tpkg:test.os 5 c2 whoami")
    assert got == "reply from a.os@net:tpkg:test.os ctx=c2: a.os@net:tpkg:test.os"
    body, _ = net_action(r, "GetDiagnostics")
    assert "we route 1 passthroughs (4 max)" in body["Diagnostics"], body
    r.wait_log("net: routing a.os to t.os")
    r.wait_log("net: routing t.os to a.os")  # t.os's half, spliced to a.os's
    t.wait_log("net: r.os asks us to connect to a.os: connecting")
    # r.os relayed bytes only: nothing of a.os's reached r.os's processes
    assert "routed" not in r.log()
    rep = hello(a, "t.os", "hello through r")
    assert rep.get("ok") and rep["body"] == "ack", rep
    t.wait_log("a.os: hello through r")
    # t.os also talks to its router directly
    got = ask(t, NET, "ask r.os@net:tpkg:test.os 5 c3 echo direct")
    assert got == "reply from r.os@net:tpkg:test.os ctx=c3: direct"


def test_remote_stubs_through_a_router(node_factory, tmp_path):
    """The framework's remote stubs reach a hyperprocess on an indirect
    node, both ways, through the router."""
    r, t, a = three_nodes(node_factory, tmp_path, packages=("tpkg", APP))
    t.wait_log("the receiver's count at start")
    assert probe_until(a, "t.os@" + RECEIVER, "Ok 1", 20) == "Ok 1"
    assert remote_probe(t, "a.os@" + RECEIVER) == "Ok 0"
    assert t.ask(RECEIVER, '"GetCount"') == "1"
    r.wait_log("net: routing a.os to t.os")


def test_a_router_that_routes_for_no_one(node_factory, tmp_path):
    """With --max-passthroughs 0 (the default) the router refuses: the
    indirect node is offline to others, and the refusal is logged."""
    r, t, a = three_nodes(node_factory, tmp_path, passthroughs=0)
    got = ask_until(a, NET, "ask t.os@net:tpkg:test.os 5 c1 echo x",
                    "error offline", timeout=20)
    r.wait_log("this node routes for no one")
    # t.os still reaches its router, and r.os serves on
    got = ask_until(t, NET, "ask r.os@net:tpkg:test.os 5 c2 echo up",
                    "reply from", timeout=10)
    assert got == "reply from r.os@net:tpkg:test.os ctx=c2: up"


def test_a_websocket_dialer_routed_to_a_direct_node(node_factory, tmp_path):
    """A hand-driven WebSocket peer (python3-wsproto) asks the router to
    route it to a.os, a direct node that offers only WebSocket: r.os dials
    a.os over WebSocket and relays; the peer's Noise handshake is with
    a.os through r.os, and a.os hears and answers it.  A second dialer
    whose routing request names an unknown node costs only itself."""
    from noise_peer import WsPeer
    import msgpack
    r, t, a = three_nodes(node_factory, tmp_path, transport=WS)
    evil = WsPeer("evil.os")
    peers = str(tmp_path / "peers.json")
    write_peers(peers, [entry(r), entry(t), entry(a), evil.entry()])
    time.sleep(1.1)
    evil.connect(entry(r)["ports"]["ws"])
    sig = evil.key.sign(b"a.os" + b"r.os")
    evil.send16(msgpack.packb([1, "evil.os", list(sig), "a.os"]))
    evil.handshake()
    assert evil.their_name == "a.os"
    peer_hello(a, evil, "hi through a websocket router")
    r.wait_log("net: routing evil.os to a.os")
    body, _ = net_action(r, "GetDiagnostics")
    assert "we route 1 passthroughs (4 max)" in body["Diagnostics"], body
    # a big message crosses the relay in several WebSocket messages
    evil.send_message(evil.kernel_message(
        "evil.os@hi:terminal:sys", "a.os@net:distro:sys", b"y" * 70000,
        rsvp="evil.os@hi:terminal:sys", id=2))
    got = evil.recv_message()
    assert got[0] == 2 and got[1] == "a.os@net:distro:sys", got
    lost = WsPeer("evil.os")
    lost.key = evil.key
    lost.connect(entry(r)["ports"]["ws"])
    sig = evil.key.sign(b"nobody.os" + b"r.os")
    lost.send16(msgpack.packb([1, "evil.os", list(sig), "nobody.os"]))
    assert lost.closed_by_node()
    r.wait_log("a routing request for a name not in the PKI")
    peer_hello(a, evil, "still relayed")


def test_a_forged_routing_request_is_refused(node_factory, tmp_path):
    """A routing request signed by a key that is not the source's costs
    only its connection."""
    from noise_peer import Peer
    import msgpack
    r, t, a = three_nodes(node_factory, tmp_path)
    evil = Peer("evil.os")
    peers = str(tmp_path / "peers.json")
    write_peers(peers, [entry(r), entry(t), entry(a), evil.entry()])
    time.sleep(1.1)
    evil.connect(entry(r)["ports"]["tcp"])
    liar = Peer("other.os")  # signs with a key the PKI does not give evil.os
    sig = liar.key.sign(b"t.os" + b"r.os")
    evil.send16(msgpack.packb([1, "evil.os", list(sig), "t.os"]))
    assert evil.closed_by_node()
    r.wait_log("a routing request with a bad signature")
    got = ask_until(a, NET, "ask t.os@net:tpkg:test.os 5 c1 echo still",
                    "reply from", timeout=20)
    assert got == "reply from t.os@net:tpkg:test.os ctx=c1: still"
