"""The developer's path: `hyperc new` writes a package that builds and
passes its test at once; `hyperc build` builds it; `hyperc test` runs each
test script against a node of its own and reports per test."""
import os
import re
import shutil
import subprocess
import time

from conftest import BIN


def hyperc(*args, **kw):
    return subprocess.run([BIN, *args], capture_output=True, text=True,
                          timeout=600, **kw)


def still_running(mark):
    """The processes alive with HYPERC_TEST_MARK=mark in their environment:
    those that commands run with it left behind (not the nodes of other
    `hyperc test` runs on this machine)."""
    want = f"HYPERC_TEST_MARK={mark}".encode()
    found = []
    for p in os.listdir("/proc"):
        try:
            with open(f"/proc/{p}/environ", "rb") as f:
                if want in f.read().split(b"\0"):
                    found.append(p)
        except (OSError, ValueError):
            continue
    return found


def test_help_on_every_command():
    for cmd in ("new", "build", "test", "run", "inject", "gen", "ps",
                "verbosity", "watch", "install"):
        r = hyperc(cmd, "--help")
        assert r.returncode == 0 and "usage: hyperc " + cmd in r.stdout, cmd


def test_new_build_test(tmp_path):
    r = hyperc("new", "--dir", str(tmp_path), "tally-board")
    assert r.returncode == 0, r.stderr
    root = tmp_path / "tally-board"
    for f in ("CMakeLists.txt", "metadata.json", "pkg/manifest.json",
              "tally_board.c", "pkg/ui/index.html", "test/basic.sh"):
        assert (root / f).exists(), f
    # an existing folder is not overwritten
    assert hyperc("new", "--dir", str(tmp_path), "tally-board").returncode == 1
    r = hyperc("build", str(root))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "[1/2] configure" in r.stdout and "[2/2] build" in r.stdout
    assert (root / "build/packages/tally-board/pkg/tally-board.so").exists()
    mark = f"dev-cli-{os.getpid()}-{time.monotonic_ns()}"
    env = dict(os.environ, HYPERC_TEST_MARK=mark)
    r = hyperc("test", str(root), env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "PASS basic.sh" in r.stdout and "1 passed, 0 failed" in r.stdout
    # a failing test is reported, and the others still run on their nodes
    (root / "test" / "broken.sh").write_text("echo nope; exit 3\n")
    r = hyperc("test", str(root), env=env)
    assert r.returncode == 1
    assert "PASS basic.sh" in r.stdout and "FAIL broken.sh" in r.stdout
    assert "1 passed, 1 failed" in r.stdout
    # the failed test's node output is kept, and named; then removed here
    kept = re.search(r"node output: (/tmp/hyperc-test-\w+)/node\*\.out",
                     r.stdout)
    assert kept and os.path.exists(kept.group(1) + "/node1.out"), r.stdout
    shutil.rmtree(kept.group(1))
    # nothing it started is left running (its nodes inherit its
    # environment)
    assert not still_running(mark)


def test_build_reports_compiler_errors(tmp_path):
    assert hyperc("new", "--dir", str(tmp_path), "oops").returncode == 0
    src = tmp_path / "oops" / "oops.c"
    src.write_text(src.read_text().replace("return s->count += by;",
                                           "return s->nope;"))
    r = hyperc("build", str(tmp_path / "oops"))
    assert r.returncode == 1
    assert "oops.c:" in r.stdout + r.stderr and "nope" in r.stdout + r.stderr


def test_new_makes_its_folder(tmp_path):
    r = hyperc("new", "--dir", str(tmp_path / "a" / "b"), "deep")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "a/b/deep/deep.c").exists()


def test_bad_names():
    r = hyperc("new", "Bad_Name")
    assert r.returncode == 2 and "lowercase words joined by '-'" in r.stderr


MULTI = r"""#!/bin/sh
# hyperc-test: nodes=3
set -e
[ "$HYPERC_NODES" = 3 ] || { echo "HYPERC_NODES=$HYPERC_NODES"; exit 1; }
[ "$HYPERC_NODE_2" = test2.os ] || { echo "node 2 is $HYPERC_NODE_2"; exit 1; }
[ "$HYPERC_HOME" = "$HYPERC_HOME_1" ] && [ "$HYPERC_PORT" = "$HYPERC_PORT_1" ]
a=apple:apple:hyperc.os
b=bee:bee:hyperc.os
for i in 1 2 3; do
  eval home=\$HYPERC_HOME_$i port=\$HYPERC_PORT_$i
  # every node has the package and its dependency, each its own state
  out=$("$HYPERC" inject --home "$home" $a "{\"Increment\": $i}")
  [ "$out" = $i ] || { echo "node $i apple: $out"; exit 1; }
  out=$("$HYPERC" inject --home "$home" $b "{\"Increment\": $((i * 10))}")
  [ "$out" = $((i * 10)) ] || { echo "node $i bee: $out"; exit 1; }
  src=$("$HYPERC" inject --json --home "$home" $b '"GetCount"')
  case $src in *"\"source\":\"$(eval echo \$HYPERC_NODE_$i)@$b\""*) ;;
    *) echo "node $i answered as: $src"; exit 1;; esac
done
# the nodes know each other: node 3 asks node 1's bee (a remote handler)
out=$("$HYPERC" inject --home "$HYPERC_HOME_3" --node "$HYPERC_NODE_1" $b '"GetCount"')
[ "$out" = 10 ] || { echo "node 1's bee asked from node 3: $out"; exit 1; }
out=$("$HYPERC" inject --home "$HYPERC_HOME_1" --node "$HYPERC_NODE_2" $b '"GetCount"')
[ "$out" = 20 ] || { echo "node 2's bee asked from node 1: $out"; exit 1; }
# killing one node does not disturb the others
kill -9 "$HYPERC_PID_2"
sleep 1  # (a zombie until hyperc test reaps it: kill -0 cannot tell)
for i in 1 3; do
  eval home=\$HYPERC_HOME_$i port=\$HYPERC_PORT_$i
  out=$("$HYPERC" inject --home "$home" $a '{"Increment": 100}')
  [ "$out" = $((i + 100)) ] || { echo "node $i after the kill: $out"; exit 1; }
  out=$(curl -s http://127.0.0.1:$port/$b/api/count)
  [ "$out" = $((i * 10)) ] || { echo "node $i bee over HTTP: $out"; exit 1; }
done
"$HYPERC" ps --home "$HYPERC_HOME_2" >/dev/null 2>&1 && { echo "node 2 answers"; exit 1; }
# ... and asking it from another node now fails (its connection is gone)
"$HYPERC" inject --home "$HYPERC_HOME_1" --node "$HYPERC_NODE_2" -t 3 $b '"GetCount"' \
  >/dev/null 2>&1 && { echo "node 2 answered over the network"; exit 1; }
exit 0
"""


def test_multi_node_with_dependencies(tmp_path):
    for name in ("apple", "bee"):
        assert hyperc("new", "--dir", str(tmp_path), name).returncode == 0
    apple = tmp_path / "apple"
    meta = apple / "metadata.json"
    meta.write_text(meta.read_text().replace(
        '"dependencies": []', '"dependencies": ["bee:hyperc.os"]'))
    (apple / "test" / "multi.sh").write_text(MULTI)
    # without the dependency's folder: said, and nothing runs
    r = hyperc("test", str(apple))
    assert r.returncode == 1
    assert "depends on bee:hyperc.os, which none of the dependency" in \
        r.stderr
    assert "PASS" not in r.stdout
    (apple / "test" / "dependencies").write_text("# the package we call\n"
                                                 "../bee\n")
    r = hyperc("test", str(apple))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "PASS basic.sh" in r.stdout and "PASS multi.sh" in r.stdout
    assert "2 passed, 0 failed" in r.stdout
    # the same through --dep, the built package folder
    (apple / "test" / "dependencies").unlink()
    mark = f"dev-cli-multi-{os.getpid()}-{time.monotonic_ns()}"
    r = hyperc("test", "--dep", str(tmp_path / "bee/build/packages/bee"),
               str(apple), env=dict(os.environ, HYPERC_TEST_MARK=mark))
    assert r.returncode == 0, r.stdout + r.stderr
    assert not still_running(mark)
    # a nonsense node count is a failure that says why
    (apple / "test" / "multi.sh").write_text("# hyperc-test: nodes=99\n")
    r = hyperc("test", "--dep", str(tmp_path / "bee"), str(apple))
    assert r.returncode == 1 and "FAIL multi.sh (bad `# hyperc-test" in \
        r.stdout


def test_build_writes_kit_outputs_and_stubs_need_no_setup(tmp_path):
    """kit b --hyperapp's workflow: every `hyperc build` writes api/*.wit
    and target/ui/caller-utils.ts into the package's folder, and a process
    calling another of its package only includes its stubs' header (no
    hyperc_add_caller_utils, no -I); `hyperc gen` then finds the header
    without -I too."""
    assert hyperc("new", "--dir", str(tmp_path), "tally-board").returncode == 0
    root = tmp_path / "tally-board"
    (root / "asker.c").write_text("""#include <hyperc/hyperprocess.h>
#include "tally_board_caller_utils.h"

typedef struct asker_state { uint64_t asked; } asker_state;
HYPERPROCESS(asker_state, .name = "asker", .endpoints = HP_NO_ENDPOINTS,
             .save_config = HP_SAVE_NEVER, .wit_world = "tally-board-v0");

/* a file-scope use of the other process's types */
static tally_board_increment_result last;

HP_LOCAL static uint64_t ask(asker_state *s, uint64_t by)
{
    hw_address to = {.node = hp_our()->node,
                     .process = {"tally-board", "tally-board", "hyperc.os"}};
    last = increment_local_rpc(&to, by);
    s->asked++;
    return last.err.kind == HP_RPC_OK ? last.value : 0;
}
""")
    cm = (root / "CMakeLists.txt").read_text()
    cm = cm.replace("hyperc_add_package(",
                    "hyperc_add_process(asker HYPERPROCESS asker.c)\n"
                    "hyperc_add_package(")
    cm = cm.replace("PROCESSES tally-board)", "PROCESSES tally-board asker)")
    (root / "CMakeLists.txt").write_text(cm)
    r = hyperc("build", str(root))
    assert r.returncode == 0, r.stdout + r.stderr
    api = sorted(os.listdir(root / "api"))
    assert api == ["asker.wit", "tally-board-v0.wit", "tally-board.wit",
                   "types-tally-board-v0.wit"], api
    world = (root / "api" / "tally-board-v0.wit").read_text()
    assert "    import tally-board;\n    import asker;\n" in world, world
    ts = (root / "target" / "ui" / "caller-utils.ts").read_text()
    assert ts.startswith("// Generated by hyperc build from api/; do not "
                         "edit.\n")
    assert "export namespace TallyBoard {" in ts
    assert "export async function increment(by: number): Promise<number>" \
        in ts, ts
    # rewritten only when changed: a second build leaves the files alone
    before = os.stat(root / "target" / "ui" / "caller-utils.ts").st_mtime_ns
    time.sleep(0.05)
    r = hyperc("build", str(root))
    assert r.returncode == 0, r.stdout + r.stderr
    assert os.stat(root / "target" / "ui" /
                   "caller-utils.ts").st_mtime_ns == before
    # and runs no generator, nothing having changed (a rule whose output
    # was left alone would run at every build)
    assert "hyperc gen" not in r.stdout, r.stdout
    # a change to a process runs its generators once each, and a build
    # after it none
    time.sleep(0.05)
    os.utime(root / "tally_board.c")
    r = hyperc("build", str(root))
    assert r.returncode == 0, r.stdout + r.stderr
    gens = [l for l in r.stdout.splitlines() if "hyperc gen" in l]
    assert len(gens) == len(set(l.split("] ", 1)[1] for l in gens)) == 2, \
        r.stdout
    r = hyperc("build", str(root))
    assert "hyperc gen" not in r.stdout, r.stdout
    # the stubs' header is found without -I
    r = hyperc("gen", "--check", str(root / "asker.c"))
    assert r.returncode == 0, r.stderr
    r = hyperc("gen", "--model", str(root / "asker.c"))
    assert r.returncode == 0 and r.stderr == "", r.stderr
