"""docs/security.md, Defaults, by attack: the HTTP server listens on
loopback unless asked (and says where), a home others can write is refused,
the first-boot password reaches no file, a password need not be on the
command line, and a link planted in the home's run/ folder redirects
nothing."""
import os
import re
import socket
import subprocess
import time

import pytest

from conftest import (BIN, IN_PROCESS_ALL, ISOLATED, PACKAGES,
                      children_by_parent, free_port, pid)
from test_http import curl, login


def listening_addrs(port):
    """The local addresses of sockets listening on TCP `port`, as
    /proc/net/tcp{,6} show them (hex, e.g. '0100007F' for 127.0.0.1)."""
    found = []
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not os.path.exists(name):
            continue
        with open(name) as f:
            next(f)
            for line in f:
                parts = line.split()
                local, state = parts[1], parts[3]
                addr, p = local.split(":")
                if int(p, 16) == port and state == "0A":  # LISTEN
                    found.append(addr)
    return found


def other_address():
    """An address of this machine that is not loopback, or None."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.connect(("192.0.2.1", 9))  # no packet is sent (UDP)
        a = s.getsockname()[0]
    except OSError:
        return None
    finally:
        s.close()
    return None if a.startswith("127.") else a


def wait_stderr(n, text, timeout=10):
    """Wait until `text` is in the node's stderr (read by a thread)."""
    deadline = time.monotonic() + timeout
    while text not in n.stderr():
        assert time.monotonic() < deadline, n.stderr()
        time.sleep(0.05)


def run_refused(args, timeout=30):
    """`hyperc run` that must fail: (exit status, stderr)."""
    p = subprocess.run([BIN, "run", *IN_PROCESS_ALL, *args],
                       capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stderr


# ------------------------------------------------------------ listening


def test_http_listens_on_loopback_unless_asked(node_factory):
    port = free_port()
    n = node_factory(packages=("thttpd",), extra=["--port", str(port)])
    n.port = port
    # the line at boot, on the terminal and in the log
    line = f"http-server listening on 127.0.0.1:{port} (this machine only"
    wait_stderr(n, line)
    assert line in n.log()
    out = n.proc.stdout.readline()
    assert out.startswith(f"hyperc: serving http://localhost:{port}/"), out
    # the socket itself: bound to 127.0.0.1 only
    assert listening_addrs(port) == ["0100007F"]
    # from another address of this machine nothing answers
    other = other_address()
    if other:
        with pytest.raises(OSError):
            socket.create_connection((other, port), timeout=5).close()
    assert curl(n, "/login")[0] == 200


def test_http_addr_serves_others_when_asked(node_factory):
    port = free_port()
    n = node_factory(packages=("thttpd",),
                     extra=["--port", str(port), "--http-addr", "0.0.0.0"])
    n.port = port
    line = (f"http-server listening on 0.0.0.0:{port} (reachable from "
            "other machines)")
    wait_stderr(n, line)
    assert line in n.log()
    assert listening_addrs(port) == ["00000000"]
    out = n.proc.stdout.readline()
    assert out.startswith(f"hyperc: serving http://localhost:{port}/"), out
    other = other_address()
    if other:
        socket.create_connection((other, port), timeout=5).close()


# ---------------------------------------------------------------- home


@pytest.mark.parametrize("mode,who", [(0o777, "its group and others"),
                                      (0o770, "its group"),
                                      (0o703, "others")])
def test_a_home_others_can_write_is_refused(tmp_path, mode, who):
    home = tmp_path / "home"
    home.mkdir()
    os.chmod(home, mode)
    rc, err = run_refused(["--home", str(home),
                           os.path.join(PACKAGES, "tpkg")])
    assert rc != 0
    assert f"refusing the home directory: {home} can be written by {who}" \
        in err, err
    assert "chmod go-w" in err
    # nothing was written into it
    assert os.listdir(home) == []


@pytest.mark.skipif(os.geteuid() != 0, reason="gives a folder away: root")
def test_a_home_of_another_user_is_refused(tmp_path):
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    os.chown(home, 65534, -1)  # nobody's, private
    rc, err = run_refused(["--home", str(home),
                           os.path.join(PACKAGES, "tpkg")])
    assert rc != 0
    assert f"refusing the home directory: {home} belongs to another user " \
        "(uid 65534)" in err, err
    assert os.listdir(home) == []


def serve_at(node_factory, addr, url_host, listening):
    """A node with `--http-addr addr`: its URL names url_host and its log
    says it listens on `listening`, this machine only; its port."""
    port = free_port()
    n = node_factory(packages=("thttpd",),
                     extra=["--port", str(port), "--http-addr", addr])
    out = n.proc.stdout.readline()
    assert out.startswith(f"hyperc: serving http://{url_host}:{port}/"), out
    wait_stderr(n, f"http-server listening on {listening}:{port} (this "
                   "machine only")
    return port


def test_a_named_address_is_the_url(node_factory):
    serve_at(node_factory, "127.0.0.2", "127.0.0.2", "127.0.0.2")


def test_a_host_name_is_resolved(node_factory, tmp_path):
    """--http-addr takes a host name, such as localhost, resolved once at
    boot (its first IPv4 address); one that does not resolve is refused
    with the reason."""
    port = serve_at(node_factory, "localhost", "localhost", "127.0.0.1")
    with socket.create_connection(("127.0.0.1", port), timeout=5):
        pass
    rc, err = run_refused(["--home", str(tmp_path / "other"), "--port",
                           str(free_port()), "--http-addr", "nosuch.invalid",
                           os.path.join(PACKAGES, "thttpd")])
    assert rc != 0
    assert "http-server cannot listen on nosuch.invalid:" in err, err


def test_a_home_the_node_makes_is_private(node_factory, tmp_path):
    home = tmp_path / "made" / "home"
    node_factory(home=home)
    assert oct(home.stat().st_mode & 0o777) == "0o700"
    for sub in ("run", "log", "state"):
        assert (home / sub).stat().st_mode & 0o077 == 0, sub


# ------------------------------------------------------------ password


def test_first_boot_password_only_on_the_terminal(node_factory, tmp_path):
    port = free_port()
    home = tmp_path / "h"
    n = node_factory(packages=("thttpd",), extra=["--port", str(port)],
                     home=home)
    n.port = port
    out = n.proc.stdout.readline() + n.proc.stdout.readline()
    m = re.search(r"the node password (\S+) \(made at this first boot", out)
    assert m, out
    pw = m.group(1)
    assert login(n, pw)[0] == 200
    n.stop()
    # the log says a password was made, never which; no file in the home
    # holds it (the node keeps its argon2id hash)
    assert "first boot: a node password was made" in n.log()
    for f in home.rglob("*"):
        if f.is_file():
            assert pw.encode() not in f.read_bytes(), f
    assert pw not in n.stderr()
    assert (home / "http" / "password_hash").read_text().startswith(
        "$argon2id$v=19$m=19456,t=2,p=1$")


def cmdline(n):
    with open(f"/proc/{n.proc.pid}/cmdline", "rb") as f:
        return f.read()


def test_password_from_a_file_or_the_environment(node_factory, tmp_path,
                                                 monkeypatch):
    secret = "from a file, not argv"
    pwfile = tmp_path / "pw"
    pwfile.write_text(secret + "\n")
    port = free_port()
    home = tmp_path / "h"
    n = node_factory(packages=("thttpd",), home=home,
                     extra=["--port", str(port), "--password-file",
                            str(pwfile)])
    n.port = port
    # what `ps` shows has no password
    assert secret.encode() not in cmdline(n)
    assert "given by --password-file" in n.proc.stdout.readline() + \
        n.proc.stdout.readline()
    assert login(n, secret)[0] == 200
    assert login(n, "from a file")[0] == 401
    n.stop()
    # the environment, next boot (same home): it replaces the password
    monkeypatch.setenv("HYPERC_PASSWORD", "from the environment")
    port = free_port()
    n = node_factory(packages=("thttpd",), home=home,
                     extra=["--port", str(port)])
    n.port = port
    assert b"from the environment" not in cmdline(n)
    assert login(n, "from the environment")[0] == 200
    assert login(n, secret)[0] == 401
    n.stop()
    monkeypatch.delenv("HYPERC_PASSWORD")
    # and it stays set: no password given, the kept hash serves
    port = free_port()
    n = node_factory(packages=("thttpd",), home=home,
                     extra=["--port", str(port)])
    n.port = port
    assert "set before" in n.proc.stdout.readline() + \
        n.proc.stdout.readline()
    assert login(n, "from the environment")[0] == 200


def descendants(root):
    """The pids of every process below `root` (its workers and theirs)."""
    children = children_by_parent()
    found, below = [], [root]
    while below:
        for c in children.get(below.pop(), []):
            found.append(c)
            below.append(c)
    return found


def test_the_environment_password_stays_with_the_node(node_factory, tmp_path,
                                                      monkeypatch):
    """HYPERC_PASSWORD is taken out of the environment the node's workers
    inherit: package code could read it there."""
    monkeypatch.setenv("HYPERC_PASSWORD", "not for the workers")
    port = free_port()
    n = node_factory(packages=("thttpd",), home=tmp_path / "h",
                     extra=["--port", str(port)])
    n.port = port
    assert login(n, "not for the workers")[0] == 200
    kids = descendants(n.proc.pid)
    if ISOLATED:
        assert kids, "no worker to look at"
    for k in kids:
        try:
            with open(f"/proc/{k}/environ", "rb") as f:
                env = f.read()
        except OSError:
            continue  # ended meanwhile
        assert b"HYPERC_PASSWORD" not in env, k
        assert b"not for the workers" not in env, k


def test_password_flags_misused(tmp_path):
    pwfile = tmp_path / "pw"
    pwfile.write_text("x\n")
    tpkg = os.path.join(PACKAGES, "tpkg")
    rc, err = run_refused(["--home", str(tmp_path / "h"), "--password", "a",
                           "--password-file", str(pwfile), tpkg])
    assert rc == 2 and "not both" in err, err
    rc, err = run_refused(["--home", str(tmp_path / "h"), "--password-file",
                           str(tmp_path / "missing"), tpkg])
    assert rc == 2 and "cannot read --password-file" in err, err
    (tmp_path / "empty").write_text("\n")
    rc, err = run_refused(["--home", str(tmp_path / "h"), "--password-file",
                           str(tmp_path / "empty"), tpkg])
    assert rc == 2 and "first line is empty" in err, err


def test_a_plain_password_of_an_older_node_is_hashed(node_factory, tmp_path):
    home = tmp_path / "h"
    (home / "http").mkdir(parents=True)
    os.chmod(home, 0o700)
    (home / "http" / "password").write_text("old plain one\n")
    port = free_port()
    n = node_factory(packages=("thttpd",), home=home,
                     extra=["--port", str(port)])
    n.port = port
    assert not (home / "http" / "password").exists()
    kept = (home / "http" / "password_hash").read_text()
    assert kept.startswith("$argon2id$") and "old plain one" not in kept
    assert login(n, "old plain one")[0] == 200


# --------------------------------------------------------------- run/


def plant(home, victim):
    """Links in run/ under every name the node's instance copies of tpkg
    could take, all to `victim`."""
    run = home / "run"
    run.mkdir(parents=True)
    os.chmod(home, 0o700)
    for name in ("a", "b", "c", "slow", "private", "notifier", "net"):
        for seq in range(40):
            os.symlink(victim, run / f"{pid(name)}.{seq}.so")


def test_a_link_planted_in_run_redirects_nothing(node_factory, tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("precious")
    home = tmp_path / "home"
    plant(home, victim)
    # in-process: the node copies each process's binary into run/
    n = node_factory(home=home, extra=["--in-process"])
    assert n.ask(pid("a"), "echo hi") == "hi"
    assert victim.read_text() == "precious"
    n.stop()
    assert victim.read_text() == "precious"


def test_run_as_a_link_is_refused(tmp_path):
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    os.symlink(elsewhere, home / "run")
    rc, err = run_refused(["--home", str(home), "--in-process",
                           os.path.join(PACKAGES, "tpkg")])
    assert rc != 0 and f"{home}/run is a symbolic link" in err, err
    assert os.listdir(elsewhere) == []
