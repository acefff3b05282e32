"""homepage:homepage:sys: tiles added, listed and removed by real processes
(tclient in package thttp), with Hyperware's shapes and capability rules."""
import json
import time

HP = "homepage:homepage:sys"


def send(n, proc, body, secs=0, caps=False):
    cmd = "tocap" if caps else "to"
    return n.ask(f"{proc}:thttp:test.os", f"{cmd} our@{HP} {secs} {body}",
                 timeout=secs + 10)


def apps(n, proc="c"):
    return json.loads(send(n, proc, '"GetApps"', secs=5))["GetApps"]


def wait_apps(n, count, proc="c"):
    deadline = time.monotonic() + 5
    while True:
        got = apps(n, proc)
        if len(got) == count or time.monotonic() > deadline:
            return got
        time.sleep(0.05)


def test_add_list_remove(node_factory):
    n = node_factory(packages=("thttp",))
    assert apps(n) == []
    assert send(n, "c", json.dumps({"Add": {
        "label": "Client", "icon": "PHN2Zz4=", "path": "/ui/index.html",
        "widget": None}})) == "sent"
    assert send(n, "d", json.dumps({"Add": {
        "label": "D", "icon": None, "path": None,
        "widget": "<p>hi</p>"}})) == "sent"
    got = wait_apps(n, 2)
    assert got == [
        {"id": "c:thttp:test.os", "process": "c", "package_name": "thttp",
         "publisher": "test.os", "path": "/c:thttp:test.os/ui/index.html",
         "label": "Client", "base64_icon": "PHN2Zz4=", "widget": None,
         "order": 0, "favorite": False},
        {"id": "d:thttp:test.os", "process": "d", "package_name": "thttp",
         "publisher": "test.os", "path": None, "label": "D",
         "base64_icon": None, "widget": "<p>hi</p>", "order": 1,
         "favorite": False},
    ]
    # Adding again replaces the sender's tile; a path without a leading
    # slash is placed under the process all the same.
    send(n, "c", json.dumps({"Add": {"label": "C2", "path": "x"}}))
    got = wait_apps(n, 2)
    assert got[0]["label"] == "C2" and got[0]["path"] == "/c:thttp:test.os/x"
    # Remove takes the sender's own tile only.
    send(n, "d", '"Remove"')
    got = wait_apps(n, 1)
    assert [a["id"] for a in got] == ["c:thttp:test.os"]
    # Push subscriptions are not kept here.
    assert json.loads(send(n, "c", '"GetPushSubscription"', secs=5)) == {
        "PushSubscription": None}


def test_remove_other_needs_the_capability(node_factory):
    n = node_factory(packages=("thttp",))
    send(n, "c", json.dumps({"Add": {"label": "C"}}))
    wait_apps(n, 1)
    # d sends RemoveOther without the capability: ignored.
    send(n, "d", json.dumps({"RemoveOther": "c:thttp:test.os"}), caps=True)
    n.wait_log("RemoveOther without the RemoveOther capability")
    assert len(apps(n)) == 1
    # admin holds {"issuer": homepage, "params": "RemoveOther"} and
    # attaches it.
    send(n, "admin", json.dumps({"RemoveOther": "c:thttp:test.os"}),
         caps=True)
    assert wait_apps(n, 0) == []


def test_capability_to_message_homepage(node_factory):
    n = node_factory(packages=("thttp",))
    # nocap has no messaging capability for homepage: refused.
    assert send(n, "nocap", '"GetApps"', secs=3) == "error timeout"
    send(n, "nocap", json.dumps({"Add": {"label": "N"}}))
    n.wait_log("test.os@nocap:thttp:test.os -> "
               "test.os@homepage:homepage:sys refused")
    assert apps(n) == []
    # Tiles are not persisted: a new node starts empty.
    send(n, "c", json.dumps({"Add": {"label": "C"}}))
    assert len(wait_apps(n, 1)) == 1
    home = n.home
    n.stop()
    n2 = node_factory(packages=("thttp",), home=home)
    assert apps(n2) == []
