"""A hyperprocess built with compile definitions that carry parentheses, a
comma, quotes and a space (tests/procs/CMakeLists.txt): hyperc_add_process
passed them to `hyperc gen` intact, and the process runs with them."""
import json

from conftest import pid

DEFINES = pid("defines", "tdefines")


def test_definitions_reach_the_process(node_factory):
    n = node_factory(packages=("tdefines",))
    assert json.loads(n.ask(DEFINES, '"Greeting"')) == "saved (every 3) 1"
    assert json.loads(n.ask(DEFINES, '"Greeting"')) == "saved (every 3) 2"
