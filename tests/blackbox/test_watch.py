"""Reinstalling on a running node: `hyperc install` swaps a package's
binaries under running processes (state kept, nothing sent meanwhile lost,
processes added and removed with the manifest, a broken package changes
nothing), and `hyperc watch` rebuilds and reinstalls on every saved change,
booting a node or attaching to a running one."""
import json
import os
import shutil
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request

import pytest

from conftest import BIN, Node, free_port

P = "tally:tally:hyperc.os"


def hyperc(*args, **kw):
    return subprocess.run([BIN, *args], capture_output=True, text=True,
                          timeout=600, **kw)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """`hyperc new tally`, built once for the module."""
    d = tmp_path_factory.mktemp("apps")
    assert hyperc("new", "--dir", str(d), "tally").returncode == 0
    r = hyperc("build", str(d / "tally"))
    assert r.returncode == 0, r.stdout + r.stderr
    return d / "tally"


@pytest.fixture
def app(built, tmp_path):
    """A private copy of the built app (sources and build tree)."""
    dst = tmp_path / "tally"
    shutil.copytree(built, dst, symlinks=True)
    # the build tree names its source folder: configure it afresh
    shutil.rmtree(dst / "build")
    r = hyperc("build", str(dst))
    assert r.returncode == 0, r.stdout + r.stderr
    return dst


def http_get(port, path):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/{P}{path}",
                                timeout=10) as r:
        return r.read().decode()


def ps(node):
    return {p["id"]: p for p in node.call({"op": "ps"})["processes"]}


def test_install_keeps_state_and_loses_nothing(tmp_path, built):
    pkg = tmp_path / "pkg"
    shutil.copytree(built / "build/packages/tally", pkg)
    node = Node(tmp_path / "home", packages=(str(pkg),)).start()
    try:
        assert node.ask(P, '{"Increment": 5}') == "5"
        starts = ps(node)[P]["starts"]
        # requests keep coming while the package is reinstalled three times
        sent, errors = [0], []

        def load():
            for _ in range(150):
                rep = node.inject(P, '{"Increment": 1}', timeout=15)
                if rep.get("ok"):
                    sent[0] += 1
                else:
                    errors.append(rep)

        t = threading.Thread(target=load)
        t.start()
        for _ in range(3):
            r = hyperc("install", "--home", node.home, str(pkg))
            assert r.returncode == 0, r.stderr
            assert f"reinstalled: {P};" in r.stdout
        t.join()
        assert not errors, errors
        assert sent[0] == 150
        # every increment is in the state the new instance loaded
        assert node.ask(P, '"GetCount"') == str(5 + 150)
        assert ps(node)[P]["starts"] == starts + 3
    finally:
        node.stop()


def test_install_adds_removes_and_refuses(tmp_path, built):
    pkg = tmp_path / "pkg"
    shutil.copytree(built / "build/packages/tally", pkg)
    node = Node(tmp_path / "home", packages=(str(pkg),)).start()
    try:
        assert node.ask(P, '{"Increment": 2}') == "2"
        man = pkg / "pkg/manifest.json"
        entries = json.loads(man.read_text())
        second = dict(entries[0], process_name="second")
        man.write_text(json.dumps(entries + [second]))
        r = hyperc("install", "--home", node.home, str(pkg))
        assert r.returncode == 0, r.stderr
        assert "new: second:tally:hyperc.os;" in r.stdout
        assert node.ask("second:tally:hyperc.os", '{"Increment": 7}') == "7"
        assert node.ask(P, '"GetCount"') == "2"
        # a broken package changes nothing on the node
        broken = dict(entries[0], process_wasm_path="/missing.so")
        man.write_text(json.dumps([broken, second]))
        r = hyperc("install", "--home", node.home, str(pkg))
        assert r.returncode == 1
        assert "missing.so" in r.stderr and "no file at" in r.stderr
        assert node.ask(P, '"GetCount"') == "2"
        assert ps(node)["second:tally:hyperc.os"]["status"] == "running"
        # a process no longer in the manifest leaves the node
        man.write_text(json.dumps(entries))
        r = hyperc("install", "--home", node.home, str(pkg))
        assert r.returncode == 0, r.stderr
        assert "removed: second:tally:hyperc.os;" in r.stdout
        assert "second:tally:hyperc.os" not in ps(node)
        rep = node.inject("second:tally:hyperc.os", '"GetCount"')
        assert not rep.get("ok")
        assert node.ask(P, '"GetCount"') == "2"
        # a second node on the same home is refused before it touches it
        r = hyperc("run", "--home", node.home, str(pkg))
        assert r.returncode == 1
        assert f"a node already runs with home {node.home}" in r.stderr
        assert node.ask(P, '"GetCount"') == "2"
        # not a package at all
        r = hyperc("install", "--home", node.home, str(tmp_path))
        assert r.returncode == 1 and "cannot read metadata.json" in r.stderr
    finally:
        node.stop()


class Watch:
    """`hyperc watch` in the background, its output collected."""

    def __init__(self, *args):
        self.proc = subprocess.Popen([BIN, "watch", *args],
                                     stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        self.lines = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line)

    def text(self):
        return "".join(self.lines)

    def wait_for(self, what, count=1, timeout=240):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.text().count(what) >= count:
                return
            assert self.proc.poll() is None, self.text()
            time.sleep(0.1)
        raise AssertionError(f"{what!r} x{count} not seen:\n{self.text()}")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout=60)
        self.reader.join(timeout=5)
        return rc


def edit(path, old, new):
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def test_watch_boots_rebuilds_and_keeps_state(app, tmp_path):
    port = free_port()
    home = tmp_path / "home"
    w = Watch("--home", str(home), "--port", str(port), str(app))
    try:
        w.wait_for("watching")
        assert f"serving http://localhost:{port}/" in w.text()
        node = Node(home)
        assert node.ask(P, '{"Increment": 5}') == "5"
        assert http_get(port, "/api/count") == "5"
        src = app / "tally.c"
        edit(src, "return s->count;", "return s->count * 10;")
        w.wait_for(f"reinstalled: {P};")
        assert http_get(port, "/api/count") == "50"  # new code, same state
        # a change that does not build leaves the running version alone
        edit(src, "return s->count * 10;", "return s->count * ;")
        w.wait_for("the build failed; the node keeps the previous build")
        assert http_get(port, "/api/count") == "50"
        assert node.ask(P, '{"Increment": 1}') == "6"
        # a new source file in a new folder is watched too
        (app / "include").mkdir()
        (app / "include" / "scale.h").write_text("#define SCALE 100\n")
        edit(src, "return s->count * ;", "return s->count * 100;")
        w.wait_for(f"reinstalled: {P};", count=2)
        assert http_get(port, "/api/count") == "600"
    finally:
        assert w.stop() == 0
    # the node it booted is gone with it
    assert "hyperc watch: node stopped" in w.text()
    # what that node printed went to a file in its home, not here (-v)
    out = (home / "log" / "watch-node.out").read_text()
    assert "hyperc: node local.os ready" in out
    assert "hyperc: node local.os ready" not in w.text()
    assert not os.path.exists(home / "node.sock") or \
        subprocess.run([BIN, "ps", "--home", str(home)],
                       capture_output=True).returncode != 0


def test_watch_verbose_shows_what_the_node_prints(built, tmp_path):
    port = free_port()
    home = tmp_path / "home"
    w = Watch("-v", "--home", str(home), "--port", str(port), str(built))
    try:
        w.wait_for("watching")
        # the node writes its lines itself, to the same terminal: watch may
        # see it ready (its control socket) before they come out
        w.wait_for("hyperc: node local.os ready (control socket", timeout=30)
        w.wait_for(f"hyperc: serving http://localhost:{port}/", timeout=30)
        assert not (home / "log" / "watch-node.out").exists()
        # a printout of its process shows here too
        Node(home).ask(P, '{"Increment": 2}')
    finally:
        assert w.stop() == 0
    assert "hyperc: node stopped" in w.text()


def test_watch_shows_the_first_password_and_no_file_keeps_it(built,
                                                              tmp_path):
    """The node's output goes to a file in its home: the first-boot
    password is made by watch, shown on its terminal and nowhere else."""
    import json
    import re
    port = free_port()
    home = tmp_path / "home"
    w = Watch("--home", str(home), "--port", str(port), str(built))
    try:
        w.wait_for("watching")
        m = re.search(r"log in with the node password (\S+) \(made at this "
                      r"first boot, shown only now", w.text())
        assert m, w.text()
        pw = m.group(1)
        req = urllib.request.Request(
            f"http://127.0.0.1:{port}/login", method="POST",
            data=json.dumps({"password": pw}).encode(),
            headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            assert r.status == 200
    finally:
        assert w.stop() == 0
    for f in home.rglob("*"):
        if f.is_file():
            assert pw.encode() not in f.read_bytes(), f


def test_watch_says_why_a_reinstall_did_not_start(app, tmp_path):
    """A reinstalled process that crashes as it starts is named with why;
    watch goes on, a fixed source installs again at once, and watch's exit
    status says whether the last install left a process that did not
    start."""
    home = tmp_path / "home"
    w = Watch("--home", str(home), str(app))
    src = app / "tally.c"
    good = 'hp_log_info("starting at %llu", (unsigned long long)s->count);'
    bad = "__builtin_trap();"
    said = f"hyperc watch: {P} did not start: crashed as it started: SIGILL"
    try:
        w.wait_for("watching")
        edit(src, good, bad)
        w.wait_for(said)
        w.wait_for("fix it and save: watch rebuilds and reinstalls")
        assert " in init (tally." in w.text()
        assert w.proc.poll() is None  # still watching
        # on-exit Restart starts it again: each crash is said
        w.wait_for(f"hyperc watch: {P} crashed: SIGILL in init (tally.")
        edit(src, bad, good)
        w.wait_for(f"reinstalled: {P};", count=2)
        node = Node(home)
        assert node.ask(P, '{"Increment": 4}') == "4"
        assert w.text().count(said) == 1
        edit(src, good, bad)
        w.wait_for(said, count=2)
    finally:
        rc = w.stop()
    assert rc == 3, w.text()


def test_watch_attaches_to_a_running_node(app, tmp_path):
    home = tmp_path / "home"
    # `hyperc run` takes the package's source folder for its build
    node = Node(home, packages=(str(app),)).start()
    try:
        assert node.ask(P, '{"Increment": 3}') == "3"
        w = Watch("--home", str(home), str(app))
        try:
            w.wait_for("watching")
            assert f"a node runs at {home}; installing there" in w.text()
            edit(app / "tally.c", "return s->count;", "return s->count + 1000;")
            w.wait_for(f"reinstalled: {P};", count=2)
            assert node.ask(P, '"GetCount"') == "1003"
        finally:
            assert w.stop() == 0
        # the node was not watch's to stop
        assert node.proc.poll() is None
        assert node.ask(P, '"GetCount"') == "1003"
        # a watch whose node stops says so and ends
        w = Watch("--home", str(home), str(app))
        w.wait_for("watching")
        node.stop()
        assert w.proc.wait(timeout=30) == 1
        w.reader.join(timeout=5)
        assert f"the node at {home} stopped" in w.text()
    finally:
        node.stop()


def test_run_temporary_home_and_url(built):
    port = free_port()
    proc = subprocess.Popen([BIN, "run", "--tmp-home", "--port", str(port),
                             str(built)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert "ready" in proc.stdout.readline()
        line = proc.stdout.readline()
        assert line.startswith(f"hyperc: serving http://localhost:{port}/")
        home = line.split("(home ")[1].rstrip(")\n")
        assert os.path.isdir(home) and home.startswith("/tmp/hyperc-home-")
        # the process binds its paths as it starts
        deadline = time.monotonic() + 20
        while True:
            try:
                assert http_get(port, "/api/count") == "0"
                break
            except urllib.error.HTTPError as e:
                assert e.code == 404 and time.monotonic() < deadline
                time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0
    assert not os.path.exists(home)


def test_install_answers_requests_the_old_instance_was_serving(tmp_path):
    """A task waiting (here on a 5 s timer) when its process is reinstalled
    will never answer: its caller hears so at once, not at its deadline."""
    from conftest import PACKAGES
    pkg = tmp_path / "ttasks"
    shutil.copytree(os.path.join(PACKAGES, "ttasks"), pkg)
    node = Node(tmp_path / "home", packages=(str(pkg),)).start()
    a = "a:ttasks:test.os"
    try:
        got = {}

        def slow():
            t0 = time.monotonic()
            got["rep"] = node.inject(a, '{"SleepThen": [5000, 1]}',
                                     timeout=30)
            got["secs"] = time.monotonic() - t0

        t = threading.Thread(target=slow)
        t.start()
        time.sleep(0.5)
        r = hyperc("install", "--home", node.home, str(pkg))
        assert r.returncode == 0, r.stderr
        t.join()
        assert got["rep"] == {"ok": False, "error": "timeout"}, got
        assert got["secs"] < 4, got
        # the new instance serves
        assert node.ask(a, '"Ping"') == "1"
    finally:
        node.stop()
