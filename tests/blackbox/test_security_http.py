"""http-server:distro:sys under attack (issue 18, points 3-5), against a
running node: requests that try to exhaust it without logging in, a browser
page that tries to reach a local-only path (another Origin, DNS rebinding,
proxy headers), and requests that HTTP/1.1 lets a server refuse (obs-fold,
bare LF, a blank before the colon).  Raw sockets for what curl would not
send; loopback only; every wait bounded.  The test process is
tests/procs/httpd.c (package thttpd), as in test_http.py."""
import asyncio
import base64
import json
import os
import socket
import time

import websockets

from test_http import SRV, bind, curl, start, ws_bind, ws_two_then_full

NODE = "test.os"


def connect(node, src="127.0.0.1"):
    """A raw connection to the node from loopback address `src`."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(10)
    s.bind((src, 0))
    s.connect(("127.0.0.1", node.port))
    return s


def read_response(s, timeout=5):
    """(status, headers, body) of one response, read until its body is in
    or the connection ends; status 0 when nothing came."""
    s.settimeout(timeout)
    data = b""
    deadline = time.monotonic() + timeout
    while b"\r\n\r\n" not in data and time.monotonic() < deadline:
        try:
            chunk = s.recv(65536)
        except (socket.timeout, ConnectionResetError):
            break
        if not chunk:
            break
        data += chunk
    if b"\r\n\r\n" not in data:
        return 0, {}, data
    head, body = data.split(b"\r\n\r\n", 1)
    lines = head.decode().split("\r\n")
    headers = {}
    for ln in lines[1:]:
        k, _, v = ln.partition(":")
        headers[k.strip().lower()] = v.strip()
    want = int(headers.get("content-length", "0"))
    while len(body) < want and time.monotonic() < deadline:
        try:
            chunk = s.recv(65536)
        except (socket.timeout, ConnectionResetError):
            break
        if not chunk:
            break
        body += chunk
    return int(lines[0].split()[1]), headers, body


def closed_within(s, timeout):
    """Whether the node closes s (end of file or reset) within `timeout`
    seconds; what it sends meanwhile is read and dropped."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        s.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            if not s.recv(65536):
                return True
        except socket.timeout:
            return False
        except (ConnectionResetError, BrokenPipeError):
            return True
    return False


def error_of(body):
    return json.loads(body)["HypercError"]


def raw_request(node, data, src="127.0.0.1"):
    s = connect(node, src)
    s.sendall(data)
    r = read_response(s)
    s.close()
    return r


def post_head(path, length, extra=""):
    return (f"POST {path} HTTP/1.1\r\nHost: localhost\r\n"
            f"Content-Length: {length}\r\n{extra}\r\n").encode()


# ------------------------------------------- no unauthenticated exhaustion


def test_unknown_and_protected_paths_answer_before_the_body(node_factory):
    """A request for nothing, or for a path that needs a login, is answered
    from its head: the 10 MB its Content-Length announces are never
    awaited, nor held."""
    n = start(node_factory, "--http-body-budget", "1000000")
    bind(n, "/open")
    bind(n, "/private", auth=True)
    ten_mb = 10 << 20
    held = []
    for path, want in ((f"/{SRV}/nothing", 404), ("/nobody/here", 404),
                       (f"/{SRV}/private", 401)):
        for _ in range(3):
            s = connect(n)
            s.sendall(post_head(path, ten_mb) + b"x" * 1000)
            t = time.monotonic()
            st, hd, body = read_response(s)
            assert st == want, (path, st, body)
            assert time.monotonic() - t < 3
            assert hd.get("connection") == "close"
            held.append(s)
    # a browser (Accept: text/html) gets the login page, also at once
    s = connect(n)
    s.sendall(post_head(f"/{SRV}/private", ten_mb,
                        "Accept: text/html\r\n"))
    st, hd, body = read_response(s)
    assert st == 200 and b"password" in body.lower()
    held.append(s)
    # none of them took any of the 1 MB budget: an open path still takes
    # a body of 900 KB
    st, _, body = raw_request(n, post_head(f"/{SRV}/open", 900000)
                              + b"y" * 900000)
    assert st == 200, body
    for s in held:
        s.close()


def test_body_budget_is_node_wide(node_factory):
    n = start(node_factory, "--http-body-budget", "100000",
              "--http-max-body", "80000")
    bind(n, "/api")
    path = f"/{SRV}/api"
    # A holds 60,000 bytes of the budget while its body is on its way
    a = connect(n)
    a.sendall(post_head(path, 60000) + b"a" * 30000)
    time.sleep(0.3)
    # B announces 60,000 more: 503 at once, the body not awaited
    b = connect(n)
    b.sendall(post_head(path, 60000))
    st, hd, body = read_response(b)
    assert st == 503, body
    err = error_of(body)
    assert err["kind"] == "Busy" and "--http-body-budget" in err["message"]
    b.close()
    # a chunked body over what is left fails once it goes over
    c = connect(n)
    c.sendall(f"POST {path} HTTP/1.1\r\nHost: localhost\r\n"
              "Transfer-Encoding: chunked\r\n\r\n".encode())
    chunk = b"c" * 20000
    for _ in range(3):
        try:
            c.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        except OSError:
            break
        time.sleep(0.05)
    st, _, body = read_response(c)
    assert st == 503 and error_of(body)["kind"] == "Busy"
    c.close()
    # A completes and is served; its share is given back
    a.sendall(b"a" * 30000)
    st, _, body = read_response(a)
    assert st == 200
    a.close()
    st, _, _ = curl(n, path, "--data-binary", "z" * 60000)
    assert st == 200
    assert "request body budget full" in n.log()


def test_per_address_connection_limit(node_factory):
    n = start(node_factory, "--http-max-connections-per-addr", "4",
              "--ws-max-connections-per-addr", "2")
    bind(n, "/api")
    held = [connect(n) for _ in range(4)]
    time.sleep(0.2)
    extra = connect(n)
    st, hd, body = read_response(extra)
    assert st == 503, body
    assert "--http-max-connections-per-addr" in error_of(body)["message"]
    assert closed_within(extra, 5)
    extra.close()
    # another address is served all the same
    st, _, _ = raw_request(n, f"GET /{SRV}/api HTTP/1.1\r\nHost: x\r\n"
                              "Connection: close\r\n\r\n".encode(),
                           src="127.0.0.2")
    assert st == 200
    held.pop().close()
    time.sleep(0.2)
    st, _, _ = raw_request(n, f"GET /{SRV}/api HTTP/1.1\r\nHost: x\r\n"
                              "Connection: close\r\n\r\n".encode())
    assert st == 200
    for s in held:
        s.close()
    time.sleep(0.2)
    # WebSockets: two from one address, the third refused
    ws_bind(n, "/ws")
    ws_two_then_full(f"ws://127.0.0.1:{n.port}/{SRV}/ws")


def ws_handshake(node, path, extra=""):
    s = connect(node)
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost\r\n"
              "Upgrade: websocket\r\nConnection: Upgrade\r\n"
              f"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {key}\r\n"
              f"{extra}\r\n".encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(4096)
        assert chunk, data
        data += chunk
    head, rest = data.split(b"\r\n\r\n", 1)
    return s, head, rest


def test_idle_and_half_sent_websockets_are_closed(node_factory):
    n = start(node_factory, "--ws-ping-interval", "1",
              "--http-request-timeout", "1")
    ws_bind(n, "/ws")
    path = f"/{SRV}/ws"
    # silent: a ping, then closed when it is not answered
    s, head, rest = ws_handshake(n, path)
    assert head.startswith(b"HTTP/1.1 101")
    t = time.monotonic()
    s.settimeout(5)
    frame = rest or s.recv(4096)
    assert frame[0] == 0x89, frame            # FIN + ping
    assert frame[2:2 + frame[1]] == b"hyperc-keepalive"
    assert closed_within(s, 5)
    assert time.monotonic() - t < 6
    s.close()
    # half a frame (its header promises 100 bytes; 10 come): closed too
    s, head, _ = ws_handshake(n, path)
    assert head.startswith(b"HTTP/1.1 101")
    s.sendall(bytes([0x81, 0x80 | 100]) + os.urandom(4) + b"x" * 10)
    assert closed_within(s, 6)
    s.close()
    # a stalled handshake: 408 by the request timeout
    s = connect(n)
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost\r\n"
              "Upgrade: websocket\r\n".encode())
    st, _, _ = read_response(s, timeout=5)
    assert st == 408
    s.close()
    assert "not even a pong; closing it" in n.log()

    # a client that answers pings stays, and the process never sees the
    # pongs that answer the server's own pings
    async def client():
        async with websockets.connect(
                f"ws://127.0.0.1:{n.port}{path}", ping_interval=None) as ws:
            await asyncio.sleep(3.5)
            await ws.send("echo still here")
            assert await asyncio.wait_for(ws.recv(), 5) == "still here"

    n.inject(SRV, "events")
    asyncio.run(client())
    deadline = time.monotonic() + 5
    ev = ""
    while "WebSocketClose" not in ev and time.monotonic() < deadline:
        ev += n.inject(SRV, "events").get("body", "")
        time.sleep(0.1)
    assert "WebSocketClose" in ev
    assert '"Pong"' not in ev


def ws_frame_head(length, opcode=0x1):
    """A client frame's header (FIN set, masked with a zero key, so the
    payload goes as it is)."""
    if length < 126:
        return bytes([0x80 | opcode, 0x80 | length]) + bytes(4)
    return (bytes([0x80 | opcode, 0x80 | 126]) + length.to_bytes(2, "big")
            + bytes(4))


def ws_read_frame(s, timeout=5):
    s.settimeout(timeout)
    buf = b""
    while True:
        if len(buf) >= 2:
            n, off = buf[1] & 0x7F, 2
            if n == 126 and len(buf) >= 4:
                n, off = int.from_bytes(buf[2:4], "big"), 4
            if n != 126 and len(buf) >= off + n:
                return buf[0] & 0x0F, buf[off:off + n]
        chunk = s.recv(65536)
        if not chunk:
            return None, buf
        buf += chunk


def test_websocket_messages_being_assembled_hold_the_body_budget(
        node_factory):
    n = start(node_factory, "--http-body-budget", "100000",
              "--http-max-body", "80000")
    ws_bind(n, "/ws")
    path = f"/{SRV}/ws"
    text = b"echo " + b"x" * 59995
    # A announces a 60,000-byte message and sends a part: it holds 60,000
    a, head, _ = ws_handshake(n, path)
    assert head.startswith(b"HTTP/1.1 101")
    a.sendall(ws_frame_head(len(text)) + text[:10000])
    time.sleep(0.3)
    # B announces 60,000 more: closed with 1013 before its payload is read
    b, head, _ = ws_handshake(n, path)
    assert head.startswith(b"HTTP/1.1 101")
    b.sendall(ws_frame_head(len(text)) + text[:1000])
    op, payload = ws_read_frame(b)
    assert op == 0x8, (op, payload)
    assert int.from_bytes(payload[:2], "big") == 1013
    assert b"body budget" in payload[2:]
    assert closed_within(b, 5)
    b.close()
    # A's message completes, is echoed, and gives its share back
    a.sendall(text[10000:])
    op, payload = ws_read_frame(a)
    assert (op, payload) == (0x1, text[5:])
    c, head, _ = ws_handshake(n, path)
    c.sendall(ws_frame_head(len(text)) + text)
    op, payload = ws_read_frame(c)
    assert (op, payload) == (0x1, text[5:])
    # small messages never stop on the budget
    a.sendall(ws_frame_head(9) + b"echo ping")
    assert ws_read_frame(a) == (0x1, b"ping")
    a.close()
    c.close()
    assert "request body budget full" in n.log()


def test_server_timeout_header_is_capped(node_factory):
    n = start(node_factory, "--http-server-timeout-max", "1")
    bind(n, "/api")
    for value in ("100000", "99999999999999999999999999"):
        t = time.monotonic()
        st, _, _ = curl(n, f"/{SRV}/api?noanswer=1", "-H",
                        f"X-Hyperware-Http-Server-Timeout: {value}")
        assert st == 408
        assert time.monotonic() - t < 5


def test_route_matching_is_linear(node_factory):
    """A binding with two wildcards and a 6 KB path: once, this stalled
    every HTTP request of the node for about 10 s each (a minute for these
    six); linear matching takes milliseconds, so 20 s leaves room for a
    sanitizer build on a loaded machine and still catches the stall."""
    n = start(node_factory)
    bind(n, "/*a/*b/end")
    bind(n, "/api")
    long_miss = f"/{SRV}/" + "x/" * 3000 + "nope"
    long_hit = f"/{SRV}/" + "x/" * 3000 + "end"
    t = time.monotonic()
    for _ in range(5):
        st, _, body = curl(n, long_miss)
        assert st == 404
    st, _, body = curl(n, long_hit)
    assert st == 200
    params = json.loads(body.split(b"\n", 1)[0])["Http"]["url_params"]
    assert params["b"] == "x" and params["a"] == "/".join(["x"] * 2999)
    assert time.monotonic() - t < 20
    assert curl(n, f"/{SRV}/api")[0] == 200


# ------------------------------------------------ local_only in a browser


def test_local_only_refuses_rebinding_and_other_origins(node_factory):
    n = start(node_factory)
    bind(n, "/local", local=True)
    bind(n, "/open")
    path = f"/{SRV}/local"
    p = n.port
    for host in ("localhost", f"localhost:{p}", "LocalHost", "127.0.0.1",
                 f"127.0.0.1:{p}", f"[::1]:{p}", "[::1]", NODE,
                 f"{NODE}:{p}", f"app.localhost:{p}"):
        assert curl(n, path, host=host)[0] == 200, host
    for host in ("evil.example", f"evil.example:{p}", "127.0.0.1.nip.io",
                 "localhost.evil.example", f"localhost:{p}x", "10.0.0.1"):
        st, _, body = curl(n, path, host=host)
        assert st == 403, host
        err = error_of(body)
        assert err["kind"] == "Forbidden" and "Host" in err["message"]
    # the same Host on a path that is not local-only is served
    assert curl(n, f"/{SRV}/open", host="evil.example")[0] == 200
    # what a page of another origin sends
    h = f"localhost:{p}"
    for hdr in ("Origin: http://evil.example", "Origin: null",
                f"Origin: http://localhost:{p + 1}",
                f"Origin: http://127.0.0.1:{p}",
                "Sec-Fetch-Site: cross-site", "Sec-Fetch-Site: same-site"):
        st, _, body = curl(n, path, "-H", hdr, host=h)
        assert st == 403, hdr
        assert "origin" in error_of(body)["message"].lower()
    # and what the node's own pages send
    for hdr in (f"Origin: http://localhost:{p}", "Sec-Fetch-Site: same-origin",
                "Sec-Fetch-Site: none"):
        assert curl(n, path, "-H", hdr, host=h)[0] == 200, hdr
    # a cross-origin POST is refused at its head
    st, _, _ = curl(n, path, "-H", "Origin: http://evil.example",
                    "--data-binary", "x" * 100000, host=h)
    assert st == 403


def test_local_only_refuses_every_proxy_header(node_factory):
    n = start(node_factory)
    bind(n, "/local", local=True)
    path = f"/{SRV}/local"
    for hdr in ("Forwarded: for=1.2.3.4", "forwarded: for=\"[::1]\"",
                "X-Forwarded-For: 1.2.3.4", "X-FORWARDED-FOR: 1.2.3.4",
                "x-forwarded-for:1.2.3.4", "X-Forwarded-For:\t 1.2.3.4",
                "X-Forwarded-Port: 443", "X-Forwarded-Server: p",
                "X_Forwarded_For: 1.2.3.4", "X-Real-IP: 1.2.3.4",
                "X-Real-Ip: 1.2.3.4", "Via: 1.1 proxy", "True-Client-IP: 1.2.3.4",
                "CF-Connecting-IP: 1.2.3.4", "X-Client-IP: 1.2.3.4"):
        st, _, body = raw_request(
            n, f"GET {path} HTTP/1.1\r\nHost: localhost\r\n{hdr}\r\n"
               "Connection: close\r\n\r\n".encode())
        assert st == 403, hdr
        assert "proxy" in error_of(body)["message"], hdr
    # a blank before the colon is not a way around it: 400
    st, _, _ = raw_request(
        n, f"GET {path} HTTP/1.1\r\nHost: localhost\r\n"
           "X-Forwarded-For : 1.2.3.4\r\n\r\n".encode())
    assert st == 400
    st, _, _ = raw_request(
        n, f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close"
           "\r\n\r\n".encode())
    assert st == 200


def test_extension_websocket_refuses_other_origins(node_factory):
    n = start(node_factory)
    body = {"WebSocketBind": {"path": "/ext", "authenticated": False,
                              "extension": True}}
    assert n.ask(SRV, "send " + json.dumps(body)) == '{"Ok":null}'
    path = f"/{SRV}/ext"
    s, head, _ = ws_handshake(n, path, "Origin: http://evil.example\r\n")
    assert head.startswith(b"HTTP/1.1 404")
    s.close()
    s, head, _ = ws_handshake(n, path, "Origin: http://localhost\r\n")
    assert head.startswith(b"HTTP/1.1 101")
    s.close()


# ------------------------------------------------------- strict parsing


def test_strict_parsing(node_factory):
    n = start(node_factory)
    bind(n, "/api")
    path = f"/{SRV}/api".encode()
    cases = [
        ("obs-fold", b"X-A: b\r\n c\r\n"),
        ("obs-fold", b"X-A: b\r\n\tc\r\n"),
        ("bare LF", None),
        ("bare LF", b"X: y\nZ: w\r\n"),
        ("blank", b"Host2 : x\r\n"),
        ("Host", b"Host: b\r\n"),
    ]
    for why, extra in cases:
        if extra is None:
            req = b"GET " + path + b" HTTP/1.1\nHost: x\n\n"
        else:
            req = (b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n" + extra +
                   b"\r\n")
        s = connect(n)
        s.sendall(req)
        st, hd, body = read_response(s)
        assert st == 400, (why, body)
        assert why.lower() in error_of(body)["message"].lower(), body
        assert hd.get("connection") == "close"
        assert closed_within(s, 5)
        s.close()
    # a body that is only LFs is not looked at, and an empty line before the
    # request line is allowed
    st, _, body = raw_request(
        n, b"\r\nPOST " + path + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 4"
           b"\r\nConnection: close\r\n\r\n\n\n\n\n")
    assert st == 200 and body.split(b"\n", 1)[1] == b"\n\n\n\n"
    assert curl(n, f"/{SRV}/api")[0] == 200
