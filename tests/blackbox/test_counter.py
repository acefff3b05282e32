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
         "unknown request variant 'Nope'; you may call: Increment, GetCount"),
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
