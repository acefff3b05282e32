"""hyperc gen's front end: the model of a good source, and every rule
violation of a bad one reported in one run, in compiler style."""
import json
import os
import re
import subprocess

from conftest import BIN

HERE = os.path.dirname(os.path.abspath(__file__))
GEN = os.path.join(HERE, "..", "gen")
INCLUDE = os.path.join(HERE, "..", "..", "include")


def gen(*args):
    return subprocess.run([BIN, "gen", *args], capture_output=True, text=True,
                          timeout=60)


def test_counter_model():
    r = gen("--model", os.path.join(GEN, "counter.c"))
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    m = json.loads(r.stdout)
    assert m["state"] == "my_process_state"
    p = m["process"]
    assert p["name"] == "My Process"
    assert p["wit_world"] == "my-process-dot-os-v0"
    assert p["save_config"] == {"kind": "EveryNMessage", "n": 5}
    # omitted binding fields take Rust's default(): authenticated true
    assert p["endpoints"] == [
        {"kind": "Http", "path": "/api",
         "config": {"authenticated": False, "local_only": False,
                    "secure_subdomain": False, "static_content": None}},
        {"kind": "Ws", "path": "/ws",
         "config": {"authenticated": True, "secure_subdomain": False,
                    "extension": False}}]
    hs = {h["name"]: h for h in m["handlers"]}
    assert hs["initialize"]["kinds"] == ["init"]
    assert hs["handle_http_request"]["kinds"] == ["http", "local"]
    assert hs["handle_http_request"]["variant"] == "HandleHttpRequest"
    assert [q["type"] for q in hs["handle_http_request"]["params"]] == \
        ["my_process_state *", "const char *"]
    assert hs["get_count"]["method"] == "GET"
    assert hs["get_count"]["path"] == "/count"
    assert hs["get_count"]["kinds"] == ["http", "local", "remote"]
    assert hs["on_ws"]["kinds"] == ["ws"]


def test_bad_source_reports_everything_in_one_run():
    r = gen("--check", os.path.join(GEN, "bad.c"))
    assert r.returncode == 1
    lines = r.stderr.splitlines()
    expected = [
        (10, "missing required parameter 'name'"),
        (11, "parameter 'icon' must be a string literal"),
        (12, "duplicate endpoint path '/api'"),
        (12, "endpoint path 'nope' must be a string starting with '/'"),
        (15, "EveryNSeconds needs n > 0"),
        (16, "wit_world 'Bad World' is not a WIT identifier"),
        (19, "init handler 'init_a' must be 'void init_a(st *state)'"),
        (22, "a second init handler ('init_b')"),
        (25, "request handler 'nothing_back' returns void"),
        (28, "the first parameter of 'wrong_first' must be the state"),
        (34, "'get_x' and 'Get_x' both map to variant 'GetX'"),
        (37, "handler name 'fetch2' contains a digit"),
        (40, "handler name 'upstream_data' contains 'stream'"),
        (43, "ws handler 'ws_bad' must be 'void ws_bad(st *state, uint32_t"),
        (46, "unknown HTTP method 'FETCH'"),
        (52, "'dup_a' and 'dup_b' are both routed to GET /dup"),
        (55, "'mixed': init, ws and ws_client handlers cannot be combined"),
        (57, "must not define hw_init"),
        (34, "handler name 'Get_x' gives the WIT name 'Get-x', which is not"),
        (60, "handler name '_hidden' gives the WIT name '-hidden'"),
    ]
    for line, text in expected:
        pat = re.compile(rf".*bad\.c:{line}:\d+: error: .*{re.escape(text)}")
        assert any(pat.match(l) for l in lines), (line, text, r.stderr)
    assert lines[-1] == f"{len([l for l in lines if ': error: ' in l])} errors generated."
    # sorted by position
    pos = [tuple(map(int, l.split(":")[1:3])) for l in lines if ": error: " in l]
    assert pos == sorted(pos)


def test_no_process_and_no_handlers():
    r = gen("--check", os.path.join(GEN, "none.c"))
    assert r.returncode == 1
    assert "no HYPERPROCESS(State, ...) in this file" in r.stderr
    assert "needs at least one http, local or remote handler" in r.stderr


def test_usage_errors():
    assert gen("--help").returncode == 0
    r = gen(os.path.join(GEN, "counter.c"))
    assert r.returncode == 2 and "usage: hyperc gen" in r.stderr
    r = gen("--check", os.path.join(GEN, "missing.c"))
    assert r.returncode == 1 and "missing.c" in r.stderr


def test_marked_source_compiles_with_gcc_and_clang():
    for cc in ("gcc", "clang"):
        r = subprocess.run(
            [cc, "-std=c11", "-Wall", "-Wextra", "-Werror", "-Wshadow",
             "-Wstrict-prototypes", "-fsyntax-only", "-I", INCLUDE,
             os.path.join(GEN, "counter.c")],
            capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, (cc, r.stderr)


def test_type_model():
    r = gen("--model", os.path.join(GEN, "types.c"))
    m = json.loads(r.stdout)
    types = m["types"]

    def t(i):
        return types[i]

    state = t(m["state_wire"])
    assert state["kind"] == "record" and state["name"] == "everything"
    kinds = {f["name"]: t(f["type"])["kind"] for f in state["fields"]}
    assert kinds == {
        "flag": "bool", "a": "s8", "b": "u16", "c": "s64", "d": "u64",
        "e": "f32", "f": "f64", "name": "string", "raw": "bytes",
        "who": "address", "col": "enum", "m": "enum", "p": "record",
        "points": "list", "nick": "option", "scores": "map", "two": "tuple"}
    f = {x["name"]: t(x["type"]) for x in state["fields"]}
    assert [v["wire"] for v in f["col"]["variants"]] == ["Red", "DarkBlue"]
    assert [v["wire"] for v in f["m"]["variants"]] == ["Happy", "Sad"]
    assert t(f["points"]["elem"])["name"] == "point"
    assert t(f["nick"]["elem"])["kind"] == "string"
    assert t(f["scores"]["value"])["kind"] == "s16"
    assert [t(i)["kind"] for i in f["two"]["items"]] == ["bool", "f32"]
    hs = {h["name"]: h for h in m["handlers"]}
    take = hs["take"]
    res = t(take["returns_wire"])
    assert res["kind"] == "result"
    assert (t(res["ok"])["kind"], t(res["err"])["kind"]) == ("u64", "string")
    # const point * is carried as a point
    assert [t(p["wire"])["kind"] for p in take["params"][1:]] == \
        ["record", "list", "enum"]
    assert t(t(hs["nothing"]["returns_wire"])["ok"])["kind"] == "unit"


def test_unsupported_types_are_named_with_their_path():
    r = gen("--check", os.path.join(GEN, "types.c"))
    assert r.returncode == 1
    for text in [
        "'long' has another width on wasm32: use int64_t or uint64_t "
        "(field 'l' of 'bad_fields', parameter 'b' of 'nothing')",
        "'size_t' has another width on wasm32",
        "plain 'char' is not a number type here",
        "'int[4]' is a C array; use HP_LIST",
        "field 'bits' of 'bad_fields' is a bit-field",
        "enum 'dup': 'DUP_A' and 'DUP_B' have the same value",
        "'void *': the only pointers carried are strings",
        "'struct node_t *': the only pointers carried are strings",
    ]:
        assert text in r.stderr.replace(
            " (or int32_t/uint32_t)", ""), (text, r.stderr)
    assert "8 errors generated." in r.stderr


def test_wit_files_match_kit_format_and_are_deterministic(tmp_path):
    golden = os.path.join(GEN, "golden")
    for run in ("a", "b"):
        out = tmp_path / run
        out.mkdir()
        r = gen("--kit-exact", "--wit", str(out), os.path.join(GEN, "tasks.c"))
        assert r.returncode == 0, r.stderr
        wits = [n for n in os.listdir(golden) if n.endswith(".wit")]
        assert sorted(os.listdir(out)) == sorted(wits)
        for name in wits:
            with open(os.path.join(golden, name), "rb") as g, \
                    open(out / name, "rb") as o:
                assert o.read() == g.read(), name


def test_wit_creates_its_directory(tmp_path):
    r = gen("--wit", str(tmp_path / "api"), os.path.join(GEN, "tasks.c"))
    assert r.returncode == 0, r.stderr
    assert sorted(os.listdir(tmp_path / "api")) == [
        "tasks-dot-os-v0.wit", "tasks.wit", "types-tasks-dot-os-v0.wit"]


def test_wit_defines_only_types_the_signatures_reach(tmp_path):
    """kit defines the types the handlers' signatures name and the types
    those name, nothing else: `entry`, reached only from the state, stays
    out although its name is a substring of `stats`'s field `entry-count`
    (kit's order looks for such substrings, but only among the collected
    types)."""
    src = tmp_path / "journal.c"
    src.write_text("""#include <hyperc/hyperprocess.h>
typedef struct entry { char *text; } entry;
typedef HP_LIST(entry) entry_list;
typedef struct item { uint8_t x; } item;
typedef struct stats { uint64_t entry_count; item top; } stats;
typedef struct journal_state { entry_list entries; } journal_state;
HYPERPROCESS(journal_state, .name = "journal", .endpoints = HP_NO_ENDPOINTS,
             .save_config = HP_SAVE_NEVER, .wit_world = "journal-v0");
HP_LOCAL static stats get_stats(journal_state *s)
{
    stats r = {.entry_count = s->entries.len};
    return r;
}
""")
    r = gen("--kit-exact", "--wit", str(tmp_path / "api"), str(src))
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "api" / "journal.wit").read_text() == """\
interface journal {
use standard.{address};

    record stats {
        entry-count: u64,
        top: item
    }

    record item {
        x: u8
    }

    // Function signature for: get-stats (local)
    // args: none
    // json fmt: {"GetStats": null}
    record get-stats-signature-local {
        target: address,
        returning: stats
    }
}
"""


def test_wit_value_names_the_type_called_value(tmp_path):
    """kit spells serde_json::Value `value` and looks that name up like any
    type: a type called `value` that the process uses (here in its state)
    is defined, and the WIT stays whole; kit's inferred
    `type value = string;` comes only when there is none."""
    src = tmp_path / "vv.c"
    head = """#include <hyperc/hyperprocess.h>
typedef struct value { uint8_t x; } value;
typedef struct vv_state { %s } vv_state;
HYPERPROCESS(vv_state, .name = "vv", .endpoints = HP_NO_ENDPOINTS,
             .save_config = HP_SAVE_NEVER, .wit_world = "vv-v0");
HP_LOCAL static uint8_t f(vv_state *s, hp_json j) { (void)s; (void)j; return 1; }
"""
    sig = """
    // Function signature for: f (local)
    // args: (j: value)
    // json fmt: {"F": j}
    record f-signature-local {
        target: address,
        arg-types: tuple<value>,
        returning: u8
    }
}
"""
    src.write_text(head % "value v;")
    r = gen("--kit-exact", "--wit", str(tmp_path / "api"), str(src))
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "api" / "vv.wit").read_text() == (
        "interface vv {\nuse standard.{address};\n\n"
        "    record value {\n        x: u8\n    }\n" + sig)
    src.write_text((head % "uint8_t v;").replace(
        "typedef struct value { uint8_t x; } value;\n", ""))
    r = gen("--kit-exact", "--wit", str(tmp_path / "api"), str(src))
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "api" / "vv.wit").read_text() == (
        "interface vv {\nuse standard.{address};\n\n"
        "    // Arbitrary JSON value; encoded as string for WIT 1.0 (TS: "
        "unknown, Rust: serde_json::Value)\n    type value = string;\n" + sig)


def test_names_that_are_not_wit_identifiers_are_errors(tmp_path):
    """A parameter, field, type or case name that a signature carries must
    give a WIT identifier (kit would write `x-1` or `My-Pt`, which no WIT
    reader takes); digits inside a word are fine, and the state's own
    types never reach WIT."""
    src = tmp_path / "names.c"
    src.write_text("""#include <hyperc/hyperprocess.h>
typedef struct My_Pt { uint8_t x_1; uint8_t by_i32; } My_Pt;
typedef enum col { COL_RED, COL_LIGHT_Blue HP_NAME("Light_Blue") } col;
typedef struct names_state { uint8_t Odd_Name; } names_state;
HYPERPROCESS(names_state, .name = "n", .endpoints = HP_NO_ENDPOINTS,
             .save_config = HP_SAVE_NEVER, .wit_world = "n-v0");
HP_LOCAL static uint8_t f(names_state *s, My_Pt p, col c, uint8_t arg_2)
{
    (void)p; (void)c; (void)arg_2;
    return s->Odd_Name;
}
""")
    r = gen("--check", str(src))
    assert r.returncode == 1
    hint = ("which is not a WIT identifier (use snake_case: lower-case "
            "words, each starting with a letter")
    errs = sorted(line.split(" error: ", 1)[1]
                  for line in r.stderr.splitlines() if " error: " in line)
    assert errs == [
        "case 'Light_Blue' of 'col' gives the WIT name 'Light-Blue', " +
        hint + '; or HP_NAME("..."))',
        "field 'x_1' of 'My_Pt' gives the WIT name 'x-1', " + hint + ")",
        "parameter 'arg_2' of 'f' gives the WIT name 'arg-2', " + hint + ")",
        "type 'My_Pt' gives the WIT name 'My-Pt', " + hint + ")",
    ], r.stderr


def test_wit_not_written_when_there_are_errors(tmp_path):
    r = gen("--wit", str(tmp_path), os.path.join(GEN, "bad.c"))
    assert r.returncode == 1
    assert os.listdir(tmp_path) == []


def test_codecs_are_deterministic_and_marked(tmp_path):
    outs = []
    for run in ("a", "b"):
        path = tmp_path / f"{run}.c"
        r = gen("--codecs", str(path), os.path.join(GEN, "codec_types.c"))
        assert r.returncode == 0, r.stderr
        outs.append(path.read_bytes())
    assert outs[0] == outs[1]
    assert outs[0].startswith(
        b"/* Generated by hyperc gen from codec_types.c; do not edit. */\n")


def test_process_depfile_lists_every_input(tmp_path):
    out = tmp_path / "p.c"
    dep = tmp_path / "p.c.d"
    r = gen("--process", str(out), "--depfile", str(dep),
            os.path.join(GEN, "codec_types.c"))
    assert r.returncode == 0, r.stderr
    text = dep.read_text()
    assert text.startswith(f"{out}:")
    assert "codec_types.c" in text
    assert "hyperc/hyperprocess.h" in text and "hyperc/abi.h" in text
    src = out.read_text()
    assert src.startswith("/* Generated by hyperc gen from codec_types.c; "
                          "do not edit. */\n")
    assert "void hw_init(const char *our)" in src


def balanced(text):
    """Brackets pair up outside strings and comments (no tsc here)."""
    stack, i, pairs = [], 0, {")": "(", "]": "[", "}": "{"}
    while i < len(text):
        c = text[i]
        if text.startswith("//", i):
            i = text.index("\n", i)
        elif text.startswith("/*", i):
            i = text.index("*/", i) + 1
        elif c in "'\"`":
            i = text.index(c, i + 1)
        elif c in "([{":
            stack.append(c)
        elif c in ")]}":
            if not stack or stack.pop() != pairs[c]:
                return False
        i += 1
    return not stack


def test_ts_client_matches_kit_and_is_deterministic(tmp_path):
    """caller-utils.ts as kit writes it, byte for byte: the goldens are
    derived by hand from kit's caller_utils_ts_generator.rs for the WIT
    our generator writes."""
    golden = os.path.join(GEN, "golden")
    for app in ("tasks", "counter", "web"):
        outs = []
        for run in ("a", "b"):
            out = tmp_path / f"{app}-{run}.ts"
            r = gen("--kit-exact", "--ts", str(out), os.path.join(GEN, f"{app}.c"))
            assert r.returncode == 0, r.stderr
            assert r.stderr == ""
            outs.append(out.read_bytes())
        assert outs[0] == outs[1], app
        with open(os.path.join(golden, f"{app}.ts"), "rb") as g:
            assert outs[0] == g.read(), app
        assert balanced(outs[0].decode()), app


def test_ts_with_wit_from_another_directory(tmp_path):
    """--ts and --wit together, run from elsewhere: the same bytes."""
    out = tmp_path / "caller-utils.ts"
    r = subprocess.run([BIN, "gen", "--kit-exact", "--wit",
                        str(tmp_path / "api"), "--ts",
                        str(out), os.path.abspath(os.path.join(GEN, "web.c"))],
                       capture_output=True, text=True, timeout=60,
                       cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    with open(os.path.join(GEN, "golden", "web.ts"), "rb") as g:
        assert out.read_bytes() == g.read()
    assert (tmp_path / "api" / "web.wit").exists()


APP = """#include <hyperc/hyperprocess.h>
#include <stdint.h>
typedef struct %(state)s { uint64_t n; } %(state)s;
%(types)s
HYPERPROCESS(%(state)s, .name = "x", .endpoints = HP_NO_ENDPOINTS,
             .save_config = HP_SAVE_NEVER, .wit_world = "x-v0");
%(marker)s
static %(ret)s %(fn)s(%(state)s *s)
{
    (void)s;
    %(ret)s r = {0};
    return r;
}
"""


def app_source(tmp_path, fn="get_n", marker="HP_HTTP", ret="uint64_t",
               types="", state="x_state"):
    src = tmp_path / "app.c"
    src.write_text(APP % dict(fn=fn, marker=marker, ret=ret, types=types,
                              state=state))
    return str(src)


def test_ts_not_written_without_http_handlers(tmp_path):
    """kit writes no caller-utils.ts when no interface has an http
    handler; neither does --ts."""
    out = tmp_path / "c.ts"
    r = gen("--ts", str(out), app_source(tmp_path, marker="HP_LOCAL"))
    assert r.returncode == 0, r.stderr
    assert "no http handler" in r.stderr
    assert not out.exists()


def test_process_links_the_http_runtime_only_when_it_serves_http(tmp_path):
    """The generated impl points at the HTTP runtime (so the link keeps it)
    only when the process binds or serves something over HTTP: a handler
    marked HP_HTTP, an endpoint, the UI, a homepage tile."""
    def impl_http(marker, decl_extra=""):
        src = app_source(tmp_path, marker=marker)
        if decl_extra:
            text = open(src).read().replace(
                '.wit_world = "x-v0"', '.wit_world = "x-v0", ' + decl_extra)
            open(src, "w").write(text)
        out = tmp_path / "p.c"
        r = gen("--process", str(out), src)
        assert r.returncode == 0, r.stderr
        m = re.search(r"\.http = ([^,]+),", out.read_text())
        assert m, out.read_text()
        return m.group(1)

    assert impl_http("HP_LOCAL") == "NULL"
    assert impl_http("HP_HTTP") == "&hp__http_runtime"
    assert impl_http("HP_LOCAL", '.icon = "x"') == "&hp__http_runtime"


def test_ts_kit_skips_interfaces_that_mention_world(tmp_path):
    """kit takes a WIT file containing "world " for a world file: a handler
    named hello_world puts "hello-world (http)" in the interface, so kit
    writes no client for it."""
    out = tmp_path / "c.ts"
    r = gen("--ts", str(out), app_source(tmp_path, fn="hello_world"))
    assert r.returncode == 0, r.stderr
    assert "warning" in r.stderr and '"world "' in r.stderr
    assert not out.exists()


def test_ts_refuses_type_names_kit_reserves(tmp_path):
    """Types whose TS name ends in Request/Response (and ...Wrapper) stop
    kit's build; --ts reports it and writes nothing."""
    out = tmp_path / "c.ts"
    types = "typedef struct get_response { uint64_t v; } get_response;"
    r = gen("--ts", str(out), app_source(tmp_path, ret="get_response",
                                         types=types))
    assert r.returncode == 1
    assert "'get-response'" in r.stderr and "'GetResponse'" in r.stderr
    assert not out.exists()


def test_ts_not_written_when_there_are_errors(tmp_path):
    out = tmp_path / "c.ts"
    r = gen("--ts", str(out), os.path.join(GEN, "bad.c"))
    assert r.returncode == 1
    assert not out.exists()


def test_state_version_rules():
    r = gen("--check", os.path.join(GEN, "migrate_bad.c"))
    assert r.returncode == 1
    assert re.search(r"migrate_bad\.c:15:\d+: error: migrate: 'not_a_migration' "
                     r"must be bool not_a_migration\(hp_arena \*a, uint32_t "
                     r"from_version, const hp_jv \*stored, st \*out, const "
                     r"char \*\*why\)", r.stderr), r.stderr
    r = gen("--check", os.path.join(GEN, "version_only.c"))
    assert r.returncode == 1
    assert re.search(r"version_only\.c:12:\d+: error: state_version 2 without "
                     r"migrate", r.stderr), r.stderr


def test_callers_are_deterministic_and_rewritten_only_on_change(tmp_path):
    src = os.path.join(GEN, "codec_types.c")
    out = tmp_path / "cu"
    assert gen("--callers", str(out), src).returncode == 0
    names = sorted(os.listdir(out))
    assert names == ["caller_utils.c", "everything_caller_utils.c",
                     "everything_caller_utils.h"], names
    first = {n: (out / n).read_bytes() for n in names}
    mtimes = {n: os.stat(out / n).st_mtime_ns for n in names}
    assert gen("--callers", str(out), src).returncode == 0
    for n in names:
        assert (out / n).read_bytes() == first[n]
        assert os.stat(out / n).st_mtime_ns == mtimes[n]  # not rewritten
    h = next(n for n in names if n.endswith(".h"))
    text = (out / h).read_text()
    assert text.startswith("/* Generated by hyperc gen from codec_types.c; "
                           "do not edit. */\n")


def test_callers_compile_for_every_type(tmp_path):
    """The stubs of a process using every kind of type compile cleanly with
    the project's warnings, under both compilers (serde_types.c: variants,
    aliases, JSON values, 128-bit integers, integer keys, a skipped field)."""
    for name in ("codec_types", "serde_types"):
        src = os.path.join(GEN, f"{name}.c")
        out = tmp_path / name
        assert gen("--callers", str(out), src).returncode == 0
        inc = os.path.join(os.path.dirname(GEN), "..", "include")
        for cc in ("gcc", "clang"):
            r = subprocess.run([cc, "-std=c11", "-D_GNU_SOURCE", "-Wall",
                                "-Wextra", "-Werror", "-Wshadow",
                                "-Wstrict-prototypes", "-I", inc, "-c",
                                str(out / "caller_utils.c"),
                                "-o", str(tmp_path / f"cu-{name}-{cc}.o")],
                               capture_output=True, text=True)
            assert r.returncode == 0, (name, cc, r.stderr)


def test_world_files_merge_as_kit_does(tmp_path):
    """Two processes of one package written into one api/ folder: the world
    files import both, as kit's rewrite of an existing world file does; a
    world file's own includes are kept and sorted."""
    ex = os.path.join(HERE, "..", "..", "examples", "async-app")
    api = tmp_path / "api"
    assert gen("--kit-exact", "--wit", str(api),
               os.path.join(ex, "receiver.c")).returncode == 0
    w = "async-app-template-dot-os-v0"
    assert (api / f"{w}.wit").read_text() == (
        f"world {w} {{\n    import receiver;\n    include process-v1;\n}}")
    # an include added by hand survives, imports already there stay first
    (api / f"types-{w}.wit").write_text(
        f"world types-{w} {{\n    import receiver;\n    include zeta;\n}}\n")
    stubs = tmp_path / "stubs"
    assert gen("--callers", str(stubs),
               os.path.join(ex, "receiver.c")).returncode == 0
    r = gen("--kit-exact", "--wit", str(api), "-I", str(stubs),
            os.path.join(ex, "requester.c"))
    assert r.returncode == 0, r.stderr
    assert (api / f"{w}.wit").read_text() == (
        f"world {w} {{\n    import receiver;\n    import async-requester;\n"
        f"    include process-v1;\n}}")
    assert (api / f"types-{w}.wit").read_text() == (
        f"world types-{w} {{\n    import receiver;\n    import async-requester;\n"
        f"    include lib;\n    include zeta;\n}}")
    # running again changes nothing (no duplicate imports)
    before = {p.name: p.read_bytes() for p in api.iterdir()}
    assert gen("--kit-exact", "--wit", str(api), "-I", str(stubs),
               os.path.join(ex, "requester.c")).returncode == 0
    assert {p.name: p.read_bytes() for p in api.iterdir()} == before


def test_wit_and_ts_carry_a_do_not_edit_line_unless_kit_exact(tmp_path):
    src = os.path.join(GEN, "tasks.c")
    for flags, d in (((), "plain"), (("--kit-exact",), "exact")):
        assert gen(*flags, "--wit", str(tmp_path / d),
                   "--ts", str(tmp_path / d / "c.ts"), src).returncode == 0
    line = "// Generated by hyperc gen from tasks.c; do not edit.\n"
    for name in os.listdir(tmp_path / "exact"):
        exact = (tmp_path / "exact" / name).read_text()
        plain = (tmp_path / "plain" / name).read_text()
        assert plain == line + exact, name


def test_generated_process_stubs_and_diagnostics_match_goldens(tmp_path):
    """Regression goldens: the whole generated process of counter.c, the
    caller stubs of tasks.c and the diagnostics of bad.c.  Regenerate them
    after an intended change with the commands in tests/gen/golden/README."""
    golden = os.path.join(GEN, "golden")
    out = tmp_path / "golden"
    out.mkdir()
    # the process (its include line names the source relative to the output)
    assert gen("--process", str(out / "counter.process.c"),
               os.path.join(GEN, "counter.c")).returncode == 0
    want = open(os.path.join(golden, "counter.process.c")).read().splitlines()
    got = (out / "counter.process.c").read_text().splitlines()
    assert got[0] == want[0]
    assert got[1].startswith('#include "') and got[1].endswith('/counter.c"')
    assert got[2:] == want[2:]
    assert gen("--callers", str(out), os.path.join(GEN, "tasks.c")).returncode == 0
    for name in ("tasks_caller_utils.h", "tasks_caller_utils.c"):
        with open(os.path.join(golden, name)) as g:
            assert (out / name).read_text() == g.read(), name
    r = subprocess.run([BIN, "gen", "--check", "bad.c"], cwd=GEN,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1
    with open(os.path.join(golden, "bad.diag")) as g:
        assert r.stderr == g.read()


def test_issue15_types_match_goldens(tmp_path):
    """Enums with data, aliases, JSON values, char, 128-bit integers, maps
    with integer keys, 16-tuples and skipped fields (tests/gen/serde_types.c):
    the WIT and the TypeScript client as kit @2b1eac5 writes them (read from
    wit_generator.rs and caller_utils_ts_generator.rs: definitions at 4
    spaces and their members at 8, an enum without data as `enum`, one with
    data as `variant`, an alias as `type x = T;`, serde_json::Value as the
    inferred `value`), and the whole generated process as a regression
    golden; all deterministic."""
    golden = os.path.join(GEN, "golden", "serde_types")
    src = os.path.join(GEN, "serde_types.c")
    for run in ("a", "b"):
        out = tmp_path / run
        r = gen("--kit-exact", "--wit", str(out / "api"), "--ts",
                str(out / "caller-utils.ts"), src)
        assert r.returncode == 0, r.stderr
        assert r.stderr == ""
        for name in ("all-types.wit", "serde-twin.wit", "types-serde-twin.wit"):
            with open(os.path.join(golden, name), "rb") as g:
                assert (out / "api" / name).read_bytes() == g.read(), name
        with open(os.path.join(golden, "caller-utils.ts"), "rb") as g:
            assert (out / "caller-utils.ts").read_bytes() == g.read()
        assert balanced((out / "caller-utils.ts").read_text())
        assert gen("--process", str(out / "p.c"), src).returncode == 0
        want = open(os.path.join(golden, "serde_types.process.c")).read()
        got = (out / "p.c").read_text().splitlines()
        assert got[2:] == want.splitlines()[2:]
    wit = open(os.path.join(golden, "all-types.wit")).read()
    assert "\n    variant shape {\n        circle(f64),\n        rect(rect),\n" \
        "        none\n    }\n" in wit
    assert "\n    enum level {\n        low,\n        high\n    }\n" in wit
    assert "\n    type node-id = string;\n" in wit
    assert "cache" not in wit  # skipped: not on the wire
    model = json.loads(gen("--model", src).stdout)
    kinds = {t["kind"] for t in model["types"]}
    assert {"variant", "alias", "char", "u128", "s128", "json"} <= kinds


def test_variant_rules_are_diagnosed(tmp_path):
    src = tmp_path / "v.c"
    src.write_text("""#include <hyperc/hyperprocess.h>
typedef enum pet_kind { PET_CAT, PET_DOG } pet_kind;
typedef struct HP_VARIANT pet {
    pet_kind kind;
    union { int32_t cat; int32_t bird; };
} pet;
typedef struct HP_VARIANT bad { int32_t x; } bad;
typedef HP_MAP_KV(double, int32_t) fmap;
typedef struct st { pet p; bad b; fmap m; } st;
HYPERPROCESS(st, .name = "v", .endpoints = HP_NO_ENDPOINTS,
             .save_config = HP_SAVE_NEVER);
HP_LOCAL static int32_t one(st *s) { (void)s; return 1; }
""")
    r = gen("--check", "-I", INCLUDE, str(src))
    assert r.returncode == 1
    assert "union member 'bird' of HP_VARIANT 'pet' matches no enumerator" \
        in r.stderr, r.stderr
    assert "HP_VARIANT 'bad' must hold an enum (the tag) and then an " \
        "anonymous union" in r.stderr, r.stderr
    assert "a map's keys must be strings (char *) or integers" in r.stderr


def test_unknown_parameter_is_one_error(tmp_path):
    src = tmp_path / "unk.c"
    src.write_text("""#include <hyperc/hyperprocess.h>
typedef struct st { int32_t x; } st;
HYPERPROCESS(st, .name = "x", .endpoints = HP_NO_ENDPOINTS,
             .save_config = HP_SAVE_NEVER, .wit_world = "w", .colour = 3);
HP_LOCAL static int32_t one(st *s) { (void)s; return 1; }
""")
    r = gen("--check", str(src))
    assert r.returncode == 1
    lines = r.stderr.splitlines()
    assert len(lines) == 2, r.stderr
    assert lines[0].endswith("error: unknown HYPERPROCESS parameter 'colour' "
                             "(the parameters: name, icon, widget, ui, "
                             "ui_path, endpoints, save_config, wit_world, "
                             "state_version, migrate, manual_logging, "
                             "max_tasks, task_stack_kib)"), lines[0]
    assert lines[1] == "1 error generated."


def test_handler_declared_before_its_definition(tmp_path):
    """A prototype (markers on it, on the definition, or on both) is the
    definition's handler; a prototype never defined is still an error."""
    src = tmp_path / "proto.c"
    src.write_text("""#include <hyperc/hyperprocess.h>
typedef struct st { int32_t x; } st;
HYPERPROCESS(st, .name = "x", .endpoints = HP_NO_ENDPOINTS,
             .save_config = HP_SAVE_NEVER, .wit_world = "p");
HP_LOCAL static int32_t one(st *s);
static int32_t helper(st *s) { return one(s) + 1; }
HP_LOCAL static int32_t one(st *s) { (void)s; return 1; }
HP_LOCAL static int32_t two(st *s);
static int32_t two(st *s) { return helper(s) + 1; }
HP_REMOTE static int32_t three(st *s);
HP_LOCAL static int32_t three(st *s) { return two(s); }
""")
    r = gen("--model", str(src))
    assert r.returncode == 0, r.stderr
    hs = [(h["name"], sorted(h["kinds"]), h["line"])
          for h in json.loads(r.stdout)["handlers"]]
    assert hs == [("one", ["local"], 7), ("two", ["local"], 9),
                  ("three", ["local", "remote"], 11)], hs
    with open(src, "a") as f:
        f.write("HP_LOCAL static int32_t four(st *s);\n")
    r = gen("--check", str(src))
    assert r.returncode == 1
    assert r.stderr.splitlines() == [
        f"{src}:12:25: error: handler 'four' is declared but not defined "
        "here", "1 error generated."], r.stderr
