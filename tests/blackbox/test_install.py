"""cmake --install puts the CLI, headers, the guest runtime, a CMake package
and a pkg-config file in place: an app outside the tree builds with
find_package(hyperc) and runs on the installed hyperc."""
import os
import re
import subprocess

from conftest import BIN, Node

HERE = os.path.dirname(os.path.abspath(__file__))
APP = os.path.join(HERE, "..", "install", "app")


def cache(build, key):
    with open(os.path.join(build, "CMakeCache.txt")) as f:
        for line in f:
            m = re.match(rf"{key}:[A-Z]+=(.*)", line)
            if m:
                return m.group(1)
    return ""


def run(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600, **kw)
    assert r.returncode == 0, (cmd, r.stdout[-3000:], r.stderr[-3000:])
    return r


def test_app_outside_the_tree_builds_and_runs(tmp_path):
    build = os.path.dirname(os.path.abspath(BIN))
    prefix = tmp_path / "prefix"
    run(["cmake", "--install", build, "--prefix", str(prefix)])
    for f in ("bin/hyperc", "include/hyperc/hyperprocess.h",
              "include/hyperc/runtime.h", "lib/libhyperc_guest.a",
              "lib/cmake/hyperc/hypercConfig.cmake",
              "lib/pkgconfig/hyperc.pc"):
        assert (prefix / f).exists(), f
    # the app is built with the same compiler and sanitizer flags as the
    # installed runtime (an ASan runtime needs an ASan app)
    cc = cache(build, "CMAKE_C_COMPILER")
    flags = ""
    if cache(build, "HYPERC_SANITIZE") == "ON":
        flags = "-fsanitize=address,undefined -fno-sanitize-recover=all"
    elif cache(build, "HYPERC_TSAN") == "ON":
        flags = "-fsanitize=thread"
    app_build = tmp_path / "app-build"
    run(["cmake", "-S", APP, "-B", str(app_build),
         f"-DCMAKE_PREFIX_PATH={prefix}", f"-DCMAKE_C_COMPILER={cc}",
         f"-DCMAKE_C_FLAGS={flags}", f"-DCMAKE_MODULE_LINKER_FLAGS={flags}"])
    run(["cmake", "--build", str(app_build), "-j2"])
    pkg = app_build / "packages" / "outside"
    assert (pkg / "pkg" / "tally.so").exists()
    # the installed CLI's generator found the installed headers
    installed = str(prefix / "bin" / "hyperc")
    assert "--check" in run([installed, "gen", "--help"]).stdout
    run([installed, "gen", "--check", os.path.join(APP, "tally.c")],
        cwd=str(tmp_path))
    # pkg-config answers for the installed runtime
    env = dict(os.environ, PKG_CONFIG_PATH=str(prefix / "lib" / "pkgconfig"))
    out = run(["pkg-config", "--cflags", "--libs", "hyperc"], env=env).stdout
    incs = [os.path.realpath(w[2:]) for w in out.split() if w.startswith("-I")]
    assert os.path.realpath(prefix / "include") in incs, out
    assert "-lhyperc_entry" in out
    # the developer's path with the installed command alone
    r = run([installed, "new", "--dir", str(tmp_path / "apps"), "fresh"])
    r = run([installed, "test", str(tmp_path / "apps" / "fresh")])
    assert "PASS basic.sh" in r.stdout and "1 passed, 0 failed" in r.stdout
    cfg = cache(str(tmp_path / "apps" / "fresh" / "build"), "hyperc_DIR")
    assert os.path.realpath(cfg).startswith(os.path.realpath(prefix)), cfg
    # the wasm32 target from the installation alone (when this build has it):
    # the installed toolchain file, guest runtime and wasm host
    if os.path.exists(os.path.join(build, "wasm32", "libhyperc_guest.a")):
        env = dict(os.environ, HYPERC_WASM_HOST="")  # found beside the command
        r = run([installed, "test", "--target", "wasm32",
                 str(tmp_path / "apps" / "fresh")], env=env)
        assert "PASS basic.sh" in r.stdout and "1 passed, 0 failed" in r.stdout
        wasm = tmp_path / "apps" / "fresh" / "build-wasm32" / "packages" / "fresh"
        assert (wasm / "pkg" / "fresh.wasm").exists()
        cfg = cache(str(tmp_path / "apps" / "fresh" / "build-wasm32"), "hyperc_DIR")
        assert os.path.realpath(cfg).startswith(os.path.realpath(prefix)), cfg
    # and the app runs on the installed node
    home = tmp_path / "home"
    n = Node(home, packages=(), extra=(str(pkg),), bin=installed)
    n.start()
    try:
        assert n.ask("tally:outside:test.os", '{"Add": 5}') == "5"
        assert n.ask("tally:outside:test.os", '{"Add": 2}') == "7"
    finally:
        n.stop()
