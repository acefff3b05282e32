"""The Example Application: a requester whose init and handlers call a
receiver through the typed caller stubs `hyperc gen --callers` writes, and
get typed results or typed errors back."""
import json
import time

from conftest import pid

PKG = "async-app"
REQUESTER = pid("requester", PKG, "hyperc.os")
RECEIVER = pid("receiver", PKG, "hyperc.os")


def calls_through_stubs(n):
    """The Example Application's exchange on node n, freshly started."""
    # init asked the receiver for its count through get_count_local_rpc
    n.wait_log("the receiver's count at start: 0")
    rep = n.ask(REQUESTER, '{"ProcessRequest": 5}')
    assert json.loads(rep) == "Response from process: the receiver is at 5"
    rep = n.ask(REQUESTER, '{"ProcessRequest": 2}')
    assert json.loads(rep) == "Response from process: the receiver is at 7"
    # the receiver saw the call (and the requester's argument) directly
    assert n.ask(RECEIVER, '"GetCount"') == "7"
    n.wait_log("incremented by 2 (from requester)")
    assert n.ask(REQUESTER, '"GetCount"') == "2"


def test_init_and_handler_call_the_receiver(node_factory):
    calls_through_stubs(node_factory(packages=(PKG,)))


def test_state_of_both_survives_restart(node_factory, tmp_path):
    home = tmp_path / "home"
    n = node_factory(packages=(PKG,), home=home)
    n.wait_log("the receiver's count at start: 0")
    n.ask(REQUESTER, '{"ProcessRequest": 4}')
    # what the handler changed after its wait is in the saved state
    stored = n.stored_state("requester:async-app:hyperc.os")
    assert json.loads(stored)["state"]["last_seen"] == 4
    n.stop()
    n2 = node_factory(packages=(PKG,), home=home)
    n2.wait_log("the receiver's count at start: 4")
    assert n2.ask(REQUESTER, '"GetCount"') == "1"


def test_error_kinds_reach_the_caller(node_factory):
    n = node_factory(packages=(PKG, "counter", "hello"))
    n.wait_log("the receiver's count at start")

    def probe(target, increment=False, timeout_s=3):
        body = json.dumps({"Probe": [target, timeout_s, increment]})
        return json.loads(n.ask(REQUESTER, body, timeout=30))

    # the real receiver, and counter, which has GetCount too: values
    assert probe("our@receiver:async-app:hyperc.os") == "Ok 0"
    assert probe("our@counter:counter:hyperc.os") == "Ok 0"
    assert probe("our@receiver:async-app:hyperc.os", True) == "Ok 1"
    # no such process: the node fails the request at once
    assert probe("our@nobody:async-app:hyperc.os") == (
        "Timeout: no reply from our@nobody:async-app:hyperc.os within 3 s")
    # another node: offline (no networking yet)
    assert probe("elsewhere.os@receiver:async-app:hyperc.os") == (
        "Offline: elsewhere.os@receiver:async-app:hyperc.os is offline")
    # a hyperc process without that variant refuses with a typed error reply
    assert probe("our@counter:counter:hyperc.os", True) == (
        "Rejected: UnknownVariant: unknown request variant "
        "'IncrementCounter'; you may call: GetCount, Increment")
    # a process answering something that is not the handler's result type
    assert probe("our@hello:hello:hyperc.os").startswith(
        "Decode: the reply is not JSON")
    # a process may call itself: the waiting task lets its own request in
    # (a blocking send-and-await to itself would deadlock)
    assert probe("our@requester:async-app:hyperc.os") == "Ok 0"
    # the requester kept serving throughout
    assert n.ask(REQUESTER, '"GetCount"') == "0"


def test_each_process_logs_to_its_file(node_factory, tmp_path):
    """Logging set up by the generated init: info and more severe on the
    terminal, debug and up in /<package>/log/<process>.log through vfs."""
    import re
    home = tmp_path / "home"
    n = node_factory(packages=(PKG,), home=home)
    n.wait_log("the receiver's count at start: 0")
    n.ask(REQUESTER, '{"ProcessRequest": 3}')
    logdir = home / "vfs" / "async-app:hyperc.os" / "log"
    receiver_log = logdir / "receiver.log"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if receiver_log.exists() and "incremented by 3" in receiver_log.read_text():
            break
        time.sleep(0.1)
    lines = receiver_log.read_text().splitlines()
    stamp = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z "
    assert any(re.fullmatch(stamp + "DEBUG receiver: started with a new state", l)
               for l in lines), lines
    assert any(re.fullmatch(stamp + r"INFO receiver: incremented by 3 \(from "
                            r"requester\)", l) for l in lines), lines
    assert "the receiver's count at start: 0" in (
        logdir / "requester.log").read_text()
    # debug lines stay out of the terminal; info lines are shown
    assert "started with a new state" not in n.log()
    assert "INFO receiver: incremented by 3 (from requester)" in n.log()


def test_enums_with_data_end_to_end(node_factory, tmp_path):
    """The receiver's Job (Rust: enum Job { Add(u64), Note(String), Reset })
    as argument, return value (inside an option), state field (a list of
    jobs, saved and loaded) and through the typed stubs of the requester;
    JSON as serde's externally tagged enums."""
    home = tmp_path / "home"
    n = node_factory(packages=(PKG,), home=home)
    n.wait_log("the receiver's count at start: 0")
    assert n.ask(RECEIVER, '{"RunJob": {"Add": 3}}') == "null"
    assert n.ask(RECEIVER, '{"RunJob": {"Note": "hi"}}') == '{"Add":3}'
    assert n.ask(RECEIVER, '{"RunJob": "Reset"}') == '{"Note":"hi"}'
    # serde's other accepted form of a case without data
    assert n.ask(RECEIVER, '{"RunJob": {"Reset": null}}') == '"Reset"'
    assert n.ask(RECEIVER, '"History"') == \
        '[{"Add":3},{"Note":"hi"},"Reset","Reset"]'
    # refused with what was expected, the process serving on
    bad = json.loads(n.ask(RECEIVER, '{"RunJob": "Add"}'))["HypercError"]
    assert bad["kind"] == "BadArguments"
    assert "variant Add of job carries data: expected {\"Add\": ...}" in \
        bad["message"], bad
    bad = json.loads(n.ask(RECEIVER, '{"RunJob": {"Mul": 2}}'))["HypercError"]
    assert "expected a variant of job (Add, Note, Reset)" in bad["message"]
    # through the stubs: the requester sends jobs and reads the options back
    rep = json.loads(n.ask(REQUESTER, '{"RunJobs": [5, "via stub"]}'))
    assert rep == "before Add(5): Reset; before Note(via stub): Add(5)", rep
    assert n.ask(RECEIVER, '"GetCount"') == "5"
    n.stop()
    # the state (a list of jobs) survives a restart
    n2 = node_factory(packages=(PKG,), home=home)
    n2.wait_log("the receiver's count at start: 5")
    assert n2.ask(RECEIVER, '"History"') == \
        '[{"Add":3},{"Note":"hi"},"Reset","Reset",{"Add":5},' \
        '{"Note":"via stub"}]'
    assert n2.ask(RECEIVER, '{"RunJob": "Reset"}') == '{"Note":"via stub"}'


def test_http_binding_at_boot(node_factory):
    """The requester's manifest asks for http-server:distro:sys, which its
    /api and /ws bindings need: the boot log has no binding failure and
    /api answers (issue 18)."""
    import urllib.request

    from conftest import free_port
    port = free_port()
    n = node_factory(packages=(PKG,), extra=("--port", str(port)))
    n.wait_log("the receiver's count at start: 0")
    log = n.log() + n.stderr()
    assert "failed" not in log and "refused" not in log, log
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/requester:async-app:hyperc.os/api",
        data=b'{"ProcessRequest": 3}', method="POST",
        headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=20) as r:
        assert r.status == 200
        assert json.loads(r.read()) == \
            "Response from process: the receiver is at 3"
