"""The README's first command shows the product: scripts/demo.sh's node
(its `hyperc run` line, run here with a port and home of the test's own)
serves the chat example, prints the URL to open and the login password, and
that URL, opened in headless Chromium, asks for the password, then shows the
node's home page: the installed apps with their homepage tiles (icon,
widget) and links to their UIs; the chat link opens the chat."""
import os
import re
import shlex
import subprocess
import time

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from conftest import BIN, chromium, free_port

HERE = os.path.dirname(os.path.abspath(__file__))
DEMO = os.path.join(HERE, "..", "..", "scripts", "demo.sh")
PACKAGES = os.environ["HYPERC_PACKAGES"]
WAIT = 20


def demo_run_args():
    """The arguments scripts/demo.sh gives `hyperc run`."""
    with open(DEMO) as f:
        line = next(l for l in f if l.startswith("exec build/hyperc run "))
    return shlex.split(line)[3:]


@pytest.fixture
def demo_node(tmp_path):
    port = free_port()
    home = tmp_path / "home"
    args = []
    for a in demo_run_args():
        if a == "$@":
            continue
        if a == "$port":
            a = str(port)
        elif a == "hyperc-home":
            a = str(home)
        elif a.startswith("build/packages/"):
            a = os.path.join(PACKAGES, a[len("build/packages/"):])
        args.append(a)
    proc = subprocess.Popen([BIN, "run", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    out = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        out.append(line)
        if "log in with the node password" in line:
            break
    yield proc, port, home, "".join(out)
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture
def browser(tmp_path):
    d = chromium(tmp_path / "chromium", WAIT)
    yield d
    d.quit()


def wait_for(d, what, cond):
    try:
        return WebDriverWait(d, WAIT, poll_frequency=0.05).until(cond)
    except Exception as e:
        raise AssertionError(f"waiting for {what}; the page: "
                             f"{d.page_source[:2000]}") from e


def test_demo_shows_the_home_page_and_the_chat(demo_node, browser):
    proc, port, home, out = demo_node
    m = re.search(rf"hyperc: open http://localhost:{port}/ and log in with "
                  r"the node password (\S+) \(made at this first boot, "
                  r"shown only now; the node keeps only its hash\)", out)
    assert m, out
    password = m.group(1)
    kept = (home / "http" / "password_hash").read_text()
    assert kept.startswith("$argon2id$") and password not in kept
    assert not (home / "http" / "password").exists()
    d = browser
    d.get(f"http://127.0.0.1:{port}/")
    pw = wait_for(d, "the login page", lambda d: d.find_element(By.ID,
                                                                "password"))
    pw.send_keys(password)
    d.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    app = wait_for(d, "the home page", lambda d: d.find_element(
        By.CSS_SELECTOR, 'li.app[data-id="chat:chat:hyperc.os"]'))
    # the tile: its label, its icon (an SVG data URL), its widget
    assert app.find_element(By.CSS_SELECTOR, ".label").text == "chat"
    icon = app.find_element(By.CSS_SELECTOR, "img.icon")
    assert icon.get_attribute("src").startswith("data:image/svg+xml;base64,")
    assert d.execute_script("return arguments[0].naturalWidth", icon) > 0
    widget = app.find_element(By.CSS_SELECTOR, "iframe.widget")
    d.switch_to.frame(widget)
    assert "the room of this node" in d.find_element(By.TAG_NAME, "p").text
    d.switch_to.default_content()
    # apps without a tile or a UI (counter, hello) are not listed
    ids = [e.get_attribute("data-id")
           for e in d.find_elements(By.CSS_SELECTOR, "li.app")]
    assert ids == ["chat:chat:hyperc.os"], ids
    # the link opens the chat's UI
    app.find_element(By.CSS_SELECTOR, "a.open").click()
    wait_for(d, "the chat page", lambda d: d.find_elements(By.ID, "composer"))
    assert d.current_url == f"http://127.0.0.1:{port}/chat:chat:hyperc.os/"
    # the password was shown on the terminal only, never in the log
    proc.terminate()
    proc.wait(timeout=30)
    err = proc.stderr.read()
    assert password not in err
    for f in home.rglob("*.log"):
        assert password not in f.read_text(errors="replace"), f
    assert "first boot: a node password was made" in err


def test_home_page_needs_the_login(demo_node):
    import urllib.request
    proc, port, home, out = demo_node
    req = urllib.request.Request(f"http://127.0.0.1:{port}/",
                                 headers={"Accept": "text/html"})
    with urllib.request.urlopen(req, timeout=WAIT) as r:
        page = r.read().decode()
    assert 'id="password"' in page and "chat:chat:hyperc.os" not in page
