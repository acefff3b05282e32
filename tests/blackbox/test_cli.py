"""The hyperc command line: help, inject/ps/verbosity against a running node,
and clear errors for bad packages and flags."""
import json
import os
import shutil
import subprocess

from conftest import BIN, PACKAGES, pid


def run(*args, timeout=30):
    return subprocess.run([BIN, *args], capture_output=True, text=True,
                          timeout=timeout)


def test_help_for_every_command():
    for cmd in ([], ["run"], ["inject"], ["verbosity"], ["ps"], ["logs"]):
        r = run(*cmd, "--help")
        assert r.returncode == 0, (cmd, r.stderr)
        assert "usage: hyperc" in r.stdout
    r = run("frob")
    assert r.returncode == 2 and "unknown command 'frob'" in r.stderr


def test_inject_prints_reply_and_exit_codes(node):
    r = run("inject", "--home", node.home, pid("a"), "echo from the shell")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "from the shell\n"
    r = run("inject", "--home", node.home, "--json", pid("a"), "whoami")
    rep = json.loads(r.stdout)
    assert rep["ok"] and rep["source"] == "test.os@a:tpkg:test.os"
    assert rep["body"] == "test.os@a:tpkg:test.os"
    r = run("inject", "--home", node.home, "--timeout", "1", pid("slow"),
            "sleep 2500")
    assert r.returncode == 1 and "timeout" in r.stderr
    r = run("inject", "--home", node.home, pid("nope"), "hello")
    assert r.returncode == 1
    assert "no process nope:tpkg:test.os on this node" in r.stderr
    r = run("inject", "--home", node.home, "-l", pid("a"), "note quiet")
    assert r.returncode == 0 and r.stdout == ""
    node.wait_log("note: quiet")


def test_inject_blob_from_file(node, tmp_path):
    f = tmp_path / "data.bin"
    f.write_bytes(b"blob-from-file")
    r = run("inject", "--home", node.home, "--blob", str(f), pid("a"), "blob")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "blob 14 bytes\nblob: blob-from-file\n"


def test_inject_without_node_says_how_to_start_one(tmp_path):
    r = run("inject", "--home", str(tmp_path), pid("a"), "echo x")
    assert r.returncode == 1 and "no running node" in r.stderr


def test_ps_and_verbosity(node):
    r = run("ps", "--home", node.home, "--json")
    procs = {p["id"]: p for p in json.loads(r.stdout)}
    assert procs["a:tpkg:test.os"]["status"] == "running"
    assert procs["private:tpkg:test.os"]["public"] is False
    assert "state:distro:sys" in procs and "timer:distro:sys" in procs
    # tproc prints "up" at level 1: raise a's level and restart it.
    assert run("verbosity", "--home", node.home, pid("a"), "1").returncode == 0
    node.ask(pid("a"), "exit", timeout=20)  # (a busy sanitized run)
    node.wait_log("a:tpkg:test.os exited", timeout=20)
    deadline = 200
    while "tproc test.os@a:tpkg:test.os up" not in node.stderr() and deadline:
        import time
        time.sleep(0.1)
        deadline -= 1
    assert "tproc test.os@a:tpkg:test.os up" in node.stderr()
    assert "tproc test.os@c:tpkg:test.os up" not in node.stderr()
    r = run("verbosity", "--home", node.home, "nope:x:y", "2")
    assert r.returncode == 1 and "no process nope:x:y" in r.stderr


def test_bad_packages_are_refused_clearly(tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(os.path.join(PACKAGES, "tpkg"), bad)
    (bad / "pkg" / "manifest.json").write_text('[{"process_name": "a"}]')
    r = run("run", "--home", str(tmp_path / "h"), str(bad))
    assert r.returncode == 1
    assert 'manifest.json[0]: missing field "process_wasm_path"' in r.stderr
    (bad / "pkg" / "manifest.json").write_text(
        '[{"process_name":"a","process_wasm_path":"/missing.so","on_exit":"None",'
        '"request_networking":false,"request_capabilities":[],'
        '"grant_capabilities":[],"public":true}]')
    r = run("run", "--home", str(tmp_path / "h"), str(bad))
    assert r.returncode == 1 and "no file at" in r.stderr
    r = run("run", "--home", str(tmp_path / "h"), str(tmp_path / "nothing"))
    assert r.returncode == 1 and "nothing: No such file or directory" in \
        r.stderr
    r = run("run", "--home", str(tmp_path / "h"), str(tmp_path))
    assert r.returncode == 1 and "cannot read metadata.json" in r.stderr
    r = run("run", "--port", "99999", str(bad))
    assert r.returncode == 2 and "--port" in r.stderr
    r = run("run", "--name", "Bad_Name", "--home", str(tmp_path / "h"), str(bad))
    assert r.returncode == 1 and "not hypermap-safe" in r.stderr


def test_log_rotation_flags(node_factory):
    n = node_factory(extra=["--max-log-size", "3000", "--number-log-files", "2"])
    for i in range(60):
        n.inject(pid("a"), f"note rotation line {i:03d} " + "x" * 40,
                 non_block=True)
    n.wait_log("rotation line 059")
    logdir = os.path.join(n.home, "log")
    files = sorted(os.listdir(logdir))
    assert files == ["node.log", "node.log.1"], files
    assert all(os.path.getsize(os.path.join(logdir, f)) < 3200 for f in files)
