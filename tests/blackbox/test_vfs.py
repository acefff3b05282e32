"""vfs:distro:sys in a running node: Hyperware's VfsRequest / VfsResponse
JSON through `hyperc inject` (the injector acts with root rights), a
package's pkg/ folder as its read-only drive, requests from a process of
the package (own drives allowed, other packages refused, vfs not public),
the file size flag, and files surviving a restart."""
import json
import os
import subprocess

from conftest import BIN, pid

VFS = "vfs:distro:sys"
PKGS = ("tpkg", "tvfs")


def req(path, action):
    return json.dumps({"path": path, "action": action})


def vfs(node, path, action, blob=None):
    rep = node.inject(VFS, req(path, action), blob=blob)
    assert rep["ok"], rep
    return json.loads(rep["body"]), rep.get("blob")


def test_vfs_through_inject(node_factory):
    n = node_factory(packages=PKGS)
    assert vfs(n, "/tvfs:test.os/data", "CreateDrive")[0] == "Ok"
    assert os.path.isdir(os.path.join(n.home, "vfs", "tvfs:test.os", "data"))
    body, _ = vfs(n, "/tvfs:test.os/data/f.txt", "Write", blob=b"hello vfs")
    assert body == "Ok"
    with open(os.path.join(n.home, "vfs", "tvfs:test.os", "data",
                           "f.txt"), "rb") as fh:
        assert fh.read() == b"hello vfs"
    body, blob = vfs(n, "/tvfs:test.os/data/f.txt", "Read")
    assert body == "Read"
    assert blob["text"] == "hello vfs"
    assert blob["mime"] == "application/octet-stream"
    assert vfs(n, "/tvfs:test.os/data/f.txt", "Metadata")[0] == {
        "Metadata": {"file_type": "File", "len": 9}}
    body, _ = vfs(n, "/tvfs:test.os/data/f.txt", "Append", blob=b"!")
    assert body == "Ok"
    # Append leaves the file's cursor at the end; OpenFile rewinds it.
    assert vfs(n, "/tvfs:test.os/data/f.txt", "ReadToString")[0] == {
        "ReadToString": ""}
    assert vfs(n, "/tvfs:test.os/data/f.txt",
               {"OpenFile": {"create": False}})[0] == "Ok"
    assert vfs(n, "/tvfs:test.os/data/f.txt", "ReadToString")[0] == {
        "ReadToString": "hello vfs!"}
    assert vfs(n, "/tvfs:test.os/data/nope", "Read")[0] == {
        "Err": {"IOError": "No such file or directory (os error 2)"}}
    # The package's pkg/ folder, read-only.
    assert vfs(n, "/tvfs:test.os/pkg/ui", "ReadDir")[0] == {"ReadDir": [
        {"path": "tvfs:test.os/pkg/ui/css", "file_type": "Directory"},
        {"path": "tvfs:test.os/pkg/ui/index.html", "file_type": "File"}]}
    body, blob = vfs(n, "/tvfs:test.os/pkg/ui/index.html", "Read")
    assert blob["text"].startswith("<!doctype html>")
    body, _ = vfs(n, "/tvfs:test.os/pkg/ui/index.html", "Write", blob=b"x")
    assert body == {"Err": "NoWriteCap"}
    # Root listing: every package, loaded or with files.
    body, _ = vfs(n, "/", "ReadDir")
    assert {"path": "tpkg:test.os", "file_type": "Directory"} in body["ReadDir"]
    assert {"path": "tvfs:test.os", "file_type": "Directory"} in body["ReadDir"]
    # Malformed requests and paths.
    rep = n.inject(VFS, "not json")
    assert json.loads(rep["body"]) == {"Err": "MalformedRequest"}
    assert vfs(n, "/tvfs:test.os/../../x/y", "Read")[0] == {
        "Err": "MalformedRequest"}
    assert vfs(n, "/tvfs:test.os", "Read")[0] == {"Err": "MalformedRequest"}


def ask_vfs(node, proc, path, action):
    """`proc` (a tproc of tvfs) sends the request with send-and-await."""
    return node.ask(pid(proc, "tvfs"),
                    f"await our@{VFS} 5 " + req(path, action))


def test_vfs_from_a_process(node_factory):
    n = node_factory(packages=PKGS)
    assert ask_vfs(n, "w", "/tvfs:test.os/logs", "CreateDrive") == \
        'awaited: "Ok"'
    caps = n.ask(pid("w", "tvfs"), "caps")
    assert f'test.os@{VFS} {{"drive":"/tvfs:test.os/logs","kind":"read"}}' \
        in caps
    assert f'test.os@{VFS} {{"drive":"/tvfs:test.os/logs","kind":"write"}}' \
        in caps
    out = ask_vfs(n, "w", "/tvfs:test.os/logs/w.log",
                  {"OpenFile": {"create": True}})
    assert out == 'awaited: "Ok"'
    assert os.path.isfile(os.path.join(n.home, "vfs", "tvfs:test.os", "logs",
                                       "w.log"))
    size = os.path.getsize(os.path.join(n.home, "vfs", "tvfs:test.os", "logs",
                                        "w.log"))
    assert ask_vfs(n, "w", "/tvfs:test.os/logs/w.log", "Metadata") == \
        'awaited: {"Metadata":{"file_type":"File","len":%d}}' % size
    html = os.path.join(os.environ.get("HYPERC_PACKAGES", "build/packages"),
                        "tvfs", "pkg", "ui", "index.html")
    assert ask_vfs(n, "w", "/tvfs:test.os/pkg/ui/index.html", "Len") == \
        'awaited: {"Len":%d}' % os.path.getsize(html)
    # Another package's drives: refused.
    assert ask_vfs(n, "w", "/tpkg:test.os/x", "CreateDrive") == \
        'awaited: {"Err":"NoWriteCap"}'
    assert ask_vfs(n, "w", "/tpkg:test.os/pkg/manifest.json", "Read") == \
        'awaited: {"Err":"NoReadCap"}'
    assert ask_vfs(n, "w", "/", "ReadDir") == 'awaited: {"Err":"NoReadCap"}'
    # vfs is not public: a process without messaging for it is refused.
    assert ask_vfs(n, "nocap", "/tvfs:test.os/logs", "ReadDir") == \
        "await timeout"


def test_vfs_file_size_flag_and_cli(node_factory, tmp_path):
    n = node_factory(packages=PKGS, extra=["--vfs-max-file-size", "8"])
    vfs(n, "/tvfs:test.os/data", "CreateDrive")
    body, _ = vfs(n, "/tvfs:test.os/data/f", "Write", blob=b"123456789")
    assert "file too large" in body["Err"]["IOError"]
    f = tmp_path / "eight"
    f.write_bytes(b"12345678")
    r = subprocess.run([BIN, "inject", "--home", n.home, "--blob", str(f), VFS,
                        req("/tvfs:test.os/data/f", "Write")],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and r.stdout == '"Ok"\n', r
    r = subprocess.run([BIN, "inject", "--home", n.home, VFS,
                        req("/tvfs:test.os/data/f", "Read")],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and r.stdout == '"Read"\nblob: 12345678\n', r
    r = subprocess.run([BIN, "run", "--vfs-max-file-size", "x", "nowhere"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "--vfs-max-file-size" in r.stderr


def test_vfs_files_survive_restart(node_factory, tmp_path):
    home = tmp_path / "persist"
    n = node_factory(packages=PKGS, home=home)
    vfs(n, "/tvfs:test.os/data", "CreateDrive")
    vfs(n, "/tvfs:test.os/data/keep", "Write", blob=b"kept")
    n.stop()
    n2 = node_factory(packages=PKGS, home=home)
    assert vfs(n2, "/tvfs:test.os/data/keep", "Read")[1]["text"] == "kept"
