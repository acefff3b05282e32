"""Black-box test harness: boots real `hyperc run` nodes and talks to them
through the control socket, as `hyperc inject` does.

Environment (set by ctest): HYPERC_BIN (the hyperc binary) and
HYPERC_PACKAGES (the build's packages/ folder)."""
import base64
import json
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

import pytest

BIN = os.environ.get("HYPERC_BIN", "build/hyperc")
PACKAGES = os.environ.get("HYPERC_PACKAGES", "build/packages")
NODE = "test.os"
# How the nodes run components (docs/wasm-native.md): HYPERC_WASM_RUNTIME
# ("native" or "v8"), by default as native code when it can be made (this
# build's libhyperc_component.a beside its wasm tools, and wasm2c), else in
# the wasm host under V8.
CAN_TRANSLATE = (os.path.exists(os.path.join(
    os.environ.get("HYPERC_WASM_TOOLS", "build/wasm"), "libhyperc_component.a"))
    and shutil.which("wasm2c") is not None)
NATIVE_CODE = (os.environ.get("HYPERC_WASM_RUNTIME") == "native" or
               (not os.environ.get("HYPERC_WASM_RUNTIME") and CAN_TRANSLATE))


def free_port():
    """A TCP port free now (for --port), below the ephemeral range: a port
    the kernel hands out there (bind to port 0) is free only until some
    outgoing connection of another test running meanwhile takes it as its
    own (the node then cannot listen: "address already in use"), and the
    same holds for a node that stops and listens on its port again (a peer
    dialing it may hold the port meanwhile).  Falls back to the kernel's
    choice when no port below the range is free."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    for _ in range(200):
        port = random.randrange(10000, max(low, 10001))
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# Nodes isolate their processes by default (each in a worker of its own).
# HYPERC_TEST_IN_PROCESS=1 runs every node of the suite with --in-process:
# the same tests then check that a process cannot tell a thread from a
# worker.
IN_PROCESS_ALL = (("--in-process",) if os.environ.get("HYPERC_TEST_IN_PROCESS")
                  else ())
ISOLATED = not IN_PROCESS_ALL
# HYPERC_TEST_SCHEDULERS=N adds --schedulers N (in-process processes as
# fibers on N scheduler threads; with HYPERC_TEST_IN_PROCESS=1 for all).
if os.environ.get("HYPERC_TEST_SCHEDULERS"):
    IN_PROCESS_ALL += ("--schedulers", os.environ["HYPERC_TEST_SCHEDULERS"])
# For a test that puts processes on scheduler threads itself: skipped in a
# run that asks for none (HYPERC_TEST_SCHEDULERS=0).
needs_fibers = pytest.mark.skipif(
    os.environ.get("HYPERC_TEST_SCHEDULERS") == "0",
    reason="runs processes as fibers, which this run switches off")


def thread_names(pid):
    """The names (comm) of process pid's threads now, one a thread."""
    out = []
    for t in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{t}/comm") as f:
                out.append(f.read().strip())
        except FileNotFoundError:
            pass  # a thread that just ended
    return out


def children_by_parent():
    """{ppid: [pid, ...]} of every process now, read from /proc."""
    children = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(d))
    return children


def exchange(port, data, source="127.0.0.1", timeout=30):
    """Send `data` on a new connection from `source` and read until the
    server closes; the bytes read."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                 source_address=(source, 0))
    s.sendall(data)
    got = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        got += chunk
    s.close()
    return got


def pid(name, pkg="tpkg", pub="test.os"):
    return f"{name}:{pkg}:{pub}"


def blob_bytes(seed, size):
    """tproc's blob_fill."""
    return bytes((seed * 31 + i * 7) & 0xff for i in range(size))


def blob_line(seed, size):
    """tproc's blob_line of blob_bytes(seed, size)."""
    h = 2166136261
    for c in blob_bytes(seed, size):
        h = ((h ^ c) * 16777619) & 0xffffffff
    return f"len={size} fnv={h:08x} mime=application/x-tproc"


def ask_until(node, process, body, want, timeout=15):
    """Ask until `process` answers `want` (a restarting process)."""
    deadline = time.monotonic() + timeout
    while True:
        rep = node.inject(process, body, timeout=2)
        if rep.get("ok") and rep["body"] == want:
            return
        assert time.monotonic() < deadline, rep
        time.sleep(0.05)


def addr(name, pkg="tpkg", pub="test.os", node="our"):
    return f"{node}@{pid(name, pkg, pub)}"


class Node:
    """One running node.  `extra` are extra `hyperc run` flags."""

    def __init__(self, home, packages=("tpkg",), extra=(), name=NODE,
                 bin=None):
        self.bin = bin or BIN
        self.home = str(home)
        self.name = name
        self.packages = [os.path.join(PACKAGES, p) for p in packages]
        self.extra = list(extra)
        self.proc = None
        self.stderr_lines = []
        self._reader = None

    def start(self, timeout=20, wait_ready=True):
        """Boot the node; unless wait_ready is false, return once it says
        it is ready (its processes have started: bindings and init done)."""
        cmd = [self.bin, "run", "--home", self.home, "--name", self.name,
               *IN_PROCESS_ALL, *self.extra, *self.packages]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        self._reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._reader.start()
        if not wait_ready:
            return self
        deadline = time.monotonic() + timeout
        line = self.proc.stdout.readline()
        if "ready" not in line:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"node did not start: {line!r}\n"
                                 + "".join(self.stderr_lines))
        assert time.monotonic() < deadline
        return self

    def _read_stderr(self):
        for line in self.proc.stderr:
            self.stderr_lines.append(line)

    def stderr(self):
        return "".join(self.stderr_lines)

    def log(self):
        """The node's log, rotated files included, oldest first."""
        d = os.path.join(self.home, "log")
        if not os.path.isdir(d):
            return ""  # (not made yet)
        names = [f for f in os.listdir(d) if f.startswith("node.log")]
        names.sort(key=lambda f: -int(f.rsplit(".", 1)[1])
                   if f != "node.log" else 1)
        text = ""
        for f in names:
            with open(os.path.join(d, f)) as fh:
                text += fh.read()
        return text

    def wait_log(self, text, timeout=10, count=1):
        """Wait until `text` appears `count` times in the node's log."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.log().count(text) >= count:
                return True
            time.sleep(0.05)
        raise AssertionError(f"{text!r} x{count} not in log:\n{self.log()}")

    def call(self, req, timeout=60):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        s.connect(os.path.join(self.home, "node.sock"))
        data = json.dumps(req).encode()
        s.sendall(struct.pack(">I", len(data)) + data)
        hdr = self._recv(s, 4)
        (n,) = struct.unpack(">I", hdr)
        rep = json.loads(self._recv(s, n))
        s.close()
        return rep

    @staticmethod
    def _recv(s, n):
        buf = b""
        while len(buf) < n:
            chunk = s.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("node closed the control socket")
            buf += chunk
        return buf

    def inject(self, process, body, timeout=5, non_block=False, blob=None,
               mime=None):
        """Send `body` to `process`; returns the reply dict."""
        req = {"op": "inject", "process": process, "body": body,
               "expects_response": None if non_block else timeout}
        if blob is not None:
            req["blob_b64"] = base64.b64encode(blob).decode()
            if mime:
                req["mime"] = mime
        return self.call(req, timeout=timeout + 30)

    def stored_state(self, process_id):
        """What state:distro:sys holds for `process_id` ("p:k:pub"), asked
        through the running node (it holds its database exclusively): the
        bytes, or None when nothing is stored."""
        rep = self.inject("state:distro:sys",
                          json.dumps({"GetState": process_id}), timeout=10)
        assert rep.get("ok"), rep
        if rep["body"] == '"GetState"':
            return base64.b64decode(rep["blob"]["b64"])
        assert "NotFound" in rep["body"], rep
        return None

    def ask(self, process, body, timeout=5):
        """inject and return the response body text (asserting success)."""
        rep = self.inject(process, body, timeout=timeout)
        assert rep.get("ok"), rep
        return rep["body"]

    def stop(self, check=True):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGINT)
        try:
            rc = self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("node did not stop on SIGINT")
        if self._reader:
            self._reader.join(timeout=5)
        if check:
            assert rc == 0, f"node exited {rc}:\n{self.stderr()}"
            # a worker's report (its stderr is the node's): the node's own
            # exit code says nothing of another process's
            assert "WARNING: ThreadSanitizer:" not in self.stderr(), \
                self.stderr()


@pytest.fixture
def node_factory(tmp_path):
    nodes = []

    def make(packages=("tpkg",), extra=(), home=None, name=NODE,
             wait_ready=True):
        n = Node(home or tmp_path / f"home{len(nodes)}", packages, extra, name)
        nodes.append(n)
        return n.start(wait_ready=wait_ready)

    yield make
    failed = None
    for n in nodes:
        try:
            n.stop()
        except AssertionError as e:  # (the others are stopped all the same)
            failed = failed or e
        finally:
            # the node's stderr (workers' reports too), read to its end:
            # pytest shows it for a failed test
            if n._reader:
                n._reader.join(timeout=5)
            sys.stdout.write(n.stderr())
    if failed:
        raise failed


@pytest.fixture
def node(node_factory):
    return node_factory()


def chromium(user_data_dir, page_load_timeout=20):
    """Headless Chromium (Debian's chromium and chromium-driver, driven by
    python3-selenium), as root in a container on a machine with loopback
    only; the browser's console is kept (get_log("browser"))."""
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service
    for f in ("/usr/bin/chromium", "/usr/bin/chromedriver"):
        assert os.path.exists(f), f"{f} is missing: run scripts/setup.sh"
    o = Options()
    o.binary_location = "/usr/bin/chromium"
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu",
              "--disable-dev-shm-usage", "--disable-quic", "--no-first-run",
              "--disable-background-networking", "--disable-component-update",
              "--disable-sync", "--window-size=1000,800",
              f"--user-data-dir={user_data_dir}"):
        o.add_argument(a)
    o.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    d = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=o)
    d.set_page_load_timeout(page_load_timeout)
    return d

