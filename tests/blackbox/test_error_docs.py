"""Every error a caller can get is in docs/hyperprocess.md's section "Every
error a caller can get, and what to do": each kind the runtime, the kernel
and http-server write in the framework's error reply
({"HypercError":{"kind":...}}), found in their sources, is a row of its
table, and each outcome of a call (hp_rpc_kind) is named there.  A kind added
to the code without a row fails here."""
import os
import re

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")


def read(*path):
    with open(os.path.join(ROOT, *path)) as f:
        return f.read()


def section():
    doc = read("docs", "hyperprocess.md")
    m = re.search(r"^## Every error a caller can get, and what to do\n(.*?)"
                  r"^## ", doc, re.S | re.M)
    assert m, "the section is missing from docs/hyperprocess.md"
    return m.group(1)


def map_names(header, macro):
    """The names of an X-macro table of runtime.h: XX(NAME, "Text"), or
    XX(NAME, "Text", more...)."""
    m = re.search(r"#define %s\(XX\)(.*?)\n\n" % macro, header, re.S)
    assert m, macro
    return re.findall(r'XX\((\w+), "(\w+)"[,)]', m.group(1))


def written_kinds():
    """The kinds the C sources put in error replies."""
    kinds = set()
    for sub in ("guest", "node"):
        for d, _, files in os.walk(os.path.join(ROOT, "src", sub)):
            for f in files:
                if not f.endswith(".c"):
                    continue
                src = open(os.path.join(d, f)).read()
                kinds.update(re.findall(
                    r'(?:hpr_error_body\(\w+,|respond_error\(c, \d+,|'
                    r'fail\(c, \d+,|err_kind =)\s*"(\w+)"', src))
                kinds.update(re.findall(r'\\"kind\\":\\"(\w+)\\"', src))
    return kinds


def test_every_error_kind_has_a_row():
    text = section()
    rows = set(re.findall(r"^\| `(\w+)` \| (\d{3}) \|", text, re.M))
    documented = {kind for kind, _ in rows}
    refusals = {text for name, text in map_names(
        read("include", "hyperc", "runtime.h"), "HP_REFUSAL_MAP")
        if name != "OK"}
    written = written_kinds()
    # the scan finds what it must (else it would find nothing and pass)
    assert {"Unauthorized", "Busy", "BadRequest", "Forbidden"} <= written, \
        written
    assert {"NotFound", "MethodNotAllowed", "Busy"} <= refusals, refusals
    missing = (refusals | written) - documented
    assert not missing, f"kinds without a row in the table: {missing}"
    # a refusal's row gives the HTTP status the runtime's table gives it
    statuses = dict(re.findall(r'XX\(\w+, "(\w+)", (\d{3})\)',
                               read("include", "hyperc", "runtime.h")))
    assert set(statuses) >= refusals, statuses
    wrong = {kind: (status, statuses[kind]) for kind, status in rows
             if kind in refusals and status != statuses[kind]}
    assert not wrong, f"rows whose status is not the table's: {wrong}"


def test_every_call_outcome_is_named():
    text = section()
    kinds = [name for name, _ in map_names(
        read("include", "hyperc", "runtime.h"), "HP_RPC_KIND_MAP")
        if name != "OK"]
    assert len(kinds) >= 6, kinds
    missing = [k for k in kinds if f"HP_RPC_{k}" not in text]
    assert not missing, f"call outcomes the section does not name: {missing}"
