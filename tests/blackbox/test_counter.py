"""The counter example, built from annotated C by `hyperc gen --process`,
running on a real node: serde-style requests in, raw return values out, and
a typed error reply for every refused request."""
import json

from conftest import pid

COUNTER = pid("counter", "counter", "hyperc.os")


def test_counter_requests(node_factory):
    n = node_factory(packages=("counter",))
    assert n.ask(COUNTER, '{"Increment": 5}') == "5"
    assert n.ask(COUNTER, '{"Increment":2}') == "7"
    assert n.ask(COUNTER, '"GetCount"') == "7"
    assert n.ask(COUNTER, '{"GetCount": null}') == "7"


def test_counter_refusals_are_answered(node_factory):
    n = node_factory(packages=("counter",))
    cases = [
        ('{"Nope": 1}', "UnknownVariant",
         "unknown request variant 'Nope'; you may call: GetCount, Increment"),
        ('{"Increment": "five"}', "BadArguments",
         "argument 'by' of Increment: expected an integer (u64), got a string"),
        ('{"Increment": -1}', "BadArguments", "out of range for u64"),
        ('"Increment"', "BadArguments", "Increment takes an argument"),
        ('{"GetCount": 3}', "BadArguments", "GetCount takes no arguments"),
        ("not json", "BadJson", "the request is not JSON"),
        ("[1]", "BadJson", 'expected {"Variant": arguments} or "Variant"'),
    ]
    for body, kind, message in cases:
        err = json.loads(n.ask(COUNTER, body))["HypercError"]
        assert err["kind"] == kind, (body, err)
        assert message in err["message"], (body, err)
    # nothing was counted, and the process is still serving
    assert n.ask(COUNTER, '"GetCount"') == "0"


def test_counter_state_survives_restart(node_factory, tmp_path):
    home = tmp_path / "home"
    n = node_factory(packages=("counter",), home=home)
    assert n.ask(COUNTER, '{"Increment": 3}') == "3"
    assert n.ask(COUNTER, '{"Increment": 4}') == "7"
    n.stop()
    n2 = node_factory(packages=("counter",), home=home)
    n2.wait_log("counter starting at 7")
    assert n2.ask(COUNTER, '"GetCount"') == "7"


BAD = b'{"hyperc_state":0,"state":{"count":"not a number"}}'


def test_undecodable_state_is_kept_and_process_refuses(node_factory, tmp_path):
    import sqlite3
    home = tmp_path / "home"
    n = node_factory(packages=("counter",), home=home)
    assert n.ask(COUNTER, '{"Increment": 1}') == "1"
    n.stop()
    db = sqlite3.connect(str(home / "state" / "state.sqlite"))
    db.execute("UPDATE state SET value=? WHERE process_id=?",
               (BAD, "counter:counter:hyperc.os"))
    db.commit()
    db.close()
    n2 = node_factory(packages=("counter",), home=home)
    n2.wait_log("does not decode as counter_state: field 'count' of "
                "counter_state: expected an integer (u64), got a string; "
                "not starting, and leaving the stored state as it is")
    rep = n2.inject(COUNTER, '"GetCount"', timeout=2)
    assert rep["ok"] is False  # the process is not running
    # never overwritten
    assert n2.stored_state("counter:counter:hyperc.os") == BAD


def test_http_binding_at_boot(node_factory):
    """The manifest asks for what the HTTP binding needs: the boot log has
    no binding failure and /api answers (issue 18)."""
    import urllib.request

    from conftest import free_port
    port = free_port()
    n = node_factory(packages=("counter",), extra=("--port", str(port)))
    # ready: the process has started, its bindings are made
    assert n.ask(COUNTER, '{"Increment": 2}') == "2"
    log = n.log() + n.stderr()
    assert "failed" not in log and "refused" not in log, log
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/counter:counter:hyperc.os/api",
        data=b'"GetCount"', method="POST",
        headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=20) as r:
        assert r.status == 200 and json.loads(r.read()) == 2
