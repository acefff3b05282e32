"""http-server:distro:sys with real clients: curl for HTTP, Debian's
python3-websockets for WebSockets, raw sockets for pipelining and the limits.
The test process is tests/procs/httpd.c in packages thttpd and thttpd2."""
import asyncio
import json
import re
import socket
import struct
import subprocess
import threading
import time

import pytest
import websockets

from conftest import BIN, exchange, free_port, needs_fibers, pid, thread_names

SRV = pid("srv", "thttpd")
NOGRANT = pid("nogrant", "thttpd")
OTHER = pid("other", "thttpd2")
PASSWORD = "correct horse"
# what a browser sends: a client accepting HTML gets the login page, any
# other a JSON 401 (test_http_routing.py)
HTML = ("-H", "Accept: text/html,*/*;q=0.8")


def start(node_factory, *extra, packages=("thttpd", "thttpd2")):
    port = free_port()
    n = node_factory(packages=packages,
                     extra=["--port", str(port), "--password", PASSWORD,
                            *extra])
    n.port = port
    return n


def bind(node, path, auth=False, local=False, process=SRV):
    body = {"Bind": {"path": path, "authenticated": auth,
                     "local_only": local, "cache": False}}
    assert node.ask(process, "send " + json.dumps(body)) == '{"Ok":null}'


def curl(node, path, *args, host=None, input=None):
    """(status, headers (lowercase names), body bytes); `input`: curl's
    standard input."""
    cmd = ["curl", "-s", "-S", "-D", "-", "--max-time", "30",
           f"http://127.0.0.1:{node.port}{path}", *args]
    if host:
        cmd += ["-H", f"Host: {host}"]
    out = subprocess.run(cmd, capture_output=True, check=True,
                         input=input).stdout
    blocks = out.split(b"\r\n\r\n")
    # skip "100 Continue" interim responses
    i = 0
    while blocks[i].startswith(b"HTTP/1.1 100"):
        i += 1
    head, body = blocks[i], b"\r\n\r\n".join(blocks[i + 1:])
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for ln in lines[1:]:
        k, _, v = ln.partition(":")
        headers[k.strip().lower()] = v.strip()
    return status, headers, body


def http_json(body):
    return json.loads(body.split(b"\n", 1)[0])


# ------------------------------------------------------------ point 1


def test_bind_replies(node_factory):
    n = start(node_factory)
    bind(n, "/api")
    assert n.ask(SRV, 'send {"Bind":{"path":"/s","authenticated":false,'
                      '"local_only":false,"cache":true}}') == '{"Err":"NoBlob"}'
    assert n.ask(SRV, 'send {"Nope":1}') == '{"Err":"MalformedRequest"}'
    assert n.ask(SRV, 'send {"Bind":{"path":"/x"}}') == \
        '{"Err":"MalformedRequest"}'
    # Success is answered only when a response is expected.
    assert n.ask(SRV, 'fire {"Bind":{"path":"/q","authenticated":false,'
                      '"local_only":false,"cache":false}}') == "fired"


def test_request_shape_and_response(node_factory):
    n = start(node_factory)
    bind(n, "/api/")
    bind(n, "/item/:id")
    bind(n, "/files/*rest")
    st, hd, body = curl(n, f"/{SRV}/api/?q=a%20b&x=1+2&q=last", "-d",
                        "hello body", "-H", "X-Custom: Yes")
    assert st == 200
    assert hd["content-type"] == "application/json"
    assert hd["x-test"] == "yes"
    req = http_json(body)["Http"]
    assert list(req) == ["source_socket_addr", "method", "url", "bound_path",
                         "headers", "url_params", "query_params"]
    assert req["method"] == "POST"
    assert req["url"] == f"http://127.0.0.1/{SRV}/api"
    assert req["bound_path"] == f"/{SRV}/api"
    assert req["source_socket_addr"].startswith("127.0.0.1:")
    assert req["headers"]["x-custom"] == "Yes"
    assert req["query_params"] == {"q": "last", "x": "1 2"}
    assert req["url_params"] == {}
    assert body.split(b"\n", 1)[1] == b"hello body"
    req = http_json(curl(n, f"/{SRV}/item/42")[2])["Http"]
    assert req["bound_path"] == f"/{SRV}/item/:id"
    assert req["url_params"] == {"id": "42"}
    req = http_json(curl(n, f"/{SRV}/files/a/b.txt")[2])["Http"]
    assert req["url_params"] == {"rest": "a/b.txt"}
    # The server writes this JSON itself, byte for byte as jansson did:
    # compact, UTF-8 as is; a header sent twice keeps its first place and
    # takes its last value.
    st, hd, body = curl(n, f"/{SRV}/api/?k=%C3%A9", "-H", "X-Dup: 1",
                        "-H", "X-Mid: m", "-H", "X-Dup: 2", "-H",
                        'X-Q: "a\\b"\t')
    line = body.split(b"\n", 1)[0]
    req = json.loads(line)["Http"]
    assert line == json.dumps({"Http": req}, separators=(",", ":"),
                              ensure_ascii=False).encode()
    names = list(req["headers"])
    assert names.index("x-dup") < names.index("x-mid")
    assert req["headers"]["x-dup"] == "2"
    assert req["headers"]["x-q"] == '"a\\b"\t'
    assert req["query_params"] == {"k": "\u00e9"}
    # a chunked body, gathered in growing steps, reaches the process whole
    big = bytes(range(256)) * 40
    st, hd, body = curl(n, f"/{SRV}/api/", "-H", "Transfer-Encoding: chunked",
                        "--data-binary", "@-", input=big)
    assert st == 200 and body.split(b"\n", 1)[1] == big
    # a chunked body's trailer fields are dropped: none reaches the process
    # (the route and access were decided on the head), and they count
    # against the head's limit
    s = raw(n)
    s.sendall(f"POST /{SRV}/api/ HTTP/1.1\r\nHost: localhost\r\n"
              "Transfer-Encoding: chunked\r\nTrailer: X-Late\r\n"
              "Connection: close\r\n\r\n"
              "5\r\nhello\r\n0\r\nX-Late: injected\r\n"
              "Cookie: hyperc-auth_x=forged\r\n\r\n".encode())
    data = read_all(s)
    s.close()
    assert data.startswith(b"HTTP/1.1 200"), data
    req = json.loads(data.split(b"\r\n\r\n", 1)[1].split(b"\n", 1)[0])
    assert req["Http"]["headers"]["trailer"] == "X-Late"
    assert "x-late" not in req["Http"]["headers"]
    assert "cookie" not in req["Http"]["headers"]
    s = raw(n)
    s.sendall(f"POST /{SRV}/api/ HTTP/1.1\r\nHost: localhost\r\n"
              "Transfer-Encoding: chunked\r\n\r\n"
              f"5\r\nhello\r\n0\r\nX-Big: {'b' * 70000}\r\n\r\n"
              .encode())
    assert read_all(s).startswith(b"HTTP/1.1 431")
    s.close()
    # the process's status passes through
    assert curl(n, f"/{SRV}/api?status=201")[0] == 201
    assert curl(n, f"/{SRV}/api?status=418")[0] == 418


def test_routing_fallback_unbind_rebind(node_factory):
    n = start(node_factory)
    assert curl(n, f"/{SRV}/api")[0] == 404
    bind(n, "/")
    req = http_json(curl(n, f"/{SRV}/not/bound")[2])["Http"]
    assert req["bound_path"] == f"/{SRV}"
    bind(n, "/api")
    assert n.ask(SRV, 'send {"Unbind":{"path":"/api"}}') == '{"Ok":null}'
    assert curl(n, f"/{SRV}/api")[0] == 404      # unbound: no fallback
    bind(n, "/api")
    assert curl(n, f"/{SRV}/api")[0] == 200      # re-bound
    assert curl(n, "/nothing/here")[0] == 404


def test_timeouts_and_bad_answers(node_factory):
    n = start(node_factory)
    bind(n, "/api")
    t = time.monotonic()
    st, _, _ = curl(n, f"/{SRV}/api?noanswer=1", "-H",
                    "X-Hyperware-Http-Server-Timeout: 1")
    assert st == 408 and time.monotonic() - t < 10
    assert curl(n, f"/{SRV}/api?bad=1")[0] == 500
    # A process that did not grant http-server messaging cannot be reached:
    # the Bind takes effect, but its answer is refused (a timeout error, as
    # the kernel checks responses too), and HTTP requests get 503.
    assert n.ask(NOGRANT, 'send {"Bind":{"path":"/api","authenticated":'
                          'false,"local_only":false,"cache":false}}') == \
        "timeout"
    assert curl(n, f"/{NOGRANT}/api")[0] == 503
    # the log names the process it could not reach
    n.wait_log(f"http-server: request to test.os@{NOGRANT} could not be "
               "delivered; 503")


def test_a_full_mailbox_is_503_busy_not_an_empty_500(node_factory):
    """The kernel answers http-server for a process whose mailbox is full
    (Busy, in the framework's error shape); the client gets that, as a 503
    with the JSON saying why, and the requests that were queued are served."""
    n = start(node_factory, "--mailbox-max", "2")
    bind(n, "/api")
    results = {}

    def get(i, query):
        results[i] = curl(n, f"/{SRV}/api?{query}")

    # the process holds its thread 5 s in the first request; six more come
    # meanwhile: two fit in its mailbox, the rest are refused
    first = threading.Thread(target=get, args=(0, "sleep=5000"))
    first.start()
    time.sleep(0.5)
    rest = [threading.Thread(target=get, args=(i, f"i={i}"))
            for i in range(1, 7)]
    for t in rest:
        t.start()
    for t in [first, *rest]:
        t.join(timeout=60)
    statuses = sorted(st for st, _, _ in results.values())
    assert len(statuses) == 7 and statuses.count(503) >= 4, statuses
    assert set(statuses) == {200, 503}, statuses
    for st, hd, body in results.values():
        if st != 503:
            continue
        assert hd["content-type"] == "application/json"
        assert json.loads(body) == {"HypercError": {
            "kind": "Busy", "message": f"the mailbox of {SRV} is full (2 "
            "requests queued): this request was not delivered; try again "
            "later"}}
    # a process's own answer that is neither an HttpResponse nor that
    # error reply is still an empty 500
    assert curl(n, f"/{SRV}/api?bad=1")[:3:2] == (500, b"")


def test_default_timeout_is_15s(node_factory):
    n = start(node_factory)
    bind(n, "/api")
    t = time.monotonic()
    assert curl(n, f"/{SRV}/api?noanswer=1")[0] == 408
    assert 14 <= time.monotonic() - t < 25


def test_static_content(node_factory):
    n = start(node_factory)
    rep = n.inject(SRV, 'sendblob text/css {"Bind":{"path":"/style.css",'
                   '"authenticated":false,"local_only":false,"cache":true}}',
                   blob=b"body{color:red}")
    assert rep["body"] == '{"Ok":null}'
    st, hd, body = curl(n, f"/{SRV}/style.css")
    assert (st, hd["content-type"], body) == (200, "text/css",
                                              b"body{color:red}")
    # other methods go to the process
    st, _, body = curl(n, f"/{SRV}/style.css", "-X", "POST")
    assert st == 200 and http_json(body)["Http"]["method"] == "POST"
    rep = n.inject(SRV, 'sendblob - {"Bind":{"path":"/plain",'
                   '"authenticated":false,"local_only":false,"cache":true}}',
                   blob=b"x")
    assert curl(n, f"/{SRV}/plain")[1]["content-type"] == "text/plain"


def test_local_only(node_factory):
    n = start(node_factory)
    bind(n, "/local", local=True)
    assert curl(n, f"/{SRV}/local")[0] == 200
    for h in ("X-Forwarded-For: 1.2.3.4", "X-Real-IP: 1.2.3.4",
              "X-Forwarded-Proto: https", "X-Forwarded-Host: a.b"):
        assert curl(n, f"/{SRV}/local", "-H", h)[0] == 403


def test_keep_alive_chunked_and_pipelining(node_factory):
    n = start(node_factory)
    bind(n, "/api")
    url = f"http://127.0.0.1:{n.port}/{SRV}/api"
    r = subprocess.run(["curl", "-s", "-v", url, url, url],
                       capture_output=True, text=True)
    assert r.stderr.count("Re-using existing connection") == 2, r.stderr
    st, _, body = curl(n, f"/{SRV}/api", "-H", "Transfer-Encoding: chunked",
                       "--data-binary", "chunky " * 1000)
    assert st == 200 and body.split(b"\n", 1)[1] == b"chunky " * 1000
    # three requests in one write: three answers, in order
    reqs = b"".join(
        f"GET /{SRV}/api?i={i} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
        for i in range(3))
    data = exchange(n.port, reqs + b"POST /" + SRV.encode() +
                    b"/api HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
                    b"Connection: close\r\n\r\nabc", timeout=10)
    assert data.count(b"HTTP/1.1 200 OK") == 4
    order = [data.find(f'"i":"{i}"'.encode()) for i in range(3)]
    assert -1 not in order and order == sorted(order)
    assert data.endswith(b"\nabc")


# ------------------------------------------------------------ point 2


def raw(node):
    s = socket.create_connection(("127.0.0.1", node.port))
    s.settimeout(10)
    return s


def read_all(s):
    data = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    except (ConnectionResetError, socket.timeout):
        pass
    return data


def test_limits_body_and_header(node_factory):
    n = start(node_factory, "--http-max-body", "1000", "--http-max-header",
              "2000")
    bind(n, "/api")
    assert curl(n, f"/{SRV}/api", "--data-binary", "x" * 1000)[0] == 200
    assert curl(n, f"/{SRV}/api", "--data-binary", "x" * 1001)[0] == 413
    st, hd, _ = curl(n, f"/{SRV}/api", "-H", "Transfer-Encoding: chunked",
                     "--data-binary", "y" * 5000)
    assert st == 413 and hd.get("connection") == "close"
    assert curl(n, f"/{SRV}/api", "-H", "X-Big: " + "z" * 2500)[0] == 431


def test_limits_connections(node_factory):
    n = start(node_factory, "--http-max-connections", "3")
    bind(n, "/api")
    held = [raw(n) for _ in range(3)]
    time.sleep(0.3)
    extra = raw(n)
    assert read_all(extra) == b""           # closed at once
    extra.close()
    for s in held:
        s.close()
    time.sleep(0.3)
    assert curl(n, f"/{SRV}/api")[0] == 200  # room again


def test_limits_idle_and_slow_request(node_factory):
    n = start(node_factory, "--http-idle-timeout", "1",
              "--http-request-timeout", "1")
    bind(n, "/api")
    idle = raw(n)
    t = time.monotonic()
    assert read_all(idle) == b""
    assert time.monotonic() - t < 5
    slow = raw(n)
    slow.sendall(b"GET /" + SRV.encode() + b"/api HTTP/1.1\r\nHost: x\r\n")
    t = time.monotonic()
    assert read_all(slow).startswith(b"HTTP/1.1 408")
    assert time.monotonic() - t < 5
    body = raw(n)
    body.sendall(b"POST /" + SRV.encode() + b"/api HTTP/1.1\r\nHost: x\r\n"
                 b"Content-Length: 100\r\n\r\nonly a part")
    assert read_all(body).startswith(b"HTTP/1.1 408")
    # a connection kept alive after an answer is closed when idle
    ka = raw(n)
    ka.sendall(b"GET /" + SRV.encode() + b"/api HTTP/1.1\r\nHost: x\r\n\r\n")
    assert read_all(ka).startswith(b"HTTP/1.1 200")


def test_client_that_never_reads_its_response(node_factory):
    """A client that sends a request and then reads nothing loses its
    connection once it has taken none of the response for the idle
    timeout (its slot and the response's bytes are not held for ever); one
    that reads slowly keeps it."""
    n = start(node_factory, "--http-idle-timeout", "1")
    bind(n, "/api")
    body = b"z" * (8 << 20)  # echoed back: far more than the buffers hold
    head = ("POST /%s/api HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
            % (SRV, len(body))).encode()

    def client(small_window):
        s = socket.socket()
        if small_window:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect(("127.0.0.1", n.port))
        s.settimeout(10)
        s.sendall(head + body)
        return s

    stalled = client(True)
    # the cut comes 1 s after the response stalls, however long the process
    # takes to answer (seconds under ThreadSanitizer with a worker)
    n.wait_log("a client read none of its response for 1 s", timeout=60)
    got = read_all(stalled)
    assert got.startswith(b"HTTP/1.1 200")
    assert len(got) < len(body), len(got)  # cut off, not all of it
    # a slow reader: a little every 0.3 s, and all of it comes
    slow = client(False)
    got = b""
    deadline = time.monotonic() + 60
    while b"\r\n\r\n" not in got or len(got) < len(body):
        assert time.monotonic() < deadline
        time.sleep(0.3)
        chunk = slow.recv(1 << 20)
        assert chunk, len(got)
        got += chunk
    assert got.startswith(b"HTTP/1.1 200")
    slow.close()
    assert curl(n, f"/{SRV}/api")[0] == 200


def test_slow_clients_memory_bounded(node_factory):
    """Many clients that send a byte now and then are all closed by the
    request timeout; the node stays responsive."""
    n = start(node_factory, "--http-request-timeout", "2")
    bind(n, "/api")
    socks = [raw(n) for _ in range(50)]
    for s in socks:
        s.sendall(b"GET /")
    for _ in range(3):
        time.sleep(0.5)
        for s in socks:
            try:
                s.sendall(b"a")
            except OSError:
                pass
    assert curl(n, f"/{SRV}/api")[0] == 200
    for s in socks:
        assert read_all(s).startswith(b"HTTP/1.1 408")
        s.close()


# ------------------------------------------------------------ point 3


def ws_bind(node, path, auth=False, process=SRV):
    body = {"WebSocketBind": {"path": path, "authenticated": auth,
                              "extension": False}}
    assert node.ask(process, "send " + json.dumps(body)) == '{"Ok":null}'


def events(node, process=SRV, want=None, timeout=10):
    """Event lines seen by the process; wait until `want` is among them."""
    out = []
    deadline = time.monotonic() + timeout
    while True:
        rep = node.inject(process, "events")
        assert rep.get("ok"), rep
        text = rep.get("body", "")
        out += [ln for ln in text.split("\n") if ln]
        if want is None or any(want in ln for ln in out) or \
                time.monotonic() > deadline:
            return out
        time.sleep(0.1)


def test_websocket_messages(node_factory):
    n = start(node_factory)
    ws_bind(n, "/ws")

    async def client():
        async with websockets.connect(
                f"ws://127.0.0.1:{n.port}/{SRV}/ws") as ws:
            await ws.send("echo hello")
            assert await ws.recv() == "hello"
            await ws.send(b"\x00\x01binary")
            pong = await ws.ping(b"pp")
            await asyncio.wait_for(pong, 5)       # the server's auto pong
            await ws.send("close-me")
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 5)

    asyncio.run(client())
    ev = events(n, want="WebSocketClose")
    opened = json.loads(ev[0])["WebSocketOpen"]
    ch = opened["channel_id"]
    assert list(opened) == ["path", "channel_id", "source_socket_addr",
                            "forwarded_for"]
    assert opened["path"] == "/ws" and opened["forwarded_for"] is None
    assert opened["source_socket_addr"].startswith("127.0.0.1:")
    push = '{"WebSocketPush":{"channel_id":%d,"message_type":"%s"}} | %s'
    assert push % (ch, "Text", "echo hello") in ev
    assert any(ln.startswith(push % (ch, "Binary", "")) for ln in ev)
    assert push % (ch, "Ping", "pp") in ev
    assert push % (ch, "Text", "close-me") in ev
    assert ev[-1] == '{"WebSocketClose":%d}' % ch


def test_websocket_push_rules(node_factory):
    n = start(node_factory)
    ws_bind(n, "/ws")

    async def client():
        async with websockets.connect(
                f"ws://127.0.0.1:{n.port}/{SRV}/ws") as ws:
            ev = events(n, want="WebSocketOpen")
            ch = json.loads(ev[0])["WebSocketOpen"]["channel_id"]
            push = ('{"WebSocketPush":{"channel_id":%d,'
                    '"message_type":"%s"}}')
            # another process cannot use the channel
            assert n.ask(OTHER, "send " + push % (ch, "Text")) == \
                '{"Err":"NoBlob"}'
            rep = n.inject(OTHER, "sendblob - " + push % (ch, "Text"),
                           blob=b"x")
            assert rep["body"] == '{"Err":"WsChannelNotFound"}'
            rep = n.inject(OTHER, "send " + '{"WebSocketClose":%d}' % ch)
            assert rep["body"] == '{"Err":"WsChannelNotFound"}'
            rep = n.inject(SRV, "sendblob - " + push % (ch + 1, "Text"),
                           blob=b"x")
            assert rep["body"] == '{"Err":"WsChannelNotFound"}'
            rep = n.inject(SRV, "sendblob - " + push % (ch, "Ping"),
                           blob=b"p" * 126)
            assert rep["body"] == '{"Err":"WsPingPongTooLong"}'
            # the owner pushes text (lossy UTF-8) and binary
            rep = n.inject(SRV, "sendblob - " + push % (ch, "Text"),
                           blob=b"caf\xc3\xa9 \xff")
            assert rep["body"] == '{"Ok":null}'
            assert await ws.recv() == "caf\u00e9 \ufffd"
            n.inject(SRV, "sendblob - " + push % (ch, "Binary"),
                     blob=b"\x00\xff")
            assert await ws.recv() == b"\x00\xff"
            rep = n.inject(SRV, "send " + '{"WebSocketClose":%d}' % ch)
            assert rep["body"] == '{"Ok":null}'
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 5)
            return ch

    ch = asyncio.run(client())
    assert '{"WebSocketClose":%d}' % ch in events(n, want="WebSocketClose")


def ws_two_then_full(url, refusals=1):
    """Against a limit of two WebSockets: two open at url, `refusals` more
    answered 503, then one of the two closed and room again."""
    async def client():
        a = await websockets.connect(url)
        b = await websockets.connect(url)
        for _ in range(refusals):
            with pytest.raises(websockets.InvalidStatusCode) as e:
                await websockets.connect(url)
            assert e.value.status_code == 503
        await a.close()
        await asyncio.sleep(0.3)
        c = await websockets.connect(url)   # room again
        await c.close()
        await b.close()

    asyncio.run(client())


def test_websocket_limits(node_factory):
    n = start(node_factory, "--ws-max-connections", "2", "--ws-queue-max",
              "5")
    ws_bind(n, "/ws")
    ws_two_then_full(f"ws://127.0.0.1:{n.port}/{SRV}/ws")
    # unknown path: 404
    assert ws_connect_fails(f"ws://127.0.0.1:{n.port}/{SRV}/nows") == 404

    # a client that never reads: after 5 queued frames it is closed
    # (the earlier connections' events taken first, all three closes seen,
    # so that the open below is this client's, not one of theirs)
    seen, deadline = [], time.monotonic() + 30
    while sum("WebSocketClose" in e for e in seen) < 3:
        assert time.monotonic() < deadline, seen
        seen += events(n)
        time.sleep(0.05)
    s = raw(n)
    s.sendall(f"GET /{SRV}/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
              "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
              "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n".encode())
    assert s.recv(4096).startswith(b"HTTP/1.1 101")
    ev = events(n, want="WebSocketOpen")
    ch = json.loads([e for e in ev if "WebSocketOpen" in e][-1])[
        "WebSocketOpen"]["channel_id"]
    push = '{"WebSocketPush":{"channel_id":%d,"message_type":"Binary"}}' % ch
    big = b"B" * (4 << 20)
    for _ in range(12):
        n.inject(SRV, "sendblob - " + push, blob=big, timeout=10)
    # 48 MiB through a sanitized node on a busy machine: give it time
    n.wait_log("frames waiting for a client that does not read", timeout=60)
    assert '{"WebSocketClose":%d}' % ch in events(n, want="WebSocketClose")
    s.close()


def ws_frame(text):
    """A client's masked, final text frame of `text` (under 64 KiB)."""
    data = text.encode()
    mask = b"\x01\x02\x03\x04"
    n = len(data)
    head = bytes([0x81, 0x80 | n]) if n < 126 else \
        bytes([0x81, 0x80 | 126, n >> 8, n & 0xFF])
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data))


def ws_read_frames(s, count, timeout=60):
    """`count` server frames from socket s: [(opcode, payload)] (WsFrames'
    checks on each)."""
    frames = WsFrames(s)
    deadline = time.monotonic() + timeout
    return [frames.next(deadline) for _ in range(count)]


def test_websocket_pushes_whole_and_in_order(node_factory):
    """Pushes go out in the order sent, each frame whole, when the socket
    fills (a client that reads late: a frame begun by its sender is ended
    by the server's loop) and when the client keeps up."""
    n = start(node_factory, "--ws-queue-max", "100000")
    ws_bind(n, "/ws")
    s = ws_raw_open(n)
    for count, size in ((300, 100000), (1000, 40), (3, 70000)):
        s.sendall(ws_frame(f"flood {count} {size}"))
        time.sleep(1)  # the socket's buffers fill meanwhile
        frames = ws_read_frames(s, count)
        for i, (op, data) in enumerate(frames):
            want = f"msg {i}".encode()
            want += b"." * (size - len(want)) if size > 32 else b""
            assert (op, data) == (1, want), (count, size, i, data[:40])
    s.sendall(ws_frame("echo done"))
    assert ws_read_frames(s, 1) == [(1, b"done")]
    s.close()


def ws_raw_open(n):
    """A raw socket upgraded to a WebSocket on /ws of SRV."""
    s = raw(n)
    s.sendall(f"GET /{SRV}/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
              "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
              "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(1)
    assert head.startswith(b"HTTP/1.1 101")
    return s


def ws_control(op, payload):
    """A client's masked control frame (payload under 126 bytes)."""
    mask = b"\x05\x06\x07\x08"
    return bytes([0x80 | op, 0x80 | len(payload)]) + mask + \
        bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


class WsFrames:
    """Server frames from a raw socket, parsed as they come: each must be
    whole, final, unmasked, with no reserved bit set."""

    def __init__(self, s):
        self.s, self.buf = s, b""

    def next(self, deadline):
        while True:
            b = self.buf
            if len(b) >= 2:
                assert b[0] & 0x70 == 0, ("a reserved bit", b[:16])
                assert b[0] & 0x80, ("a fragment", b[:16])
                assert b[1] & 0x80 == 0, "a server frame is not masked"
                assert b[0] & 0x0F in (1, 2, 8, 9, 10), ("opcode", b[:16])
                n, at = b[1] & 0x7F, 2
                if n == 126 and len(b) >= 4:
                    n, at = int.from_bytes(b[2:4], "big"), 4
                elif n == 127 and len(b) >= 10:
                    n, at = int.from_bytes(b[2:10], "big"), 10
                if (n < 126 or at > 2) and len(b) >= at + n:
                    self.buf = b[at + n:]
                    return b[0] & 0x0F, b[at:at + n]
            assert time.monotonic() < deadline, "no whole frame in time"
            chunk = self.s.recv(1 << 16)
            assert chunk, "closed in the middle of a frame"
            self.buf += chunk


def test_websocket_pushes_between_control_frames(node_factory):
    """The server's own frames (pongs to the client's pings, its keep-alive
    pings) go between pushes, never inside one, while pushes flood a
    client that reads slowly; the pushes stay in order."""
    n = start(node_factory, "--ws-queue-max", "100000",
              "--ws-ping-interval", "1")
    ws_bind(n, "/ws")
    s = ws_raw_open(n)
    count, size = 1500, 6000
    s.sendall(ws_frame(f"flood {count} {size}"))
    time.sleep(1)
    rd = WsFrames(s)
    deadline = time.monotonic() + 120
    got, pongs, sent = 0, [], []
    while got < count or len(pongs) < len(sent):
        if got % 50 == 0 and len(sent) < got // 50 + 1 and got < count:
            sent.append(b"p%d" % len(sent))
            s.sendall(ws_control(9, sent[-1]))
            time.sleep(0.02)  # the socket fills again meanwhile
        op, data = rd.next(deadline)
        if op == 10:
            pongs.append(data)
        elif op == 9:
            assert data == b"hyperc-keepalive"
        else:
            want = f"msg {got}".encode()
            want += b"." * (size - len(want))
            assert (op, data) == (1, want), (got, data[:40])
            got += 1
    assert pongs == sent
    s.close()


def test_websocket_close_after_pushes(node_factory):
    """A Close its process sends after pushes goes out after them, whole
    (the pushes begun on the process's thread and ended by the loop)."""
    n = start(node_factory, "--ws-queue-max", "100000")
    ws_bind(n, "/ws")
    for count, size in ((200, 100000), (2000, 40)):
        s = ws_raw_open(n)
        s.sendall(ws_frame(f"flood {count} {size}") + ws_frame("close-me"))
        time.sleep(1)
        rd = WsFrames(s)
        deadline = time.monotonic() + 60
        for i in range(count):
            want = f"msg {i}".encode()
            want += b"." * (size - len(want)) if size > 32 else b""
            op, data = rd.next(deadline)
            assert (op, data) == (1, want), (count, i, op, data[:40])
        assert rd.next(deadline)[0] == 8
        s.close()


def ws_client_frame(op, payload, fin=True):
    """A client's masked frame of any opcode, final or not."""
    mask = b"\x0a\x0b\x0c\x0d"
    n = len(payload)
    head = bytes([(0x80 if fin else 0) | op])
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 1 << 16:
        head += bytes([0x80 | 126]) + n.to_bytes(2, "big")
    else:
        head += bytes([0x80 | 127]) + n.to_bytes(8, "big")
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def test_websocket_fragments_and_message_size(node_factory):
    """A message in fragments, with a ping between them and its bytes
    trickling in, reaches the process whole (the pong first); a message
    over --http-max-body, in one frame or in fragments, closes the socket
    with 1009 and the process never sees it."""
    n = start(node_factory, "--http-max-body", "1000")
    ws_bind(n, "/ws")
    s = ws_raw_open(n)
    text = b"echo " + bytes(range(0x41, 0x5b)) * 30      # 785 bytes
    wire = ws_client_frame(1, text[:100], fin=False) + \
        ws_client_frame(9, b"between") + \
        ws_client_frame(0, text[100:101], fin=False) + \
        ws_client_frame(0, b"", fin=False) + \
        ws_client_frame(0, text[101:], fin=True)
    for i in range(0, len(wire), 7):                       # in small pieces
        s.sendall(wire[i:i + 7])
        time.sleep(0.002)
    assert ws_read_frames(s, 2) == [(10, b"between"), (1, text[5:])]
    # the next message, binary, whole in one frame, still comes through
    s.sendall(ws_client_frame(2, b"\x00bin"))
    s.sendall(ws_frame("echo again"))
    assert ws_read_frames(s, 1) == [(1, b"again")]
    # fragments of 600 and 600 bytes: over 1000 in all
    s.sendall(ws_client_frame(1, b"echo " + b"x" * 595, fin=False) +
              ws_client_frame(0, b"y" * 600, fin=True))
    op, data = ws_read_frames(s, 1)[0]
    assert op == 8 and int.from_bytes(data[:2], "big") == 1009, data
    s.close()
    # one frame of 1001 bytes: the same
    s = ws_raw_open(n)
    s.sendall(ws_client_frame(1, b"echo " + b"z" * 996))
    op, data = ws_read_frames(s, 1)[0]
    assert op == 8 and int.from_bytes(data[:2], "big") == 1009, data
    s.close()
    ev = events(n, want="WebSocketClose")
    pushes = [e for e in ev if "WebSocketPush" in e]
    assert any(e.endswith("| " + text.decode()) for e in pushes), pushes
    assert not any("xxxx" in e or "zzzz" in e for e in pushes), pushes


def events_until_closes(node, closes, timeout=30):
    """The process's event lines, gathered until `closes` WebSocketClose
    lines are among them or `timeout` seconds have passed."""
    ev = []
    deadline = time.monotonic() + timeout
    while True:
        ev += events(node)
        if (sum(e.startswith('{"WebSocketClose"') for e in ev) >= closes or
                time.monotonic() > deadline):
            return ev
        time.sleep(0.1)


@needs_fibers
def test_websocket_read_by_the_netpoller(node_factory):
    """With the process in-process, an idle scheduler thread reads an open
    WebSocket (the netpoller) and hands its messages to the process there,
    while the loop writes what the reader leaves it (a pong, a close) and
    ends the socket: messages in order, pings answered between them, a
    message over --http-max-body closed with 1009, a Close answered, and a
    client that just goes away ends its channel (WebSocketClose)."""
    n = start(node_factory, "--in-process", "-v", "2",
              "--http-max-body", "1000")
    ws_bind(n, "/ws")
    s = ws_raw_open(n)
    rd = WsFrames(s)
    deadline = time.monotonic() + 60
    n.wait_log("read by an idle scheduler thread (netpoller)")
    for k in range(3):
        s.sendall(b"".join(ws_frame(f"echo m{k}.{i}") for i in range(100)) +
                  ws_control(9, b"p%d" % k))
        got = [rd.next(deadline) for _ in range(101)]
        # the pong may pass echoes still on their way from the process
        assert (10, b"p%d" % k) in got, got
        assert [f for f in got if f[0] != 10] == \
            [(1, f"m{k}.{i}".encode()) for i in range(100)]
    s.close()  # no Close frame: the end of the stream
    # over --http-max-body: 1009, and the process never sees it
    s = ws_raw_open(n)
    s.sendall(ws_frame("echo " + "z" * 996))
    op, data = WsFrames(s).next(deadline)
    assert op == 8 and int.from_bytes(data[:2], "big") == 1009, data
    s.close()
    # a Close from the client: answered, then the server ends the socket
    s = ws_raw_open(n)
    rd = WsFrames(s)
    s.sendall(ws_frame("echo last"))
    assert rd.next(deadline) == (1, b"last")
    s.sendall(ws_control(8, b"\x03\xe8bye"))
    op, data = rd.next(deadline)
    assert op == 8 and data[:2] == b"\x03\xe8", data
    s.settimeout(10)
    assert s.recv(1) == b""
    s.close()
    ev = events_until_closes(n, 3)
    opened = [json.loads(e)["WebSocketOpen"]["channel_id"] for e in ev
              if e.startswith('{"WebSocketOpen"')]
    assert len(opened) == 3, ev
    closed = [e for e in ev if e.startswith('{"WebSocketClose"')]
    assert sorted(closed) == sorted('{"WebSocketClose":%d}' % c
                                    for c in opened), ev
    pushes = [e for e in ev if "WebSocketPush" in e]
    assert not any("zzzz" in e for e in pushes), pushes
    got = [e.rsplit("| ", 1)[1] for e in pushes if "| echo m" in e]
    assert got == [f"echo m{k}.{i}" for k in range(3) for i in range(100)]
    for c in opened:
        n.wait_log(f"websocket {c}: read by an idle scheduler thread")


@needs_fibers
def test_websocket_netpoller_hands_back_and_ends(node_factory):
    """The netpoller's edges: a frame that came in the handshake's packet is
    read first; a Close from the server is answered by the client and the
    socket ends; after a message over the limit in fragments (the reader's
    own check: 1009) the loop reads the socket again and sees the client go,
    with no keep-alive to end it otherwise; on a node with one, a Pong keeps
    a silent socket and silence ends it; a socket is still open when each
    node stops."""
    def opened_and_closed(n, closes):
        ev = events_until_closes(n, closes)
        opened = [json.loads(e)["WebSocketOpen"]["channel_id"] for e in ev
                  if e.startswith('{"WebSocketOpen"')]
        closed = sorted(e for e in ev if e.startswith('{"WebSocketClose"'))
        assert closed == sorted('{"WebSocketClose":%d}' % c
                                for c in opened[:closes]), ev
        for c in opened:
            n.wait_log(f"websocket {c}: read by an idle scheduler thread")
        return opened, [e.rsplit("| ", 1)[1] for e in ev
                        if "WebSocketPush" in e]

    n = start(node_factory, "--in-process", "-v", "2",
              "--http-max-body", "1000", "--ws-ping-interval", "0",
              "--ws-queue-max", "100000")
    ws_bind(n, "/ws")
    deadline = time.monotonic() + 60
    # the handshake and a frame in one packet
    s = raw(n)
    s.sendall(f"GET /{SRV}/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
              "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
              "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n".encode() +
              ws_frame("echo early"))
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(1)
    assert head.startswith(b"HTTP/1.1 101")
    rd = WsFrames(s)
    assert rd.next(deadline) == (1, b"early")
    s.sendall(ws_frame("echo second"))
    assert rd.next(deadline) == (1, b"second")
    # the process closes it: the client's answer ends the socket
    s.sendall(ws_frame("close-me"))
    op, _ = rd.next(deadline)
    assert op == 8
    s.sendall(ws_control(8, b"\x03\xe8"))
    s.settimeout(10)
    assert s.recv(1) == b""
    s.close()
    # fragments of 600 and 600 bytes, over 1000 in all: 1009; then the
    # client goes without its Close, and the socket ends
    s = ws_raw_open(n)
    s.sendall(ws_client_frame(1, b"echo " + b"p" * 595, fin=False) +
              ws_client_frame(0, b"q" * 600, fin=True))
    op, data = WsFrames(s).next(deadline)
    assert op == 8 and int.from_bytes(data[:2], "big") == 1009, data
    s.close()
    # a client that sends its Close and half-closes while pushes fill the
    # socket, reading nothing: the loop, reading again, sees its end
    s = ws_raw_open(n)
    s.sendall(ws_frame("flood 300 100000"))
    time.sleep(1)  # the socket's buffers fill meanwhile
    s.sendall(ws_control(8, b"\x03\xe8"))
    s.shutdown(socket.SHUT_WR)
    keep = ws_raw_open(n)  # left open while the node stops
    keep.sendall(ws_frame("echo still"))
    assert WsFrames(keep).next(deadline) == (1, b"still")
    opened, pushes = opened_and_closed(n, 3)
    s.close()
    assert len(opened) == 4
    assert pushes[:2] == ["echo early", "echo second"], pushes
    assert not any("pppp" in p or "qqqq" in p for p in pushes), pushes

    # the keep-alive: a Pong keeps a silent socket, silence ends it
    n = start(node_factory, "--in-process", "-v", "2",
              "--ws-ping-interval", "1")
    ws_bind(n, "/ws")
    s = ws_raw_open(n)
    rd = WsFrames(s)
    for _ in range(2):
        op, data = rd.next(deadline)
        assert (op, data) == (9, b"hyperc-keepalive")
        s.sendall(ws_control(10, data))
    s.settimeout(10)
    got = b""
    while True:  # a third ping, unanswered, then the end
        chunk = s.recv(1 << 16)
        if not chunk:
            break
        got += chunk
    assert got.startswith(b"\x89"), got
    s.close()
    keep2 = ws_raw_open(n)  # left open while the node stops
    keep2.sendall(ws_frame("echo still"))
    assert WsFrames(keep2).next(deadline) == (1, b"still")
    opened, pushes = opened_and_closed(n, 1)
    assert len(opened) == 2 and pushes == ["echo still"], pushes
    keep2.close()
    keep.close()


@needs_fibers
def test_websockets_read_by_the_netpoller_close_in_crowds(node_factory):
    """Netpoller-read WebSockets that go at once (half with a FIN, half
    with a reset), while as many new ones open (and may get their
    descriptors' numbers): each new one is read, each old one's end reaches
    the process once, and an HTTP request is answered meanwhile."""
    n = start(node_factory, "--in-process", "-v", "2",
              "--ws-ping-interval", "0", "--ws-max-connections-per-addr", "400",
              "--http-max-connections-per-addr", "500")
    ws_bind(n, "/ws")
    bind(n, "/api")
    deadline = time.monotonic() + 120

    def crowd(k, tag):
        socks = [ws_raw_open(n) for _ in range(k)]
        for i, s in enumerate(socks):
            s.sendall(ws_frame(f"echo {tag}{i}"))
        for i, s in enumerate(socks):
            assert WsFrames(s).next(deadline) == (1, f"{tag}{i}".encode())
        return socks

    socks = crowd(120, "a")
    closed = 0
    for r in range(4):
        for i, s in enumerate(socks):
            if i % 2:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                             struct.pack("ii", 1, 0))
            s.close()
        closed += len(socks)
        socks = crowd(120, f"r{r}-")
        st, _, _ = curl(n, f"/{SRV}/api")
        assert st == 200
    ev = events_until_closes(n, closed,
                             timeout=max(1, deadline - time.monotonic()))
    ends = [e for e in ev if e.startswith('{"WebSocketClose"')]
    assert len(ends) == closed and len(set(ends)) == closed, len(ends)
    n.wait_log("read by an idle scheduler thread", count=closed + len(socks))
    for s in socks:
        s.close()


@needs_fibers
def test_websocket_keepalive_read_while_every_process_computes(node_factory):
    """Every other process of a one-scheduler node computes for 3 s, longer
    than twice --ws-ping-interval, so no fiber parks on its own: the
    watchdog hands the scheduler to another thread, which parks in the
    netpoller, and the client's pongs are read.  Its WebSocket stays
    open and answers after."""
    n = start(node_factory, "--in-process", "--schedulers", "1", "-v", "2",
              "--ws-ping-interval", "1", packages=("thttpd", "tpkg"))
    ws_bind(n, "/ws")
    s = ws_raw_open(n)
    rd = WsFrames(s)
    s.sendall(ws_frame("echo before"))
    assert rd.next(time.monotonic() + 30) == (1, b"before")
    n.wait_log("read by an idle scheduler thread")
    for p in ("slow", "a", "b", "c"):
        n.inject(pid(p), "compute 3000", non_block=True)
    pings = 0
    end = time.monotonic() + 3.5
    while time.monotonic() < end:
        op, data = rd.next(time.monotonic() + 10)
        assert op == 9, (op, data)  # a keep-alive ping, not a Close
        s.sendall(ws_control(10, data))
        pings += 1
    assert pings >= 2, pings
    s.sendall(ws_frame("echo after"))
    while True:
        op, data = rd.next(time.monotonic() + 30)
        if op != 9:
            break
        s.sendall(ws_control(10, data))
    assert (op, data) == (1, b"after")
    assert "nothing from its client" not in n.log()
    for p in ("slow", "a", "b", "c"):
        assert n.ask(pid(p), "echo done", timeout=15) == "done"
    s.close()


# ------------------------------------------------------------ point 4


def ws_connect_fails(url, **kw):
    """The HTTP status with which a WebSocket handshake is refused."""
    async def go():
        with pytest.raises(websockets.InvalidStatusCode) as e:
            await websockets.connect(url, **kw)
        return e.value.status_code
    return asyncio.run(go())


def login(node, password=PASSWORD, host=None, sub=""):
    return curl(node, "/login", "-H", "Content-Type: application/json",
                "-d", json.dumps({"password": password, "subdomain": sub}),
                host=host)


def test_login_and_authenticated(node_factory):
    n = start(node_factory)
    bind(n, "/secret", auth=True)
    st, hd, body = curl(n, f"/{SRV}/secret", *HTML)
    assert st == 200 and b"Log in" in body and b"test.os" in body
    st, hd, body = curl(n, f"/{SRV}/secret")
    assert st == 401 and hd["content-type"] == "application/json"
    assert "hyperware-auth_test.os;" in http_json(body)["HypercError"][
        "message"]
    assert curl(n, "/login")[0] == 200
    assert login(n, "wrong")[0] == 401
    st, hd, _ = login(n)
    assert st == 200
    cookie = hd["set-cookie"].split(";")[0]
    assert cookie.startswith("hyperware-auth_test.os=")
    st, _, body = curl(n, f"/{SRV}/secret", "-H", "Cookie: " + cookie)
    assert st == 200 and http_json(body)["Http"]["bound_path"] == \
        f"/{SRV}/secret"
    bad = cookie[:-3] + ("AAA" if not cookie.endswith("AAA") else "BBB")
    assert b"Log in" in curl(n, f"/{SRV}/secret", "-H", "Cookie: " + bad,
                             *HTML)[2]
    # redirect after login
    st, hd, _ = curl(n, "/login?redirect=/" + SRV + "/secret", "-H",
                     "Content-Type: application/json", "-d",
                     json.dumps({"password": PASSWORD}))
    assert st == 303 and hd["location"].endswith(f"/{SRV}/secret")

    # WebSockets: an authenticated binding needs the cookie
    ws_bind(n, "/ws", auth=True)
    url = f"ws://127.0.0.1:{n.port}/{SRV}/ws"
    assert ws_connect_fails(url) == 404

    async def with_cookie():
        async with websockets.connect(
                url, extra_headers={"Cookie": cookie}) as ws:
            await ws.send("echo ok")
            assert await ws.recv() == "ok"

    asyncio.run(with_cookie())


def test_password_made_at_first_boot(node_factory, tmp_path):
    port = free_port()
    home = tmp_path / "h"
    n = node_factory(packages=("thttpd",), extra=["--port", str(port)],
                     home=home)
    n.port = port
    # shown once on the terminal; the node keeps only its hash (0600)
    out = n.proc.stdout.readline() + n.proc.stdout.readline()
    m = re.search(r"the node password (\S+) \(made at this first boot", out)
    assert m, out
    pw = m.group(1)
    assert len(pw) >= 16 and not (home / "http" / "password").exists()
    kept = (home / "http" / "password_hash")
    assert kept.read_text().startswith("$argon2id$") and pw not in \
        kept.read_text() and oct(kept.stat().st_mode)[-3:] == "600"
    assert len((home / "http" / "jwt_secret").read_bytes()) == 32
    assert login(n, pw)[0] == 200
    assert login(n, PASSWORD)[0] == 401


def test_secure_subdomain(node_factory):
    n = start(node_factory)
    assert n.ask(SRV, 'send {"SecureBind":{"path":"/app","cache":false}}') \
        == '{"Ok":null}'
    bind(n, "/plain", auth=True, process=OTHER)
    sub = "thttpd-test-os"
    port = n.port
    st, hd, _ = curl(n, f"/{SRV}/app?a=1", host=f"localhost:{port}")
    assert st == 307
    assert hd["location"] == f"http://{sub}.localhost:{port}/{SRV}/app?a=1"
    shost = f"{sub}.localhost:{port}"
    st, _, body = curl(n, f"/{SRV}/app", *HTML, host=shost)
    assert st == 200 and b"Log in" in body
    # without HTML: a 401 naming the process's own cookie and subdomain
    st, _, body = curl(n, f"/{SRV}/app", host=shost)
    msg = http_json(body)["HypercError"]["message"]
    assert st == 401 and f"hyperware-auth_test.os@{SRV};" in msg, msg
    assert f'"subdomain": "{SRV}"' in msg, msg
    # the node-wide cookie is not enough on a secure subdomain
    plain = login(n)[1]["set-cookie"].split(";")[0]
    assert b"Log in" in curl(n, f"/{SRV}/app", "-H", "Cookie: " + plain,
                             *HTML, host=shost)[2]
    st, hd, _ = login(n, host=shost, sub=SRV)
    cookie = hd["set-cookie"].split(";")[0]
    assert cookie.startswith(f"hyperware-auth_test.os@{SRV}=")
    st, _, body = curl(n, f"/{SRV}/app", "-H", "Cookie: " + cookie,
                       host=shost)
    assert st == 200 and http_json(body)["Http"]["url"] == \
        f"http://{sub}.localhost/{SRV}/app"
    # the node's home page is no package's: not through a secure subdomain
    # (403), and the node stays up
    st, _, body = curl(n, "/", "-H", "Cookie: " + plain, host=shost)
    assert st == 403, body
    assert curl(n, "/", "-H", "Cookie: " + plain,
                host=f"localhost:{port}")[0] == 200
    # another package's plain path through this secure subdomain: 403
    assert curl(n, f"/{OTHER}/plain", "-H", "Cookie: " + plain,
                host=shost)[0] == 403
    assert curl(n, f"/{OTHER}/plain", "-H", "Cookie: " + plain,
                host=f"localhost:{port}")[0] == 200


# ------------------------------------------------------- several loops
# --http-loops N: N event loops, each a thread owning the connections
# handed to it in turn (the first to loop 0, the next to loop 1, ...).


def http_threads(n, want):
    """The node's http-server loop threads, by their name, once `want` of
    them are there (a loop's thread names itself as it starts, which may
    come after the node says it is up) or 10 s have passed."""
    deadline = time.monotonic() + 10
    while True:
        got = thread_names(n.proc.pid).count("hc-http")
        if got >= want or time.monotonic() > deadline:
            return got
        time.sleep(0.05)


def keep_alive_get(s, path):
    """A GET on an open keep-alive connection: its status line."""
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        assert chunk, data
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    m = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
    want = int(m.group(1)) if m else 0
    while len(rest) < want:
        chunk = s.recv(65536)
        assert chunk
        rest += chunk
    return int(head.split(b" ", 2)[1])


def test_loops_each_serve_their_connections_and_every_binding(node_factory):
    n = start(node_factory, "--http-loops", "3")
    assert http_threads(n, 3) == 3
    bind(n, "/api")
    conns = [raw(n) for _ in range(9)]       # handed out in turn: 3 a loop
    for s in conns:
        s.settimeout(30)
        assert keep_alive_get(s, f"/{SRV}/api") == 200
    # Every loop holds every binding: after the answer to a binding (the
    # last loop's) no connection, whichever loop has it, sees the old state.
    # (That the answer waits for the last loop is by construction; the gap
    # between loops is too short for a test to catch an early answer.)
    for round_ in range(3):
        bind(n, f"/late{round_}")
        assert [keep_alive_get(s, f"/{SRV}/late{round_}")
                for s in conns] == [200] * 9
        body = {"Unbind": {"path": f"/late{round_}"}}
        assert n.ask(SRV, "send " + json.dumps(body)) == '{"Ok":null}'
        assert [keep_alive_get(s, f"/{SRV}/late{round_}")
                for s in conns] == [404] * 9
    # a refused binding is answered once, with its error
    assert n.ask(SRV, 'send {"Bind":{"path":"/x"}}') == \
        '{"Err":"MalformedRequest"}'
    assert n.ask(SRV, "send " + json.dumps(
        {"Bind": {"path": "/s", "authenticated": False, "local_only": False,
                  "cache": True}})) == '{"Err":"NoBlob"}'
    for s in conns:
        s.close()
    # the binding's log line once, not once a loop
    n.wait_log(f"binding /{SRV}/late2,")
    assert n.log().count(f"binding /{SRV}/late2,") == 1


def test_loops_websockets_on_every_loop(node_factory):
    n = start(node_factory, "--http-loops", "3")
    ws_bind(n, "/ws")
    url = f"ws://127.0.0.1:{n.port}/{SRV}/ws"
    push = '{"WebSocketPush":{"channel_id":%d,"message_type":"Text"}}'
    # the same push with blanks: not the plain shape the senders' threads
    # read, so routed after a full parse
    spaced = '{ "WebSocketPush" : { "channel_id" : %d, "message_type" : "Text" } }'

    async def client():
        socks, chans = [], []
        for i in range(6):                   # two on each loop
            socks.append(await websockets.connect(url))
            ev = events(n, want="WebSocketOpen")
            opened = [json.loads(e)["WebSocketOpen"]["channel_id"]
                      for e in ev if "WebSocketOpen" in e]
            assert len(opened) == 1, ev
            chans.append(opened[0])
        assert len({c % 16 for c in chans}) == 3, chans
        for i, (ws, ch) in enumerate(zip(socks, chans)):
            rep = n.inject(SRV, "sendblob - " + push % ch, blob=b"plain%d" % i)
            assert rep["body"] == '{"Ok":null}'
            assert await asyncio.wait_for(ws.recv(), 10) == f"plain{i}"
            rep = n.inject(SRV, "sendblob - " + spaced % ch,
                           blob=b"spaced%d" % i)
            assert rep["body"] == '{"Ok":null}'
            assert await asyncio.wait_for(ws.recv(), 10) == f"spaced{i}"
            # a message from the client reaches the process
            await ws.send(f"hello {i}")
        ev = events(n, want="hello 5")
        for i, ch in enumerate(chans):
            assert ('{"WebSocketPush":{"channel_id":%d,"message_type":"Text"}}'
                    ' | hello %d' % (ch, i)) in ev
        # another process cannot use a channel on any loop; a channel that
        # is not open is not found wherever its id points
        for ch in chans[:3]:
            rep = n.inject(OTHER, "sendblob - " + push % ch, blob=b"x")
            assert rep["body"] == '{"Err":"WsChannelNotFound"}'
        for ch in chans[:3]:
            rep = n.inject(SRV, "sendblob - " + push % (ch ^ 0x100),
                           blob=b"x")
            assert rep["body"] == '{"Err":"WsChannelNotFound"}'
        # the process closes one on each loop
        for ws, ch in zip(socks[3:], chans[3:]):
            rep = n.inject(SRV, "send " + '{"WebSocketClose":%d}' % ch)
            assert rep["body"] == '{"Ok":null}'
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 10)
        for ws in socks[:3]:
            await ws.close()
        return chans

    chans = asyncio.run(client())
    seen, deadline = [], time.monotonic() + 20
    while sum("WebSocketClose" in e for e in seen) < 6:
        assert time.monotonic() < deadline, seen
        seen += events(n)
        time.sleep(0.05)
    for ch in chans:
        assert '{"WebSocketClose":%d}' % ch in seen


def test_loops_share_the_limits(node_factory):
    # (room for the refused WebSockets below, which count as connections
    # until the server has seen them close)
    n = start(node_factory, "--http-loops", "3", "--http-max-connections",
              "6", "--ws-max-connections", "2")
    bind(n, "/api")
    ws_bind(n, "/ws")
    held = [raw(n) for _ in range(6)]        # two on each loop
    time.sleep(0.3)
    extra = raw(n)              # the fifth, whichever loop: closed at once
    t = time.monotonic()
    assert read_all(extra) == b""
    assert time.monotonic() - t < 5          # closed, not left idle
    extra.close()
    n.wait_log("connection limit (6) reached; closing a new one")
    for s in held:
        s.close()
    time.sleep(0.3)
    # the two on two loops, the refusals on each of the three
    ws_two_then_full(f"ws://127.0.0.1:{n.port}/{SRV}/ws", refusals=3)
    assert curl(n, f"/{SRV}/api")[0] == 200


def test_loops_flag_checked(node_factory, tmp_path):
    for bad in ("0", "17", "x"):
        out = subprocess.run([BIN, "run", "--home", str(tmp_path / "h"),
                              "--http-loops", bad], capture_output=True,
                             text=True, timeout=30)
        assert out.returncode == 2
        assert "--http-loops needs a number from 1 to 16" in out.stderr
