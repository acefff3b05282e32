"""HP_WS_CLIENT: a hyperprocess opens a WebSocket connection through
http-client:distro:sys (a real python3-websockets server), and the frames it
receives reach its HP_WS_CLIENT handler as generated dispatch routes them."""
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
        assert rep == "Ok WebSocketAck"
        # the server says welcome: a Text frame to the handler
        assert wait_seen(n, "1 welcome open") == "1 welcome open"
        assert n.ask(WSC, json.dumps({"SendText": [7, "hello"]})) == "true"
        assert wait_seen(n, "2 hello open") == "2 hello open"
        # the server closes on "bye": a Close event
        assert n.ask(WSC, json.dumps({"SendText": [7, "bye"]})) == "true"
        assert wait_seen(n, "2 hello closed") == "2 hello closed"
    finally:
        server.stop()
