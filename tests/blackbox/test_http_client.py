"""http-client:distro:sys against local servers started by the tests: an
HTTP server (http.server in a thread) and a WebSocket server (Debian's
python3-websockets in a thread), driven from the injector and from a real
process (tclient in package thttp) that holds the capabilities Hyperware
asks for."""
import asyncio
import base64
import http.server
import json
import threading
import time
import urllib.parse

import pytest
import websockets

HC = "http-client:distro:sys"
C = "c:thttp:test.os"


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen = []  # (method, path, headers, body) of every request

    def _reply(self, status, body, headers=(), chunked=False):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i in range(0, len(body), 100):
                part = body[i:i + 100]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
            return
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _handle(self):
        url = urllib.parse.urlsplit(self.path)
        q = dict(urllib.parse.parse_qsl(url.query))
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        Handler.seen.append((self.command, self.path, dict(self.headers),
                             body))
        if url.path == "/hello":
            self._reply(200, b"hello", [("X-Test", "yes"),
                                        ("content-type", "text/plain")])
        elif url.path == "/echo":
            self._reply(201, body, [("X-Method", self.command)])
        elif url.path == "/slow":
            time.sleep(int(q.get("ms", "1000")) / 1000)
            self._reply(200, b"slow")
        elif url.path == "/big":
            self._reply(200, b"x" * int(q["n"]))
        elif url.path == "/chunked":
            self._reply(200, b"y" * int(q["n"]), chunked=True)
        elif url.path == "/redirect":
            self._reply(302, b"", [("Location", "/hello")])
        else:
            self._reply(404, b"no")

    do_GET = do_POST = do_PUT = do_DELETE = _handle

    def log_message(self, *args):
        pass


class Server(http.server.ThreadingHTTPServer):
    request_queue_size = 1024
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # clients that gave up (timeouts, size limits) are expected


@pytest.fixture(scope="module")
def web():
    srv = Server(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


class WsServer:
    """A WebSocket server on its own asyncio loop: says "welcome", echoes
    text and binary messages, closes on "bye", and records each handshake's
    request headers."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.headers = []
        self.paths = []
        self.port = None
        ready = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(ready,),
                                       daemon=True)
        self.thread.start()
        ready.wait(10)

    async def _handler(self, ws, path=None):
        self.headers.append(dict(ws.request_headers))
        self.paths.append(ws.path)
        await ws.send("welcome")
        async for m in ws:
            if m == "bye":
                await ws.close()
                return
            await ws.send(m)

    def _run(self, ready):
        asyncio.set_event_loop(self.loop)

        async def start():
            self.server = await websockets.serve(self._handler, "127.0.0.1", 0)
            self.port = self.server.sockets[0].getsockname()[1]
            ready.set()

        self.loop.run_until_complete(start())
        self.loop.run_forever()

    def stop(self):
        async def close():
            self.server.close()
            await self.server.wait_closed()

        asyncio.run_coroutine_threadsafe(close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture(scope="module")
def wsserver():
    s = WsServer()
    yield s
    s.stop()


def http(url, method="GET", headers=None, version=None, **extra):
    req = {"method": method, "version": version, "url": url,
           "headers": headers or {}}
    req.update(extra)
    return json.dumps({"Http": req})


def blob_bytes(rep):
    b = rep.get("blob")
    return None if b is None else base64.b64decode(b["b64"])


def inject(n, body, timeout=10, blob=None):
    rep = n.inject(HC, body, timeout=timeout, blob=blob)
    assert rep["ok"], rep
    return json.loads(rep["body"]), rep


def via(n, body, secs=10, proc=C, blob=None):
    """Send through process `proc` (tclient `to`); its answer body and
    reply."""
    rep = n.inject(proc, f"to our@{HC} {secs} {body}", timeout=secs + 10,
                   blob=blob)
    assert rep["ok"], rep
    return rep["body"], rep


def test_get_status_headers_body(node_factory, web):
    n = node_factory(packages=("thttp",))
    body, rep = inject(n, http(web + "/hello"))
    ok = body["Ok"]["Http"]
    assert ok["status"] == 200
    # Names as Hyperware reports them: lower-cased by the http crate, then
    # each word capitalized.
    assert ok["headers"]["X-Test"] == "yes"
    assert ok["headers"]["Content-Type"] == "text/plain"
    assert ok["headers"]["Content-Length"] == "5"
    assert list(body) == ["Ok"] and list(ok) == ["status", "headers"]
    assert blob_bytes(rep) == b"hello"
    assert rep["blob"]["mime"] is None
    # Redirects are followed (reqwest's default); 404 is a success.
    body, rep = inject(n, http(web + "/redirect"))
    assert body["Ok"]["Http"]["status"] == 200 and blob_bytes(rep) == b"hello"
    body, rep = inject(n, http(web + "/missing"))
    assert body["Ok"]["Http"]["status"] == 404 and blob_bytes(rep) == b"no"
    # An empty body still comes as a blob.
    body, rep = inject(n, http(web + "/big?n=0"))
    assert blob_bytes(rep) == b""


def test_post_body_and_headers_from_a_process(node_factory, web):
    n = node_factory(packages=("thttp",))
    Handler.seen.clear()
    text, rep = via(n, http(web + "/echo?x=1", "POST",
                            {"Content-Type": "application/json",
                             "X-Custom": "42", "Bad Name": "dropped"}),
                    blob=b'{"a": 1}')
    ok = json.loads(text)["Ok"]["Http"]
    assert ok["status"] == 201 and ok["headers"]["X-Method"] == "POST"
    assert blob_bytes(rep) == b'{"a": 1}'
    method, path, headers, body = Handler.seen[-1]
    assert (method, path, body) == ("POST", "/echo?x=1", b'{"a": 1}')
    assert headers["X-Custom"] == "42"
    assert headers["Content-Type"] == "application/json"
    assert "Expect" not in headers
    # Other methods, a chosen version.
    text, rep = via(n, http(web + "/echo", "PUT", version="HTTP/1.0"),
                    blob=b"put body")
    assert json.loads(text)["Ok"]["Http"]["headers"]["X-Method"] == "PUT"
    assert blob_bytes(rep) == b"put body"
    text, _ = via(n, http(web + "/echo", "DELETE"))
    assert json.loads(text)["Ok"]["Http"]["headers"]["X-Method"] == "DELETE"


def test_errors(node_factory, web):
    n = node_factory(packages=("thttp",))
    assert inject(n, http("not a url"))[0] == {
        "Err": {"BadUrl": {"url": "not a url"}}}
    assert inject(n, http(web + "/hello", "GE T"))[0] == {
        "Err": {"BadMethod": {"method": "GE T"}}}
    assert inject(n, http(web + "/hello", version="HTTP/4"))[0] == {
        "Err": {"BadVersion": {"version": "HTTP/4"}}}
    assert inject(n, '{"Http":{"method":"GET","url":"x"}}')[0] == {
        "Err": "MalformedRequest"}  # headers is required, as for serde
    assert inject(n, '"Http"')[0] == {"Err": "MalformedRequest"}
    assert inject(n, "not json")[0] == {"Err": "MalformedRequest"}
    err = inject(n, http("http://127.0.0.1:1/"))[0]["Err"]
    assert "ExecuteRequestFailed" in err
    err = inject(n, http("ftp://127.0.0.1/x"))[0]["Err"]
    assert "ExecuteRequestFailed" in err
    # Without expects_response an error is not answered (Hyperware).
    rep = n.inject(HC, http("not a url"), non_block=True)
    assert rep == {"ok": True, "sent": True}


def test_timeouts(node_factory, web):
    # The node's limit.
    n = node_factory(packages=("thttp",), extra=["--http-client-timeout-ms",
                                                 "500"])
    t0 = time.monotonic()
    err = inject(n, http(web + "/slow?ms=10000"), timeout=20)[0]["Err"]
    assert "timed out" in err["ExecuteRequestFailed"], err
    assert time.monotonic() - t0 < 8  # well before the server's 10 s
    # The request's own "timeout" (seconds).
    n2 = node_factory(packages=("thttp",))
    t0 = time.monotonic()
    err = inject(n2, http(web + "/slow?ms=10000", timeout=1),
                 timeout=20)[0]["Err"]
    assert "timed out" in err["ExecuteRequestFailed"], err
    assert time.monotonic() - t0 < 8
    # expects_response: the requester's own deadline, as in Hyperware.
    text, _ = via(n2, http(web + "/slow?ms=3000"), secs=1)
    assert text == "error timeout"
    # A request that fits in its time succeeds.
    text, rep = via(n2, http(web + "/slow?ms=100"), secs=5)
    assert json.loads(text)["Ok"]["Http"]["status"] == 200


def test_response_size_limit(node_factory, web):
    n = node_factory(packages=("thttp",),
                     extra=["--http-client-max-response", "1000"])
    body, rep = inject(n, http(web + "/big?n=1000"))
    assert body["Ok"]["Http"]["status"] == 200
    assert blob_bytes(rep) == b"x" * 1000
    for path in ("/big?n=1001", "/chunked?n=5000"):
        err = inject(n, http(web + path))[0]["Err"]
        assert err == {"ExecuteRequestFailed": "response body is larger than "
                       "the limit of 1000 bytes"}, err


def test_many_concurrent_requests(node_factory, web):
    n = node_factory(packages=("thttp",))
    t0 = time.monotonic()
    rep = n.inject(C, f"many our@{HC} 300 30 " + http(web + "/slow?ms=300"),
                   timeout=60)
    assert rep["body"] == "many ok=300 err=0 lost=0"
    # One at a time this would take 90 s.
    assert time.monotonic() - t0 < 45
    # The module keeps answering others while requests are in flight.
    done = {}

    def slow():
        done["slow"] = n.inject(HC, http(web + "/slow?ms=10000"), timeout=30)

    t = threading.Thread(target=slow)
    t.start()
    time.sleep(0.2)
    t0 = time.monotonic()
    assert inject(n, http(web + "/hello"))[0]["Ok"]["Http"]["status"] == 200
    assert time.monotonic() - t0 < 8  # not behind the 10 s request
    t.join()
    assert json.loads(done["slow"]["body"])["Ok"]["Http"]["status"] == 200


def test_capabilities(node_factory, web):
    n = node_factory(packages=("thttp",))
    # No messaging capability for http-client: refused at send.
    text, _ = via(n, http(web + "/hello"), secs=3, proc="nocap:thttp:test.os")
    assert text == "error timeout"
    # Messaging, but http-client may not answer (not granted, not public).
    text, _ = via(n, http(web + "/hello"), secs=3,
                  proc="nogrant:thttp:test.os")
    assert text == "error timeout"
    n.wait_log("test.os@http-client:distro:sys -> "
               "test.os@nogrant:thttp:test.os refused")


def events(n, proc=C):
    return [e for e in n.ask(proc, "events", timeout=10).split("\n") if e]


def wait_events(n, count, proc=C, timeout=10):
    got = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got += events(n, proc)
        if len(got) >= count:
            return got
        time.sleep(0.05)
    raise AssertionError(f"only {got}")


SRC = "test.os@http-client:distro:sys "


def push_event(ch, kind, mime, text):
    return (SRC + json.dumps({"WebSocketPush": {"channel_id": ch,
                                                "message_type": kind}},
                             separators=(",", ":"))
            + f" mime={mime} blob={text}")


def close_event(ch):
    return SRC + '{"WebSocketClose":{"channel_id":%d}} mime=- blob=-' % ch


def ws(action, **fields):
    return json.dumps({action: fields})


def test_websocket_open_push_close(node_factory, wsserver):
    n = node_factory(packages=("thttp",))
    url = f"ws://127.0.0.1:{wsserver.port}/chat?room=1"
    text, _ = via(n, ws("WebSocketOpen", url=url,
                        headers={"X-Token": "abc"}, channel_id=7))
    assert json.loads(text) == {"Ok": "WebSocketAck"}
    # The server's greeting arrives as a request to the opener.
    assert wait_events(n, 1) == [push_event(7, "Text", "text/plain",
                                            "welcome")]
    # (The server's handler has seen the handshake before it greets.)
    assert wsserver.headers[-1]["x-token"] == "abc"
    assert wsserver.paths[-1] == "/chat?room=1"
    # Push both ways: text and binary come back echoed.
    text, _ = via(n, ws("WebSocketPush", channel_id=7, message_type="Text"),
                  blob=b"hello ws")
    assert json.loads(text) == {"Ok": "WebSocketAck"}
    text, _ = via(n, ws("WebSocketPush", channel_id=7,
                        message_type="Binary"), blob=b"bin")
    assert json.loads(text) == {"Ok": "WebSocketAck"}
    via(n, ws("WebSocketPush", channel_id=7, message_type="Ping"))
    # The server's handler echoes text and binary in order; its protocol
    # layer answers the Ping itself, so the Pong may overtake a late echo.
    got = wait_events(n, 3)
    echoes = [push_event(7, "Text", "text/plain", "hello ws"),
              push_event(7, "Binary", "application/octet-stream", "bin")]
    pong = push_event(7, "Pong", "-", "-")
    assert pong in got and [e for e in got if e != pong] == echoes, got
    # Errors of push and close.
    assert json.loads(via(n, ws("WebSocketPush", channel_id=8,
                                message_type="Text"), blob=b"x")[0]) == {
        "Err": {"WsPushUnknownChannel": {"channel_id": 8}}}
    assert json.loads(via(n, ws("WebSocketPush", channel_id=7,
                                message_type="Text"))[0]) == {
        "Err": "WsPushNoBlob"}
    assert json.loads(via(n, ws("WebSocketPush", channel_id=7,
                                message_type="Text"), blob=b"\xff")[0]) == {
        "Err": "WsPushBadText"}
    # Channels belong to their process: d cannot push on c's channel 7.
    assert json.loads(via(n, ws("WebSocketPush", channel_id=7,
                                message_type="Text"), blob=b"x",
                          proc="d:thttp:test.os")[0]) == {
        "Err": {"WsPushUnknownChannel": {"channel_id": 7}}}
    # The process closes: acknowledged, then the close is reported.
    assert json.loads(via(n, ws("WebSocketClose", channel_id=7))[0]) == {
        "Ok": "WebSocketAck"}
    assert wait_events(n, 1) == [close_event(7)]
    assert json.loads(via(n, ws("WebSocketClose", channel_id=7))[0]) == {
        "Err": {"WsCloseFailed": {"channel_id": 7}}}
    assert json.loads(via(n, ws("WebSocketPush", channel_id=7,
                                message_type="Text"), blob=b"x")[0]) == {
        "Err": {"WsPushUnknownChannel": {"channel_id": 7}}}


def test_websocket_server_closes(node_factory, wsserver):
    n = node_factory(packages=("thttp",))
    url = f"ws://127.0.0.1:{wsserver.port}/"
    for ch in (1, 2):
        text, _ = via(n, ws("WebSocketOpen", url=url, headers={},
                            channel_id=ch))
        assert json.loads(text) == {"Ok": "WebSocketAck"}
    assert sorted(wait_events(n, 2)) == [
        push_event(1, "Text", "text/plain", "welcome"),
        push_event(2, "Text", "text/plain", "welcome")]
    via(n, ws("WebSocketPush", channel_id=1, message_type="Text"),
        blob=b"bye")
    assert wait_events(n, 1) == [close_event(1)]
    # Channel 2 is still open.
    via(n, ws("WebSocketPush", channel_id=2, message_type="Text"), blob=b"2")
    assert wait_events(n, 1) == [push_event(2, "Text", "text/plain", "2")]
    # Opening a channel again replaces the connection, without a close
    # event for the old one.
    text, _ = via(n, ws("WebSocketOpen", url=url, headers={}, channel_id=2))
    assert json.loads(text) == {"Ok": "WebSocketAck"}
    assert wait_events(n, 1) == [push_event(2, "Text", "text/plain",
                                            "welcome")]
    time.sleep(0.3)
    assert events(n) == []
    # The node stops cleanly with a connection open (checked by stop()).


def test_websocket_open_errors(node_factory, web):
    n = node_factory(packages=("thttp",), extra=["--http-client-max-ws", "1"])
    assert json.loads(via(n, ws("WebSocketOpen", url="not a url", headers={},
                                channel_id=1))[0]) == {
        "Err": {"BadUrl": {"url": "not a url"}}}
    assert json.loads(via(n, ws("WebSocketOpen", url="ws://127.0.0.1:1/",
                                headers={}, channel_id=1))[0]) == {
        "Err": {"WsOpenFailed": {"url": "ws://127.0.0.1:1/"}}}
    # Not a WebSocket scheme; a server that does not upgrade.
    assert json.loads(via(n, ws("WebSocketOpen", url=web + "/hello",
                                headers={}, channel_id=1))[0]) == {
        "Err": {"WsOpenFailed": {"url": web + "/hello"}}}
    wsurl = web.replace("http:", "ws:") + "/hello"
    assert json.loads(via(n, ws("WebSocketOpen", url=wsurl, headers={},
                                channel_id=1))[0]) == {
        "Err": {"WsOpenFailed": {"url": wsurl}}}
    n.wait_log("the server refused the upgrade (status 200)")


def test_websocket_connection_limit(node_factory, wsserver):
    n = node_factory(packages=("thttp",), extra=["--http-client-max-ws", "1"])
    url = f"ws://127.0.0.1:{wsserver.port}/"
    assert json.loads(via(n, ws("WebSocketOpen", url=url, headers={},
                                channel_id=1))[0]) == {"Ok": "WebSocketAck"}
    assert json.loads(via(n, ws("WebSocketOpen", url=url, headers={},
                                channel_id=2))[0]) == {
        "Err": {"WsOpenFailed": {"url": url}}}
    n.wait_log("1 connections open (--http-client-max-ws)")
    via(n, ws("WebSocketClose", channel_id=1))
    wait_events(n, 2)  # welcome, close
    deadline = time.monotonic() + 5
    while True:
        r = json.loads(via(n, ws("WebSocketOpen", url=url, headers={},
                                 channel_id=2))[0])
        if r == {"Ok": "WebSocketAck"} or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert r == {"Ok": "WebSocketAck"}
