"""Processes that do not take the node's runtime (docs/architecture.md,
Instances): one that carries its own copy of libhyperc, as every process
built before the runtime was shared does, still runs; one built for another
runtime ABI is refused with an error that says so."""
from conftest import pid

LEGACY = pid("legacy", "tlegacy")


def test_a_process_with_its_own_runtime_runs(node_factory):
    n = node_factory(packages=("tlegacy",))
    n.wait_log("legacy: running on its own runtime")
    assert n.ask(LEGACY, "hello") == "legacy: hello"
    assert n.ask(LEGACY, "again") == "legacy: again"


def test_another_runtime_abi_is_refused(node_factory):
    n = node_factory(packages=("tlegacy",))
    n.wait_log("was built for libhyperc runtime ABI 2989, this")
    assert "rebuild it with this hyperc" in n.log()
    # the package's other process is not affected
    assert n.ask(LEGACY, "still") == "legacy: still"
