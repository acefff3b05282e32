"""HP_WS_CLIENT: a hyperprocess opens a WebSocket connection through
http-client:distro:sys (a real python3-websockets server) with the typed
helpers hp_ws_client_open/push/close, and the frames it receives reach its
HP_WS_CLIENT handler as generated dispatch routes them; a close is heard
once."""
import json
import time

from conftest import pid
from test_http_client import WsServer

WSC = pid("wsclient", "tweb")


def wait_seen(n, want, timeout=10):
    deadline = time.monotonic() + timeout
    while True:
        got = json.loads(n.ask(WSC, '"Seen"'))
        if got == want or time.monotonic() > deadline:
            return got
        time.sleep(0.05)


def test_frames_reach_the_ws_client_handler(node_factory):
    server = WsServer()
    try:
        n = node_factory(packages=("tweb",))
        url = f"ws://127.0.0.1:{server.port}/"
        rep = json.loads(n.ask(WSC, json.dumps({"ConnectTo": [url, 7]})))
        assert rep == "Ok"
        # the server says welcome: a Text frame to the handler
        assert wait_seen(n, "1 welcome open") == "1 welcome open"
        assert n.ask(WSC, json.dumps({"SendText": [7, "hello"]})) == "true"
        assert wait_seen(n, "2 hello open") == "2 hello open"
        # the server closes on "bye": a Close event
        assert n.ask(WSC, json.dumps({"SendText": [7, "bye"]})) == "true"
        assert wait_seen(n, "2 hello closed") == "2 hello closed"
    finally:
        server.stop()


def test_ws_client_close_and_a_failed_open(node_factory):
    server = WsServer()
    try:
        n = node_factory(packages=("tweb",))
        url = f"ws://127.0.0.1:{server.port}/"
        assert json.loads(n.ask(WSC, json.dumps({"ConnectTo": [url, 9]}))) \
            == "Ok"
        assert wait_seen(n, "1 welcome open") == "1 welcome open"
        # our side closes: the handler hears the close once
        assert json.loads(n.ask(WSC, '{"CloseConn": 9}')) == "Ok"
        assert wait_seen(n, "1 welcome closed") == "1 welcome closed"
        time.sleep(0.5)  # a second close would have come by now
        assert json.loads(n.ask(WSC, '"Seen"')) == "1 welcome closed"
        # a push on the closed channel is refused with http-client's error
        assert n.ask(WSC, json.dumps({"SendText": [9, "late"]})) == "false"
        rep = json.loads(n.ask(WSC, '{"CloseConn": 9}'))
        assert rep.startswith("Rejected: http-client: {\"Err\":"), rep
    finally:
        server.stop()
    # nothing listens there now: the open fails with the reason
    rep = json.loads(n.ask(WSC, json.dumps(
        {"ConnectTo": [f"ws://127.0.0.1:{server.port}/", 10]})))
    assert rep.startswith('Rejected: http-client: {"Err":{"WsOpenFailed":'), \
        rep

