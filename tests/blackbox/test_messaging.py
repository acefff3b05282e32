"""Message semantics on a real node: request/response, inherit forwarding,
fire-and-forget, timeouts with context, capabilities, unknown targets."""
import time

from conftest import addr, pid


def test_request_response(node):
    assert node.ask(pid("a"), "echo hello world") == "hello world"
    assert node.ask(pid("a"), "whoami") == "test.os@a:tpkg:test.os"


def test_request_between_processes_keeps_context(node):
    out = node.ask(pid("a"), f"ask {addr('b')} 5 k1 echo hi")
    assert out == "reply from test.os@b:tpkg:test.os ctx=k1: hi"


def test_inherit_forwarding_answers_original_requester(node):
    # a asks b; b forwards to c with inherit; c answers a directly.
    out = node.ask(pid("a"), f"ask {addr('b')} 5 k2 forward {addr('c')} whoami")
    assert out == "reply from test.os@c:tpkg:test.os ctx=k2: test.os@c:tpkg:test.os"


def test_fire_and_forget_is_delivered(node):
    assert node.ask(pid("b"), "count") == "1"
    assert node.ask(pid("a"), f"fire {addr('b')} note from-a") == "fired"
    node.wait_log("note: from-a")
    # b has now had: count, the fired note, and this count.
    assert node.ask(pid("b"), "count") == "3"


def test_timeout_returns_request_and_context(node):
    t0 = time.monotonic()
    out = node.ask(pid("a"), f"ask {addr('slow')} 1 myctx sleep 3000", timeout=10)
    took = time.monotonic() - t0
    assert out == ("error timeout target=test.os@slow:tpkg:test.os "
                   "ctx=myctx body=sleep 3000")
    assert 0.9 <= took < 2.9, took


def test_late_reply_after_timeout_is_dropped(node):
    out = node.ask(pid("a"), f"ask {addr('slow')} 1 late sleep 1500", timeout=10)
    assert out.startswith("error timeout")
    time.sleep(1.0)  # slow answers now; a has no context for it any more
    assert node.ask(pid("a"), "echo still-fine") == "still-fine"
    node.wait_log("dropped a response nobody waits for")


def test_capability_denied_gets_immediate_timeout(node):
    t0 = time.monotonic()
    out = node.ask(pid("a"), f"ask {addr('private')} 30 d1 echo secret")
    assert time.monotonic() - t0 < 2.0
    assert out == ("error timeout target=test.os@private:tpkg:test.os "
                   "ctx=d1 body=echo secret")
    node.wait_log("lacks the messaging capability")


def test_capability_granted_by_manifest(node):
    # b's manifest requests messaging for private; private is not public.
    out = node.ask(pid("b"), f"ask {addr('private')} 5 g1 echo secret")
    assert out == "reply from test.os@private:tpkg:test.os ctx=g1: secret"
    caps = node.ask(pid("b"), "caps")
    assert 'test.os@private:tpkg:test.os "messaging"' in caps


def test_unknown_target_gets_immediate_timeout(node):
    t0 = time.monotonic()
    out = node.ask(pid("a"), f"ask {addr('nobody')} 30 u1 echo x")
    assert time.monotonic() - t0 < 2.0
    assert out.startswith("error timeout target=test.os@nobody:tpkg:test.os ctx=u1")
    node.wait_log("no such process")


def test_other_node_is_offline(node):
    out = node.ask(pid("a"), "ask elsewhere.os@b:tpkg:test.os 30 o1 echo x")
    assert out.startswith("error offline target=elsewhere.os@b:tpkg:test.os ctx=o1")


def test_send_and_await_and_deferred_messages(node):
    assert node.ask(pid("a"), f"await {addr('b')} 5 echo sync") == "awaited: sync"
    assert node.ask(pid("a"), f"await {addr('slow')} 1 sleep 2000") == "await timeout"


def test_blob_round_trip(node):
    rep = node.inject(pid("a"), "blob", blob=b"\x00\x01binary\xff", mime="app/x")
    assert rep["ok"] and rep["body"] == "blob 9 bytes"
    assert rep["blob"]["mime"] == "app/x"
    import base64
    assert base64.b64decode(rep["blob"]["b64"]) == b"\x00\x01binary\xff"


def test_instances_of_one_binary_share_nothing(node):
    for i in range(3):
        assert node.ask(pid("a"), "count") == str(i + 1)
    assert node.ask(pid("c"), "count") == "1"


def test_timer_answers_after_delay(node):
    t0 = time.monotonic()
    out = node.ask(pid("a"), 'ask our@timer:distro:sys 5 t1 {"SetTimer":300}')
    took = time.monotonic() - t0
    assert out == "reply from test.os@timer:distro:sys ctx=t1: "
    assert 0.29 <= took < 2.0, took


def test_long_computation_does_not_block_others(node):
    rep = node.inject(pid("slow"), "sleep 3000", non_block=True)
    assert rep == {"ok": True, "sent": True}
    t0 = time.monotonic()
    assert node.ask(pid("a"), f"ask {addr('b')} 5 p echo quick") == \
        "reply from test.os@b:tpkg:test.os ctx=p: quick"
    assert time.monotonic() - t0 < 1.0


def test_bad_inject_input_is_rejected_with_reason(node):
    rep = node.call({"op": "inject", "process": "Not-Valid", "body": "x"})
    assert rep["ok"] is False and "process" in rep["error"].lower()
    rep = node.call({"op": "frobnicate"})
    assert rep["ok"] is False and "unknown op" in rep["error"]
    # the node is still fine
    assert node.ask(pid("a"), "echo ok") == "ok"
