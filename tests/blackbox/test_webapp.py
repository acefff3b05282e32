"""A hyperprocess served by the node's http-server, called with curl and a
real WebSocket client: endpoints bound at start, Rust-style envelope calls,
routes by method and path (405 with Allow), query parameters, request
headers, status and headers set by the handler, JSON errors, WebSocket
open/echo/broadcast/close, and the UI folder as static content."""
import asyncio
import json
import subprocess
import time

import pytest
import websockets

from conftest import free_port

BASE = "/webapp:tweb:test.os"


def curl(port, method, path, body=None, headers=()):
    cmd = ["curl", "-s", "-i", "-X", method, "--max-time", "20",
           f"http://127.0.0.1:{port}{BASE}{path}"]
    for h in headers:
        cmd += ["-H", h]
    if body is not None:
        cmd += ["-H", "Content-Type: application/json", "--data-binary", body]
    out = subprocess.run(cmd, capture_output=True, timeout=30).stdout
    head, _, payload = out.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    hdrs = {}
    for l in lines[1:]:
        k, _, v = l.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    return status, hdrs, payload


def webapp(node_factory):
    port = free_port()
    n = node_factory(packages=("tweb",), extra=("--port", str(port)))
    # the process binds its paths at start
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        st, _, _ = curl(port, "GET", "/api/items")
        if st == 200:
            break
        time.sleep(0.1)
    return n, port


def test_envelope_routes_query_headers_status(node_factory):
    n, port = webapp(node_factory)
    st, h, body = curl(port, "POST", "/api", '{"Add":[2,3]}')
    assert st == 200 and json.loads(body) == 5
    assert h["content-type"] == "application/json"
    st, h, body = curl(port, "POST", "/api/items", '{"title":"tea","qty":2}')
    assert st == 201 and json.loads(body) == 1 and h["location"] == "/api/items"
    st, _, body = curl(port, "GET", "/api/items")
    assert st == 200 and json.loads(body) == [{"title": "tea", "qty": 2}]
    st, _, body = curl(port, "GET", "/api/search?q=te&limit=5")
    assert st == 200 and json.loads(body) == "1 match 'te' (limit 5)"
    st, h, body = curl(port, "PATCH", "/api/whoami", headers=["X-Test: hi"])
    assert st == 200 and json.loads(body) == "PATCH /api/whoami hi"
    assert h["x-reply"] == "yes"


def test_errors_are_json_with_statuses(node_factory):
    n, port = webapp(node_factory)
    st, h, body = curl(port, "DELETE", "/api/items")
    assert st == 405 and "GET" in h["allow"] and "POST" in h["allow"]
    assert json.loads(body)["HypercError"]["kind"] == "MethodNotAllowed"
    st, _, body = curl(port, "GET", "/api/search?q=te")
    assert st == 400
    err = json.loads(body)["HypercError"]
    assert err["kind"] == "BadArguments" and "'limit'" in err["message"]
    st, _, body = curl(port, "GET", "/api/search?q=te&limit=many")
    assert st == 400 and "limit" in json.loads(body)["HypercError"]["message"]
    st, _, body = curl(port, "POST", "/api", '{"Nope":1}')
    assert st == 400
    assert json.loads(body)["HypercError"]["kind"] == "UnknownVariant"
    st, _, body = curl(port, "POST", "/api", "not json")
    assert st == 400 and json.loads(body)["HypercError"]["kind"] == "BadJson"
    st, _, body = curl(port, "GET", "/api")
    assert st == 404 and json.loads(body)["HypercError"]["kind"] == "NotFound"


def test_client_integers_do_not_overflow(node_factory):
    """Add's operands are the client's: sums past int64 saturate instead of
    overflowing (undefined behaviour: UBSan would stop the process, and an
    in-process node with it), and the process serves on (issue 18)."""
    n, port = webapp(node_factory)
    big, small = 2**63 - 1, -2**63
    for a, b, want in [(big, 1, big), (big, big, big), (small, -1, small),
                       (small, small, small), (big, small, -1),
                       (big - 1, 1, big)]:
        st, _, body = curl(port, "POST", "/api", json.dumps({"Add": [a, b]}))
        assert (st, json.loads(body)) == (200, want), (a, b, body)
    # out of range for i64 at all: a typed refusal, not a wrap
    st, _, body = curl(port, "POST", "/api", '{"Add":[9223372036854775808,1]}')
    assert st == 400
    assert json.loads(body)["HypercError"]["kind"] == "BadArguments"
    st, _, body = curl(port, "POST", "/api", '{"Add":[2,3]}')
    assert (st, json.loads(body)) == (200, 5)
    assert "crashed" not in n.log() and "runtime error" not in n.stderr()


def test_ui_folder_is_served(node_factory):
    n, port = webapp(node_factory)
    st, h, body = curl(port, "GET", "/")
    assert st == 200 and b"<h1>webapp</h1>" in body
    assert h["content-type"].startswith("text/html")
    st, h, body = curl(port, "GET", "/css/site.css")
    assert st == 200 and body.strip() == b"h1 { color: teal; }"
    assert h["content-type"].startswith("text/css")


def test_websocket_open_echo_broadcast_close(node_factory):
    n, port = webapp(node_factory)
    url = f"ws://127.0.0.1:{port}{BASE}/ws"

    async def run():
        async with websockets.connect(url) as a, websockets.connect(url) as b:
            assert await a.recv() == "welcome /ws"
            assert await b.recv() == "welcome /ws"
            await a.send("hi")
            got_a = {await a.recv(), await a.recv()}
            assert got_a == {"echo hi", "all 1"}
            assert await b.recv() == "all 1"
        # both closed: a later broadcast reaches nobody, and the process is
        # fine
    asyncio.run(run())
    st, _, body = curl(port, "GET", "/api/items")
    assert st == 200


def test_ws_close_heard_once_and_channels_listed(node_factory):
    """A client's close reaches the process twice (its Close frame, then
    the channel's end, as on Hyperware); the HP_WS handler hears it once.
    hp_ws_channels lists the open channels."""
    n, port = webapp(node_factory)
    url = f"ws://127.0.0.1:{port}{BASE}/ws"

    def stats():
        st, _, body = curl(port, "GET", "/api/ws-stats?path=/ws")
        assert st == 200, body
        return json.loads(body)

    async def run():
        async with websockets.connect(url) as a, websockets.connect(url) as b:
            await a.recv()
            await b.recv()
            s = stats()
            assert s.startswith("opens=2 closes=0 open=2 ["), s
        deadline = time.monotonic() + 10
        while "closes=2" not in stats() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)  # a second close would have come by now
        assert stats() == "opens=2 closes=2 open=0 []"
    asyncio.run(run())


def test_paths_bound_and_unbound_at_run_time(node_factory):
    n, port = webapp(node_factory)

    def bind(path, ws=False, unbind=False):
        st, _, body = curl(port, "POST", "/api/bind",
                           json.dumps({"BindPath": [path, ws, unbind]}))
        assert st == 200, body
        return json.loads(body)

    # nothing at /extra yet
    # /extra: under the process's unauthenticated UI root at first; bound
    # with Rust's default config (authenticated) it needs the login; once
    # unbound, nothing answers there (Hyperware keeps an unbound path as
    # one that is bound to nobody)
    add = json.dumps({"Add": [1, 2]})
    st, _, body = curl(port, "POST", "/extra", add)
    assert (st, json.loads(body)) == (200, 3)
    assert bind("/extra") == "Ok"
    st, _, body = curl(port, "POST", "/extra", add)
    assert st == 401, body
    assert json.loads(body)["HypercError"]["kind"] == "Unauthorized"
    assert bind("/extra", unbind=True) == "Ok"
    st, _, body = curl(port, "POST", "/extra", add)
    assert st == 404, body
    assert json.loads(body)["HypercError"]["kind"] == "NotFound"
    # a WebSocket path
    assert bind("/live", ws=True) == "Ok"

    async def run():
        async with websockets.connect(
                f"ws://127.0.0.1:{port}{BASE}/live") as a:
            assert await a.recv() == "welcome /live"
    asyncio.run(run())
    assert bind("/live", ws=True, unbind=True) == "Ok"

    async def refused():
        with pytest.raises(Exception):
            async with websockets.connect(
                    f"ws://127.0.0.1:{port}{BASE}/live"):
                pass
    asyncio.run(refused())


def test_request_context_is_right_after_a_wait(node_factory):
    """Two requests wait at once; each sees its own method, path and
    headers after the wait, and its answer goes to its own client."""
    import threading
    n, port = webapp(node_factory)
    out = {}

    def call(tag, ms):
        out[tag] = curl(port, "GET", f"/api/slow?ms={ms}",
                        headers=[f"X-Test: {tag}"])

    a = threading.Thread(target=call, args=("one", 600))
    b = threading.Thread(target=call, args=("two", 100))
    a.start()
    time.sleep(0.1)
    b.start()
    a.join()
    b.join()
    for tag in ("one", "two"):
        st, h, body = out[tag]
        assert st == 200
        assert json.loads(body) == f"GET /api/slow {tag}"
        assert h["x-after"] == tag


def test_homepage_tile_added_at_start(node_factory):
    n, port = webapp(node_factory)
    rep = n.ask("homepage:homepage:sys", '"GetApps"')
    apps = json.loads(rep)["GetApps"]
    tile = [a for a in apps if a["id"] == "webapp:tweb:test.os"]
    assert tile, apps
    assert tile[0]["label"] == "webapp" and tile[0]["base64_icon"] == "PHN2Zy8+"
    assert tile[0]["path"] == "/webapp:tweb:test.os/"


def test_task_limit_answers_503(node_factory):
    """webapp allows two live tasks: a third request while two wait gets
    503 with the Busy error, not a timeout."""
    import threading
    n, port = webapp(node_factory)
    out = {}

    def call(tag):
        out[tag] = curl(port, "GET", "/api/slow?ms=3000")

    waiting = [threading.Thread(target=call, args=(k,)) for k in (1, 2)]
    for t in waiting:
        t.start()
    time.sleep(0.5)
    st, h, body = curl(port, "GET", "/api/items")
    assert st == 503, (st, body)
    err = json.loads(body)["HypercError"]
    assert err["kind"] == "Busy" and "limit 2" in err["message"]
    for t in waiting:
        t.join()
    assert all(out[k][0] == 200 for k in (1, 2))
    assert curl(port, "GET", "/api/items")[0] == 200  # room again
