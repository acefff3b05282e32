"""The chat example (examples/chat) end to end: a node serving it with
--port, its UI opened in headless Chromium (Debian's chromium and
chromium-driver, driven by Debian's python3-selenium): log in through the
node's login page, type, click send, see the message on the page, in a
second window and in a Python WebSocket client live, and again after a
reload.  Also: history and its bound over HTTP, the state after a restart,
and that the committed TypeScript client and compiled UI are up to date."""
import asyncio
import hashlib
import http.cookiejar
import json
import os
import subprocess
import time
import urllib.error
import urllib.request

import pytest
import websockets
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from conftest import BIN, NODE, chromium, free_port

HERE = os.path.dirname(os.path.abspath(__file__))
CHAT = os.path.join(HERE, "..", "..", "examples", "chat")
UI_SRC = os.path.join(CHAT, "ui-src")
PID = "chat:chat:hyperc.os"
PASSWORD = "chat-test-password"
COOKIE = f"hyperware-auth_{NODE}"
WAIT = 20


class Chat:
    """A node running the chat package, and an HTTP client logged in."""

    def __init__(self, node, port):
        self.node, self.port = node, port
        self.origin = f"http://127.0.0.1:{port}"
        self.base = f"{self.origin}/{PID}"
        self.jar = http.cookiejar.CookieJar()
        self.http = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.jar))

    def request(self, method, path, body=None, url=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(url or self.base + path, data=data,
                                     method=method,
                                     headers={"Content-Type":
                                              "application/json"})
        with self.http.open(req, timeout=WAIT) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read()

    def login(self):
        st, _, _ = self.request("POST", "", {"password": PASSWORD,
                                             "subdomain": ""},
                                url=self.origin + "/login")
        assert st == 200

    def cookie(self):
        return next(c.value for c in self.jar if c.name == COOKIE)

    def history(self):
        st, ctype, body = self.request("GET", "/api/history")
        assert st == 200 and ctype == "application/json", body[:200]
        return json.loads(body)

    def wait_bound(self):
        """The process binds its paths at start: wait for the API."""
        deadline = time.monotonic() + WAIT
        while True:
            try:
                return self.history()
            except (AssertionError, OSError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)


def boot(node_factory, home=None):
    port = free_port()
    n = node_factory(packages=("chat",), home=home,
                     extra=("--port", str(port), "--password", PASSWORD))
    c = Chat(n, port)
    c.login()
    c.wait_bound()
    return c


@pytest.fixture
def chat(node_factory):
    return boot(node_factory)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    d = chromium(tmp_path_factory.mktemp("chromium"), WAIT)
    yield d
    d.quit()


def shown(d):
    """The messages on the page, as 'author: text'."""
    return d.execute_script(
        "return Array.from(document.querySelectorAll('#messages li'))"
        ".map(li => li.querySelector('.author').textContent + ': ' +"
        " li.querySelector('.text').textContent)")


def wait_for(d, what, cond):
    try:
        return WebDriverWait(d, WAIT, poll_frequency=0.05).until(cond)
    except Exception as e:
        d.save_screenshot(os.path.join(os.getcwd(), "chat-failure.png"))
        raise AssertionError(f"waiting for {what}; page shows {shown(d)}, "
                             f"errors {js_errors(d)}") from e


def wait_live(d):
    wait_for(d, "the WebSocket", lambda d: d.execute_script(
        "const s = document.getElementById('status');"
        "return s !== null && s.dataset.state === 'live'"))


def js_errors(d):
    return [e["message"] for e in d.get_log("browser")
            if e["level"] == "SEVERE" and "favicon" not in e["message"]]


def test_browser_login_send_live_and_reload(chat, browser):
    d = browser
    chat.request("POST", "/api/send", {"SendMessage": ["Ada", "first"]})

    # window A: the node's login page first, then the chat
    d.get(chat.base + "/")
    pw = wait_for(d, "the login page",
                  lambda d: d.find_element(By.ID, "password"))
    assert d.title == f"Log in to {NODE}"
    pw.send_keys(PASSWORD)
    d.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait_for(d, "the chat page", lambda d: d.find_elements(By.ID, "composer"))
    assert d.title == "chat"
    wait_live(d)
    wait_for(d, "the history", lambda d: shown(d) == ["Ada: first"])
    a = d.current_window_handle

    # window B, same browser (the login cookie), and a Python client
    d.switch_to.new_window("window")
    d.get(chat.base + "/")
    wait_live(d)
    wait_for(d, "the history in B", lambda d: shown(d) == ["Ada: first"])
    b = d.current_window_handle

    async def run():
        url = f"ws://127.0.0.1:{chat.port}/{PID}/ws"
        async with websockets.connect(
                url, extra_headers={"Cookie": f"{COOKIE}={chat.cookie()}"},
                open_timeout=WAIT) as ws:
            hist = json.loads(await asyncio.wait_for(ws.recv(), WAIT))
            assert [m["text"] for m in hist["History"]] == ["first"]

            # type and click in A: A shows it, B and the client get it live
            d.switch_to.window(a)
            d.find_element(By.ID, "author").send_keys("Grace")
            d.find_element(By.ID, "text").send_keys("hello from the browser")
            d.find_element(By.ID, "send").click()
            wait_for(d, "the message in A", lambda d: shown(d) == [
                "Ada: first", "Grace: hello from the browser"])
            assert d.find_element(By.ID, "text").get_attribute("value") == ""
            ev = json.loads(await asyncio.wait_for(ws.recv(), WAIT))
            assert ev == {"Message": {"id": 2, "author": "Grace",
                                      "text": "hello from the browser"}}
            d.switch_to.window(b)
            wait_for(d, "the message in B", lambda d: shown(d) == [
                "Ada: first", "Grace: hello from the browser"])

            # the client sends over the WebSocket: both windows show it
            await ws.send(json.dumps({"author": "py", "text": "<b>not bold"}))
            ev = json.loads(await asyncio.wait_for(ws.recv(), WAIT))
            assert ev["Message"]["id"] == 3
            for w in (a, b):
                d.switch_to.window(w)
                wait_for(d, "the WebSocket's message",
                         lambda d: shown(d)[-1:] == ["py: <b>not bold"])
            assert not d.find_elements(By.CSS_SELECTOR, "#messages b")

    asyncio.run(run())

    # a message from the command line reaches the open page too
    r = chat.node.ask(PID, json.dumps({"SendMessage": ["cli", "from inject"]}))
    assert json.loads(r)["Ok"]["id"] == 4
    wait_for(d, "the injected message",
             lambda d: shown(d)[-1:] == ["cli: from inject"])

    # a refused message shows its reason and is not added
    d.find_element(By.ID, "author").clear()
    d.find_element(By.ID, "author").send_keys("x" * 40)
    d.execute_script("document.getElementById('author').value += 'y'")
    d.find_element(By.ID, "text").send_keys("too long a name")
    d.find_element(By.ID, "send").click()
    wait_for(d, "the error", lambda d: d.find_element(By.ID, "error")
             .text == "the name is too long")
    assert shown(d)[-1:] == ["cli: from inject"]

    # after a reload, the history (from the process) shows everything; the
    # name is remembered
    d.switch_to.window(a)
    d.refresh()
    wait_live(d)
    want = ["Ada: first", "Grace: hello from the browser",
            "py: <b>not bold", "cli: from inject"]
    wait_for(d, "the history after a reload", lambda d: shown(d) == want)
    assert d.find_element(By.ID, "author").get_attribute("value") == "Grace"
    assert js_errors(d) == []
    d.switch_to.window(b)
    d.close()
    d.switch_to.window(a)


def test_http_and_ws_need_the_login(chat):
    # a browser (its Accept lists text/html) gets the login page ...
    anon = urllib.request.Request(chat.base + "/api/history",
                                  headers={"Accept": "text/html"})
    with urllib.request.urlopen(anon, timeout=WAIT) as r:
        assert r.status == 200 and b"password" in r.read()  # the login page
    # ... any other client a JSON 401
    anon = urllib.request.Request(chat.base + "/api/history")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(anon, timeout=WAIT)
    assert e.value.code == 401
    assert json.loads(e.value.read())["HypercError"]["kind"] == "Unauthorized"

    async def run():
        url = f"ws://127.0.0.1:{chat.port}/{PID}/ws"
        with pytest.raises(websockets.exceptions.InvalidStatusCode):
            async with websockets.connect(url, open_timeout=WAIT):
                pass
    asyncio.run(run())


def test_history_is_bounded_and_kept_across_restarts(node_factory, tmp_path):
    home = tmp_path / "chat-home"
    c = boot(node_factory, home=home)
    for i in range(105):
        c.node.ask(PID, json.dumps({"SendMessage": ["bot", f"m{i}"]}))
    st, _, body = c.request("POST", "/api/send", {"SendMessage": ["", "x"]})
    assert json.loads(body)["Ok"] == {"id": 106, "author": "anonymous",
                                      "text": "x"}
    st, _, body = c.request("POST", "/api/send", {"SendMessage": ["a", ""]})
    assert st == 200 and json.loads(body) == {"Err": "the message is empty"}
    h = c.history()
    assert len(h) == 100 and h[0]["id"] == 7 and h[-1]["id"] == 106
    c.node.stop()

    c = boot(node_factory, home=home)
    assert c.history() == h
    r = json.loads(c.node.ask(PID, json.dumps({"SendMessage": ["bot", "after"]})))
    assert r["Ok"]["id"] == 107
    assert [m["id"] for m in c.history()][:2] == [8, 9]


def test_ts_client_is_what_hyperc_gen_writes(tmp_path):
    out = tmp_path / "caller-utils.ts"
    subprocess.run([BIN, "gen", "--ts", str(out),
                    os.path.join(CHAT, "chat.c")], check=True)
    with open(os.path.join(UI_SRC, "src", "caller-utils.ts"), "rb") as f:
        assert out.read_bytes() == f.read(), (
            "examples/chat/ui-src/src/caller-utils.ts is stale: rebuild the "
            "UI (examples/chat/README.md)")


def test_compiled_ui_is_built_from_its_sources():
    """built-from.sha256 (written by the UI build) lists every input and
    output of the TypeScript compile: a source changed without a rebuild, or
    a compiled file edited by hand, shows here."""
    listed = []
    with open(os.path.join(UI_SRC, "built-from.sha256")) as f:
        for line in f:
            digest, name = line.rstrip("\n").split("  ", 1)
            listed.append(name)
            with open(os.path.join(UI_SRC, name), "rb") as g:
                assert hashlib.sha256(g.read()).hexdigest() == digest, (
                    f"{name} changed since the UI was built: rebuild it "
                    "(examples/chat/README.md)")
    srcs = sorted("src/" + f for f in os.listdir(os.path.join(UI_SRC, "src")))
    outs = sorted("../pkg/ui/js/" + f for f in
                  os.listdir(os.path.join(CHAT, "pkg", "ui", "js")))
    assert set(srcs + outs) <= set(listed), "a file not built from ui-src"
