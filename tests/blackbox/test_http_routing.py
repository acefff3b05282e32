"""HTTP routing without surprises, with curl against a running node:

1. a request no handler takes is a 404 whose JSON names the routes that
   exist (from the process when it reaches one, from the node when nothing
   is bound), and a wrong method on a route is still 405;
2. a UI opened without its trailing slash is redirected to it, so that the
   page's relative links resolve under the process;
3. an authenticated path answers a client that does not accept HTML with a
   JSON 401, and a browser with the login page;
4. the TypeScript client `hyperc gen --ts` writes sends a GET's arguments
   in the query string, where the process reads them (run in Node.js
   against the node).

Packages: tweb (tests/procs/webapp.c: a UI, the /api endpoint, routes and
a path-less handler), counter (examples/counter: no UI) and chat
(examples/chat: everything authenticated)."""
import json
import os
import re
import shutil
import socket
import subprocess
import time
import urllib.parse

import pytest

from conftest import BIN, NODE, free_port

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..")
WEB = "/webapp:tweb:test.os"
COUNTER = "/counter:counter:hyperc.os"
CHAT = "/chat:chat:hyperc.os"
PASSWORD = "routing-test-password"


def curl(port, path, *args):
    """(status, headers with lowercase names, body bytes) of one request;
    curl sends its default `Accept: */*` unless args say otherwise."""
    dump = [] if "-I" in args else ["-D", "-"]  # -I prints them itself
    cmd = ["curl", "-s", "-S", *dump, "--max-time", "20",
           f"http://127.0.0.1:{port}{path}", *args]
    out = subprocess.run(cmd, capture_output=True, check=True,
                         timeout=30).stdout
    head, _, body = out.partition(b"\r\n\r\n")
    while body.startswith(b"HTTP/1.1 "):  # -L: the last answer's
        head, _, body = body.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = {}
    for ln in lines[1:]:
        k, _, v = ln.partition(":")
        headers[k.strip().lower()] = v.strip()
    return int(lines[0].split()[1]), headers, body


def error(resp, status, kind):
    """The message of a JSON error answer, checked for its status, type and
    the framework's shape {"HypercError":{"kind","message"}}."""
    st, hd, body = resp
    assert st == status, (st, body[:300])
    assert hd["content-type"] == "application/json", hd
    err = json.loads(body)["HypercError"]
    assert set(err) == {"kind", "message"} and err["kind"] == kind, err
    return err["message"]


def wait_for(port, path, status=200, *args):
    deadline = time.monotonic() + 20
    while curl(port, path, *args)[0] != status:
        assert time.monotonic() < deadline, f"{path} never answered {status}"
        time.sleep(0.1)


@pytest.fixture
def web(node_factory):
    """A node with tweb and counter, their paths bound."""
    port = free_port()
    node_factory(packages=("tweb", "counter"), extra=("--port", str(port)))
    wait_for(port, WEB + "/api/items")
    wait_for(port, COUNTER + "/api/get-count")
    return port


# ------------------------------------------------------------ point 1


def test_a_miss_under_an_endpoint_is_a_404_naming_the_routes(web):
    # a method no route of the path takes, and paths no handler declares,
    # under the /api endpoint: the process's 404, with every route
    for method, path in (("DELETE", "/api"), ("GET", "/api"),
                         ("GET", "/api/nothing"), ("PUT", "/api/items/7")):
        msg = error(curl(web, WEB + path, "-X", method), 404, "NotFound")
        assert msg.startswith(f"no handler for {method} {path};"), msg
        for route in ("GET /api/items", "POST /api/items", "GET /api/search",
                      "GET /api/slow", "ANY /api/whoami", "ANY /api/add"):
            assert route in msg, (route, msg)
        assert "{\"Variant\": arguments}" in msg and "AddItem" in msg, msg
    # not the UI's index.html, which a GET under the process used to get
    st, _, body = curl(web, WEB + "/api/nothing")
    assert st == 404 and b"<h1>webapp</h1>" not in body
    # HEAD: the status and type, no body
    st, hd, body = curl(web, WEB + "/api/nothing", "-I")
    assert (st, hd["content-type"], body) == (404, "application/json", b"")


def test_routes_still_answer_and_a_wrong_method_is_405(web):
    st, hd, body = curl(web, WEB + "/api/items", "-X", "DELETE")
    assert st == 405 and hd["allow"] == "GET, POST"
    assert json.loads(body)["HypercError"]["kind"] == "MethodNotAllowed"
    assert json.loads(curl(web, WEB + "/api/items")[2]) == []
    st, _, body = curl(web, WEB + "/api/search?q=te&limit=5")
    assert st == 200 and json.loads(body) == "0 match 'te' (limit 5)"
    # the Rust clients' envelope still reaches a handler on a bound path
    st, _, body = curl(web, WEB + "/api", "-H",
                       "Content-Type: application/json", "-d",
                       '{"Add":[2,3]}')
    assert st == 200 and json.loads(body) == 5
    # a handler without a path answers at /api/<its name>, where kit's
    # TypeScript client calls it, with arguments from the query
    st, _, body = curl(web, WEB + "/api/add?a=2&b=40")
    assert st == 200 and json.loads(body) == 42


def test_a_parameter_less_handler_is_not_a_catch_all(web):
    # counter's get_count takes no parameters and declares no path: it is
    # at /api/get-count (any method), and no longer answers DELETE /api
    assert curl(web, COUNTER + "/api/increment?by=4")[2] == b"4"
    assert curl(web, COUNTER + "/api/get-count")[2] == b"4"
    msg = error(curl(web, COUNTER + "/api", "-X", "DELETE"), 404, "NotFound")
    assert "ANY /api/increment, ANY /api/get-count" in msg, msg
    assert "calls Increment, GetCount" in msg, msg
    assert curl(web, COUNTER + "/api/get-count")[2] == b"4"


def test_nothing_bound_is_the_nodes_404_naming_the_bound_paths(web):
    # counter has no UI, so nothing catches /counter:.../elsewhere: the
    # node answers, with what the process has bound
    msg = error(curl(web, COUNTER + "/elsewhere"), 404, "NotFound")
    assert msg.startswith(f"nothing is bound at {COUNTER}/elsewhere;"), msg
    assert f"{COUNTER}/api" in msg and "/webapp" not in msg, msg
    msg = error(curl(web, "/nothing/here", "-X", "POST"), 404, "NotFound")
    assert "nothing is bound at /nothing/here" in msg, msg
    assert "/<process:package:publisher>" in msg, msg
    # a path that is not UTF-8 is quoted lossily, in valid JSON
    with socket.create_connection(("127.0.0.1", web), timeout=20) as s:
        s.sendall(b"GET /nothing/\xff\xfe HTTP/1.1\r\nHost: x\r\n"
                  b"Connection: close\r\n\r\n")
        raw = b""
        while chunk := s.recv(65536):
            raw += chunk
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 404 ")
    msg = json.loads(body)["HypercError"]["message"]
    assert msg.startswith("nothing is bound at /nothing/\ufffd\ufffd"), msg


def test_ui_paths_outside_the_endpoints(web):
    # a GET outside the endpoints is the UI's page (a single-page app
    # routes on the client), as on Hyperware ...
    st, hd, body = curl(web, WEB + "/settings/profile")
    assert st == 200 and b"<h1>webapp</h1>" in body
    assert hd["content-type"].startswith("text/html")
    # ... and any other method goes to the process, which has no such route
    msg = error(curl(web, WEB + "/settings", "-X", "POST", "-d", ""),
                404, "NotFound")
    assert msg.startswith("no handler for POST /settings;"), msg


# ------------------------------------------------------------ point 2


def test_a_ui_without_its_slash_is_redirected(web):
    st, hd, body = curl(web, WEB)
    assert (st, hd["location"], body) == (301, WEB + "/", b"")
    st, hd, _ = curl(web, WEB + "?tab=2", "-I")
    assert (st, hd["location"]) == (301, WEB + "/?tab=2")
    # followed, the page's relative link resolves under the process
    st, hd, body = curl(web, WEB, "-L")
    assert st == 200 and b"<h1>webapp</h1>" in body
    href = re.search(rb'href="([^"]+)"', body).group(1).decode()
    css = urllib.parse.urljoin(WEB + "/", href)
    assert css == WEB + "/css/site.css"
    st, hd, body = curl(web, css)
    assert st == 200 and hd["content-type"].startswith("text/css")
    # with the slash, the page itself; other methods and other paths are
    # not redirected
    st, _, body = curl(web, WEB + "/")
    assert st == 200 and b"<h1>webapp</h1>" in body
    assert curl(web, WEB, "-X", "POST", "-d", "")[0] == 404
    assert curl(web, WEB + "/api/items")[0] == 200
    # a process with no UI has nothing at its root to redirect to
    error(curl(web, COUNTER), 404, "NotFound")


# ------------------------------------------------------------ point 3


@pytest.fixture
def chat(node_factory):
    port = free_port()
    node_factory(packages=("chat",),
                 extra=("--port", str(port), "--password", PASSWORD))
    # logged in, the API answers once the process has bound it
    st, hd, _ = curl(port, "/login", "-H", "Content-Type: application/json",
                     "-d", json.dumps({"password": PASSWORD}))
    assert st == 200
    cookie = hd["set-cookie"].split(";")[0]
    wait_for(port, CHAT + "/api/history", 200, "-H", "Cookie: " + cookie)
    return port, cookie


BROWSER = ("text/html,application/xhtml+xml,application/xml;q=0.9,"
           "image/avif,image/webp,*/*;q=0.8")


def test_json_clients_get_401_and_browsers_the_login_page(chat):
    port, cookie = chat
    for accept in (None, "*/*", "application/json", "",
                   "text/html;q=0, */*", "text/htmlx"):
        args = ["-H", f"Accept: {accept}"] if accept is not None else []
        if accept == "":
            args = ["-H", "Accept:"]  # no Accept header at all
        msg = error(curl(port, CHAT + "/api/history", *args), 401,
                    "Unauthorized")
        assert msg.startswith(f"GET {CHAT}/api/history needs a login"), msg
        assert "POST /login" in msg and f"hyperware-auth_{NODE}" in msg
    # a browser's Accept, any case and spacing: the login page, as before
    for accept in (BROWSER, "TEXT/HTML", "application/json, text/html ;q=0.5"):
        st, hd, body = curl(port, CHAT + "/api/history", "-H",
                            f"Accept: {accept}")
        assert st == 200 and hd["content-type"].startswith("text/html")
        assert f"Log in to {NODE}".encode() in body
    # the UI's files too: a script asked for without HTML is a 401, not a
    # login page served as JavaScript
    error(curl(port, CHAT + "/js/app.js"), 401, "Unauthorized")
    st, _, body = curl(port, CHAT + "/", "-H", f"Accept: {BROWSER}")
    assert st == 200 and b"Log in" in body
    # logged in, the same requests are served
    st, hd, body = curl(port, CHAT + "/api/history", "-H", "Cookie: " + cookie)
    assert st == 200 and json.loads(body) == []
    st, hd, body = curl(port, CHAT + "/api/history", "-H", "Cookie: " + cookie,
                        "-H", f"Accept: {BROWSER}")
    assert st == 200 and hd["content-type"] == "application/json"
    # a miss under the API, logged in: the process's 404 with its routes
    msg = error(curl(port, CHAT + "/api/nope", "-H", "Cookie: " + cookie),
                404, "NotFound")
    assert "GET /api/history" in msg and "POST /api/send" in msg, msg


# ------------------------------------------------------------ point 4


def ts_function(ts, name):
    """One generated function as JavaScript: the TypeScript types the
    generator writes in it removed."""
    m = re.search(r"  export async function %s\((.*?)\): Promise<.*?> \{\n"
                  r"(.*?)\n  \}\n" % name, ts, re.S)
    assert m, f"no function {name} in the client"
    params = ", ".join(p.split(":")[0] for p in m.group(1).split(", "))
    body = re.sub(r"const data: \w+ =", "const data =", m.group(2))
    body = re.sub(r"apiRequest<.*?>\(", "apiRequest(", body)
    return f"async function {name}({params}) {{\n{body}\n}}\n"


def test_ts_client_sends_get_arguments_in_the_query(web, tmp_path):
    node_js = shutil.which("node")
    assert node_js, "Node.js is missing: run scripts/setup.sh"
    src = os.path.join(ROOT, "tests", "procs", "webapp.c")
    ours, kit = tmp_path / "ours.ts", tmp_path / "kit.ts"
    subprocess.run([BIN, "gen", "--ts", str(ours), src], check=True)
    subprocess.run([BIN, "gen", "--kit-exact", "--ts", str(kit), src],
                   check=True)
    ours, kit = ours.read_text(), kit.read_text()
    # kit's text, byte for byte with --kit-exact: the GET sends nothing
    assert "URLSearchParams" not in kit
    assert "('/api/search', 'GET', data)" in kit
    assert "('/api/search?' + query, 'GET', data)" in ours

    # an item whose title needs encoding, then the generated search()
    # and slow() run in Node.js with kit's request: fetch(BASE + path)
    title = "tea & pot+100% ?"
    st, _, _ = curl(web, WEB + "/api/items", "-H",
                    "Content-Type: application/json", "-d",
                    json.dumps({"title": title, "qty": 1}))
    assert st == 201
    script = tmp_path / "client.mjs"
    script.write_text(
        "const BASE = process.argv[2];\n"
        "async function apiRequest(path, method, data) {\n"
        "  const r = await fetch(BASE + path, {method,\n"
        "    headers: {'Content-Type': 'application/json'},\n"
        "    body: method === 'GET' ? undefined : JSON.stringify(data)});\n"
        "  if (!r.ok) throw new Error(r.status + ' ' + await r.text());\n"
        "  return await r.json();\n"
        "}\n" + ts_function(ours, "search") + ts_function(ours, "slow") +
        "console.log(JSON.stringify([await search(%s, 3), await slow(1)]));\n"
        % json.dumps(title))
    r = subprocess.run([node_js, str(script), f"http://127.0.0.1:{web}{WEB}"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == [f"1 match '{title}' (limit 3)",
                                    "GET /api/slow -"]
    # the same query by hand: '+' is a space, %XX decoded, numbers as JSON
    st, _, body = curl(web, WEB + "/api/search?q=tea+%26+pot&limit=2")
    assert st == 200 and json.loads(body) == "1 match 'tea & pot' (limit 2)"
