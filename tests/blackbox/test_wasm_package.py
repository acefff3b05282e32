"""`hyperc package`: the zip a Hyperware node installs, built from the examples'
wasm32 packages, checked as kit lays it out and with every component read by
jco (src/wasm/inspect.mjs): only Hyperware's interface and WASI 0.2.0's
clocks and random source imported (and its pollable, by a process that
sleeps), `init` exported.  Also: every package of the native build has its
wasm twin, a built package is what `kit start-package` takes, and a process
that needs files does not build.

Needs HYPERC_WASM_PACKAGES (the wasm32 sub-build's packages/),
HYPERC_WASM_TOOLS (the build's wasm/ folder) and HYPERC_PACKAGES (the native
build's)."""
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import zipfile

import pytest

BIN = os.environ.get("HYPERC_BIN", "build/hyperc")
WASM_PACKAGES = os.environ.get("HYPERC_WASM_PACKAGES", "build/wasm32/packages")
TOOLS = os.environ.get("HYPERC_WASM_TOOLS", "build/wasm")

ALLOWED_IMPORTS = {
    "hyperware:process/standard@1.0.0",
    "wasi:clocks/wall-clock@0.2.0",
    "wasi:clocks/monotonic-clock@0.2.0",
    "wasi:random/random@0.2.0",
}
# what a process that sleeps on purpose imports besides (docs/wasm.md)
SLEEP_IMPORTS = {"wasi:io/poll@0.2.0"}
# the native packages that have no wasm twin, and why (docs/wasm.md):
# tlegacy's processes carry or declare a native runtime ABI of their own,
# tstack's tests guard pages and the native worker's sandbox
NATIVE_ONLY = {"tlegacy", "tstack"}


def kit_order(name):
    """kit's order of a zip's entries: paths sorted name by name (Rust's
    Path ordering of walkdir's entries)."""
    return name.rstrip("/").split("/")


def package(pkg, out):
    r = subprocess.run([BIN, "package"] + (["-o", str(out)] if out else [])
                       + [pkg],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return r.stdout


def inspect(*paths):
    r = subprocess.run(["node", os.path.join(TOOLS, "inspect.mjs")]
                       + [str(p) for p in paths],
                       capture_output=True, text=True, timeout=300)
    return r


@pytest.mark.parametrize("name", ["counter", "async-app", "chat"])
def test_package_zip_as_kit_lays_it_out(tmp_path, name):
    pkg = os.path.join(WASM_PACKAGES, name)
    out = tmp_path / f"{name}.zip"
    said = package(pkg, out)
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    assert said.splitlines() == [str(out), f"sha256 {digest}"]

    z = zipfile.ZipFile(out)
    names = z.namelist()
    assert names == sorted(names, key=kit_order)
    assert "manifest.json" in names and "api.zip" in names
    assert not any(n.startswith("pkg/") for n in names)  # pkg/'s contents
    manifest = json.loads(z.read("manifest.json"))
    for entry in manifest:
        wasm = entry["process_wasm_path"].lstrip("/")
        assert wasm.endswith(".wasm") and wasm in names
        comp = tmp_path / wasm
        comp.write_bytes(z.read(wasm))
        r = inspect(comp)
        assert r.returncode == 0, r.stderr
        world = json.loads(r.stdout)
        assert set(world["imports"]) <= ALLOWED_IMPORTS, world
        assert "hyperware:process/standard@1.0.0" in world["imports"]
        assert world["exports"] == ["init: func(our: string)"]
    # the WIT of the package, as `hyperc gen --wit` writes it
    api = zipfile.ZipFile(io.BytesIO(z.read("api.zip")))
    wits = api.namelist()
    assert wits and all(w.endswith(".wit") for w in wits)
    for w in wits:
        assert api.read(w).startswith(b"package ") or b"world " in api.read(w) \
            or b"interface " in api.read(w)
    for info in z.infolist():
        assert info.date_time == (2023, 6, 19, 0, 0, 0)
        # kit's entries: files rwxr-xr-x and deflated, folders with their
        # type bit and stored
        if info.is_dir():
            assert info.external_attr >> 16 == 0o40755, info
            assert info.compress_type == zipfile.ZIP_STORED, info
        else:
            assert info.external_attr >> 16 == 0o100755, info
            assert info.compress_type == zipfile.ZIP_DEFLATED, info
    if name == "chat":  # its UI's folders
        assert "ui/" in names and "ui/js/" in names


def test_every_process_of_the_tree_is_a_component():
    # every package the native build makes (examples, test packages,
    # benchmarks) is built for wasm32 too, from the same sources
    native = os.environ.get("HYPERC_PACKAGES", "build/packages")
    if not os.path.isdir(native) or os.path.samefile(native, WASM_PACKAGES):
        pytest.skip("needs the native build's packages (HYPERC_PACKAGES)")
    have = set(os.listdir(WASM_PACKAGES))
    missing = set(os.listdir(native)) - NATIVE_ONLY - have
    assert not missing, f"not built for wasm32: {sorted(missing)}"
    for name in sorted(set(os.listdir(native)) - NATIVE_ONLY):
        manifest = json.loads(open(os.path.join(
            WASM_PACKAGES, name, "pkg", "manifest.json")).read())
        native_manifest = json.loads(open(os.path.join(
            native, name, "pkg", "manifest.json")).read())
        assert sorted(e["process_name"] for e in manifest) == \
            sorted(e["process_name"] for e in native_manifest), name


def test_every_component_imports_only_what_the_docs_say(tmp_path):
    # each component of the wasm32 build, read by jco: Hyperware's
    # interface, and of WASI 0.2.0 only the clocks, the random source and
    # (a process that sleeps) the pollable
    files = [os.path.join(WASM_PACKAGES, name, "pkg", f)
             for name in sorted(os.listdir(WASM_PACKAGES))
             for f in sorted(os.listdir(os.path.join(WASM_PACKAGES, name,
                                                     "pkg")))
             if f.endswith(".wasm")]
    assert len(files) >= 20, files
    r = inspect(*files)  # one run of jco for all
    assert r.returncode == 0, r.stderr
    worlds = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(worlds) == len(files)
    for f, world in zip(files, worlds):
        assert set(world["imports"]) <= ALLOWED_IMPORTS | SLEEP_IMPORTS, \
            (f, world)
        assert "hyperware:process/standard@1.0.0" in world["imports"], f
        assert world["exports"] == ["init: func(our: string)"], f


def semver(v):
    m = re.fullmatch(r"(\d+)\.(\d+)\.(\d+)", v)
    assert m, f"not a version: {v!r}"
    return tuple(int(x) for x in m.groups())


def kit_reads_metadata(path):
    """metadata.json as `kit start-package` reads it (kit's Erc721Metadata,
    then read_and_update_metadata): the required properties, and
    code_hashes listing current_version as its newest version (kit refuses
    a package whose code_hashes lists none)."""
    meta = json.loads(open(path).read())
    props = meta["properties"]
    for k in ("package_name", "publisher", "current_version"):
        assert isinstance(props[k], str), (path, k)
    assert isinstance(props["mirrors"], list), path
    hashes = props["code_hashes"]
    assert isinstance(hashes, dict) and all(
        isinstance(v, str) for v in hashes.values()), path
    assert hashes, f"{path}: code_hashes lists no version: kit refuses it"
    assert max(semver(v) for v in hashes) == semver(props["current_version"])
    return props


@pytest.mark.parametrize("name", ["counter", "async-app", "chat", "hello"])
def test_kit_start_package_takes_the_built_package(tmp_path, name):
    # what `kit start-package DIR` reads from DIR before it sends the zip to
    # the node's app store (NewPackage, then Install with the metadata):
    # metadata.json, pkg/manifest.json with each process's component in
    # pkg/ (names of a-z, 0-9 and -), and target/<package>:<publisher>.zip
    pkg = tmp_path / name
    shutil.copytree(os.path.join(WASM_PACKAGES, name), pkg)
    said = package(str(pkg), None)
    props = kit_reads_metadata(pkg / "metadata.json")
    zip_path = pkg / "target" / \
        f"{props['package_name']}:{props['publisher']}.zip"
    assert said.splitlines()[0] == str(zip_path) and zip_path.exists()
    safe = re.compile(r"[a-z0-9-]+")
    for e in json.loads((pkg / "pkg" / "manifest.json").read_text()):
        assert safe.fullmatch(e["process_name"]), e
        wasm = e["process_wasm_path"]
        assert wasm.startswith("/") and wasm.endswith(".wasm"), e
        assert safe.fullmatch(wasm[1:-5]), e
        assert (pkg / "pkg" / wasm[1:]).exists(), e


def test_names_kit_refuses_are_warned_about(tmp_path):
    # statebench's components store_every.wasm and store_never.wasm: the
    # node installs them, `kit start-package` would refuse their file names
    # (a-z, 0-9 and - only)
    r = subprocess.run([BIN, "package", "-o", str(tmp_path / "s.zip"),
                        os.path.join(WASM_PACKAGES, "statebench")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    warned = [l for l in r.stderr.splitlines() if "warning" in l]
    assert len(warned) == 2, r.stderr
    assert "process store-every (/store_every.wasm): kit start-package " \
        "takes only names of a-z, 0-9 and '-'" in warned[0]
    r = subprocess.run([BIN, "package", "-o", str(tmp_path / "c.zip"),
                        os.path.join(WASM_PACKAGES, "async-app")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stderr == "", r.stderr


def test_new_package_metadata_is_what_kit_reads(tmp_path):
    r = subprocess.run([BIN, "new", "--dir", str(tmp_path), "fresh-app"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    kit_reads_metadata(tmp_path / "fresh-app" / "metadata.json")


FOPEN_PROCESS = """#include <hyperc/abi.h>
#include <stdio.h>
void hw_init(const char *our)
{
    FILE *f = fopen(our, "r");
    if (f)
        fclose(f);
}
"""


def test_a_process_needing_files_does_not_build(tmp_path):
    # wasi-libc's fopen would import WASI preview 1 functions no component
    # of ours may import: the build stops, naming them (docs/wasm.md)
    d = tmp_path / "fop"
    (d / "pkg").mkdir(parents=True)
    (d / "fop.c").write_text(FOPEN_PROCESS)
    (d / "CMakeLists.txt").write_text(
        "cmake_minimum_required(VERSION 3.25)\nproject(fop C)\n"
        "find_package(hyperc 0.1 REQUIRED)\n"
        "hyperc_add_process(fop fop.c)\n"
        "hyperc_add_package(fop SOURCE_DIR ${CMAKE_CURRENT_SOURCE_DIR} "
        "PROCESSES fop)\n")
    shutil.copy(os.path.join(WASM_PACKAGES, "hello", "metadata.json"), d)
    (d / "pkg" / "manifest.json").write_text(json.dumps([{
        "process_name": "fop", "process_wasm_path": "/fop.so",
        "on_exit": "None", "request_networking": False,
        "request_capabilities": [], "grant_capabilities": [],
        "public": True}]))
    r = subprocess.run([BIN, "build", "--target", "wasm32", str(d)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode != 0
    out = r.stdout + r.stderr
    assert "wasi_snapshot_preview1 path_open" in out, out[-2000:]
    assert "a component may import only hyperware:process/standard@1.0.0" \
        in out, out[-2000:]
    assert not (d / "build-wasm32" / "fop.wasm").exists()


def test_zip_order_is_kits(tmp_path):
    # a folder sorts before the names that extend its own ("ui-x.js",
    # "ui.txt"), as kit's path order has it, not as a byte order would
    pkg = tmp_path / "hello"
    shutil.copytree(os.path.join(WASM_PACKAGES, "hello"), pkg)
    (pkg / "pkg" / "ui" / "a").mkdir(parents=True)
    for f in ("ui/index.html", "ui/a/b.js", "ui-x.js", "ui.txt", "u.js"):
        (pkg / "pkg" / f).write_text(f)
    out = tmp_path / "hello.zip"
    package(str(pkg), out)
    names = zipfile.ZipFile(out).namelist()
    assert names == sorted(names, key=kit_order)
    assert names.index("ui/a/b.js") < names.index("ui-x.js") \
        < names.index("ui.txt")


def test_package_is_deterministic(tmp_path):
    pkg = os.path.join(WASM_PACKAGES, "counter")
    package(pkg, tmp_path / "a.zip")
    package(pkg, tmp_path / "b.zip")
    assert (tmp_path / "a.zip").read_bytes() == (tmp_path / "b.zip").read_bytes()


def test_native_package_is_refused(tmp_path):
    native = os.path.join(os.environ.get("HYPERC_PACKAGES", "build/packages"),
                          "counter")
    r = subprocess.run([BIN, "package", "-o", str(tmp_path / "x.zip"), native],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 1
    assert "is not a component (build with --target wasm32)" in r.stderr
    assert not (tmp_path / "x.zip").exists()


def test_inspect_refuses_what_is_not_a_component(tmp_path):
    bad = tmp_path / "bad.wasm"
    bad.write_bytes(b"\0asm\x01\0\0\0")  # a core module, empty
    r = inspect(bad)
    assert r.returncode == 1 and "inspect:" in r.stderr
