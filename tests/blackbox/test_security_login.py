"""docs/security.md, Login and sessions, by attack: guessing the password
from one address is slowed down (429 with a Retry-After that doubles) and
summed up in the log rather than a line per guess; a login cookie expires
and a new password ends the old ones; the node's login cookie never
reaches a process; the kept hash is Hyperware's argon2id, not the
password."""
import base64
import json
import subprocess
import time

from conftest import exchange, free_port
from test_http import SRV, bind, curl, http_json, login

PASSWORD = "the right one"


def boot(node_factory, *extra, home=None, password=PASSWORD):
    port = free_port()
    args = ["--port", str(port), *extra]
    if password:
        args += ["--password", password]
    n = node_factory(packages=("thttpd",), extra=args, home=home)
    n.port = port
    return n


def login_from(n, source, password):
    """A login from the loopback address `source` (127.0.0.0/8 is all
    loopback): (status, headers)."""
    st, hd, _ = curl(n, "/login", "--interface", source, "-H",
                     "Content-Type: application/json", "-d",
                     json.dumps({"password": password}))
    return st, hd


def cookie_of(hd):
    return hd["set-cookie"].split(";")[0]


def claims(cookie):
    payload = cookie.split("=", 1)[1].split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload)
                                                                % 4)))


def wait_until(t):
    time.sleep(max(0.0, t - time.monotonic()))


# ------------------------------------------------------------- guessing


def test_guessing_from_one_address_backs_off(node_factory):
    n = boot(node_factory)
    me = "127.0.0.2"
    for _ in range(5):
        assert login_from(n, me, "guess")[0] == 401
    # the 6th attempt is refused unchecked, even with the right password
    st, hd = login_from(n, me, PASSWORD)
    assert st == 429 and hd["retry-after"] == "1", hd
    t = time.monotonic()
    # another address is not slowed down by this one's guesses
    assert login_from(n, "127.0.0.3", PASSWORD)[0] == 200
    # after the wait one more guess; failing, the wait doubles
    wait_until(t + 1.2)
    assert login_from(n, me, "guess")[0] == 401
    st, hd = login_from(n, me, "guess")
    assert st == 429 and hd["retry-after"] == "2", hd
    t = time.monotonic()
    wait_until(t + 2.2)
    assert login_from(n, me, "guess")[0] == 401
    st, hd = login_from(n, me, PASSWORD)
    assert st == 429 and hd["retry-after"] == "4", hd
    wait_until(time.monotonic() + 4.2)
    # the right password after the wait: in, and the address forgiven
    assert login_from(n, me, PASSWORD)[0] == 200
    assert login_from(n, me, "guess")[0] == 401
    assert login_from(n, me, PASSWORD)[0] == 200
    n.stop()
    # the log has no line per failure, one summary with the counts
    log = n.log()
    assert "wrong password" not in log
    assert log.count("http-server: login: ") == 1, log
    assert ("http-server: login: 8 failed, 3 refused (too many failures) "
            "from 1 address; 1 address locked out for a while; most from "
            "127.0.0.2 (11)") in log, log


def logins_at_once(n, source, password, count):
    """`count` logins from `source` sent at once: their status lines."""
    import threading
    body = json.dumps({"password": password}).encode()
    req = (b"POST /login HTTP/1.1\r\nHost: localhost\r\n"
           b"Content-Type: application/json\r\nConnection: close\r\n"
           b"Content-Length: %d\r\n\r\n" % len(body)) + body
    got = []

    def one():
        got.append(exchange(n.port, req, source).split(b"\r\n", 1)[0])

    threads = [threading.Thread(target=one) for _ in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
        assert not t.is_alive()
    assert len(got) == count
    return got


def test_guesses_sent_at_once_gain_nothing(node_factory):
    """Checks under way count as failures to come: with four failures
    behind it, an address that sends twelve guesses at once has one
    checked, not four (as many as run at once), and after the wait one
    again, whichever of the server's loops each lands on (four here)."""
    n = boot(node_factory, "--http-loops", "4")
    me = "127.0.0.4"
    for _ in range(4):
        assert login_from(n, me, "guess")[0] == 401
    got = logins_at_once(n, me, "guess", 12)
    assert sum(b" 401 " in g for g in got) == 1, got
    assert sum(b" 429 " in g for g in got) == 11, got
    t = time.monotonic()
    wait_until(t + 1.2)
    got = logins_at_once(n, me, "guess", 12)
    assert sum(b" 401 " in g for g in got) == 1, got
    n.stop()
    assert "http-server: login: 6 failed, 22 refused" in n.log(), n.log()


# ------------------------------------------------------------- sessions


def test_the_last_summary_counts_the_checks_under_way(node_factory):
    """A stop while password checks run (on several loops) waits for them,
    and the summary said at the stop counts them: it comes once every loop
    has stopped, not when the first does."""
    import threading

    def req(password):
        body = json.dumps({"password": password}).encode()
        return (b"POST /login HTTP/1.1\r\nHost: localhost\r\n"
                b"Content-Type: application/json\r\nConnection: close\r\n"
                b"Content-Length: %d\r\n\r\n" % len(body)) + body

    def one(n, src):
        try:
            exchange(n.port, req("guess"), src)
        except OSError:
            pass  # cut by the stop

    for attempt in range(5):
        n = boot(node_factory, "--http-loops", "4")
        logins = [threading.Thread(target=one, args=(n, f"127.0.3.{i + 1}"))
                  for i in range(4)]
        for t in logins:
            t.start()
        time.sleep(0.005)
        # the right password from a fifth address, until it is told the
        # node checks as many as it can (4 at once): then the four wrong
        # ones are under way (a success adds nothing to the summary)
        busy = False
        deadline = time.monotonic() + 2
        while not busy and time.monotonic() < deadline:
            got = exchange(n.port, req(PASSWORD), "127.0.3.9")
            busy = b"checking as many logins as it can" in got
            assert busy or got.startswith(b"HTTP/1.1 200 "), got
        n.stop()
        for t in logins:
            t.join(timeout=30)
        if busy:
            break
        # the four were checked before the fifth came: again, on a new node
    assert busy, "the four logins were never under way at once"
    log = n.log()
    assert log.count("http-server: login: ") == 1, log
    assert ("http-server: login: 4 failed, 0 refused (too many failures) "
            "from 4 addresses") in log, log


def test_a_login_expires(node_factory):
    n = boot(node_factory, "--login-lifetime", "2")
    bind(n, "/secret", auth=True)
    st, hd, _ = login(n, PASSWORD)
    assert st == 200 and "Max-Age=2;" in hd["set-cookie"], hd
    cookie = cookie_of(hd)
    c = claims(cookie)
    assert c["exp"] - c["iat"] == 2 and c["expiration"] == c["exp"]
    t = time.monotonic()
    assert curl(n, f"/{SRV}/secret", "-H", "Cookie: " + cookie)[0] == 200
    wait_until(t + 3.1)
    assert curl(n, f"/{SRV}/secret", "-H", "Cookie: " + cookie)[0] == 401


def test_the_default_lifetime_is_30_days(node_factory):
    n = boot(node_factory)
    c = claims(cookie_of(login(n, PASSWORD)[1]))
    assert c["exp"] - c["iat"] == 30 * 24 * 3600


def test_a_new_password_ends_the_old_logins(node_factory, tmp_path):
    home = tmp_path / "h"
    n = boot(node_factory, home=home)
    cookie = cookie_of(login(n, PASSWORD)[1])
    n.stop()
    # the same password again: the login still holds
    n = boot(node_factory, home=home)
    bind(n, "/secret", auth=True)
    assert curl(n, f"/{SRV}/secret", "-H", "Cookie: " + cookie)[0] == 200
    n.stop()
    # a new one: it does not
    n = boot(node_factory, home=home, password="a new one")
    bind(n, "/secret", auth=True)
    assert curl(n, f"/{SRV}/secret", "-H", "Cookie: " + cookie)[0] == 401
    assert login(n, PASSWORD)[0] == 401
    fresh = cookie_of(login(n, "a new one")[1])
    assert curl(n, f"/{SRV}/secret", "-H", "Cookie: " + fresh)[0] == 200
    assert "the node password was changed; logins made with the old one " \
        "have ended" in n.log()


# ------------------------------------------------- what processes see


def test_the_login_cookie_does_not_reach_processes(node_factory):
    n = boot(node_factory)
    bind(n, "/secret", auth=True)
    bind(n, "/open")
    cookie = cookie_of(login(n, PASSWORD)[1])
    header = (f"Cookie: theme=dark; {cookie}; "
              "hyperware-auth_test.os@srv:thttpd:test.os=abc; lang=en")
    st, _, body = curl(n, f"/{SRV}/secret", "-H", header)
    assert st == 200
    assert http_json(body)["Http"]["headers"]["cookie"] == \
        "theme=dark; lang=en"
    # an open path too; with only the login cookie, no Cookie header at all
    req = http_json(curl(n, f"/{SRV}/open", "-H", "Cookie: " + cookie)[2])
    assert "cookie" not in req["Http"]["headers"]
    req = http_json(curl(n, f"/{SRV}/open", "-H", "Cookie: a=1")[2])
    assert req["Http"]["headers"]["cookie"] == "a=1"


# ------------------------------------------------------------ the hash


def test_the_kept_hash_is_hyperwares(node_factory, tmp_path):
    home = tmp_path / "h"
    n = boot(node_factory, home=home)
    kept = (home / "http" / "password_hash").read_text().strip()
    assert PASSWORD not in kept
    # $argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>: the salt is the node
    # name repeated to 8 bytes, the hash what Hyperware's login page sends
    _, alg, v, params, salt, raw = kept.split("$")
    assert (alg, v, params) == ("argon2id", "v=19", "m=19456,t=2,p=1")
    assert base64.b64decode(salt + "=" * (-len(salt) % 4)) == \
        b"test.ostest.os"
    hexed = "0x" + base64.b64decode(raw + "=" * (-len(raw) % 4)).hex()
    st, hd, _ = curl(n, "/login", "-H", "Content-Type: application/json",
                     "-d", json.dumps({"password_hash": hexed.upper()
                                       .replace("0X", "0x")}))
    assert st == 200
    st, _, _ = curl(n, "/login", "-H", "Content-Type: application/json",
                    "-d", json.dumps({"password_hash": "0x" + "00" * 32}))
    assert st == 401
    # a kept file that is not such a hash: the node says so and stops
    n.stop()
    (home / "http" / "password_hash").write_text("not a hash\n")
    port = free_port()
    p = subprocess.run([n.bin, "run", "--home", str(home), "--port",
                        str(port), n.packages[0]],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode != 0
    assert "password_hash does not hold an argon2id hash" in p.stderr


# ------------------------------------------------------ checks off the loop


def test_password_checks_do_not_stall_the_server(node_factory):
    """argon2id runs on a thread pool, at most four at once: a crowd of
    logins from many addresses neither holds up other requests nor queues
    without bound (the rest are told to come back)."""
    import threading
    n = boot(node_factory)
    body = json.dumps({"password": "guess"}).encode()
    req = (b"POST /login HTTP/1.1\r\nHost: localhost\r\n"
           b"Content-Type: application/json\r\nConnection: close\r\n"
           b"Content-Length: %d\r\n\r\n" % len(body)) + body
    done = {}  # tag -> (time answered, status line, response)

    def one(tag, src, data):
        got = exchange(n.port, data, src)
        done[tag] = (time.monotonic(), got.split(b"\r\n", 1)[0], got)

    logins = [threading.Thread(target=one,
                               args=(i, f"127.0.1.{i + 1}", req))
              for i in range(12)]
    for t in logins:
        t.start()
    time.sleep(0.005)
    # meanwhile an ordinary request: the login page
    page = b"GET /login HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    other = threading.Thread(target=one, args=("page", "127.0.2.1", page))
    other.start()
    for t in logins + [other]:
        t.join(timeout=60)
        assert not t.is_alive()
    assert len(done) == 13, done
    checked = [d for k, d in done.items() if k != "page" and b" 401 " in d[1]]
    busy = [d for k, d in done.items() if k != "page" and b" 429 " in d[1]]
    # some were checked (401), the crowd beyond four was turned away (429)
    assert len(checked) >= 4 and len(checked) + len(busy) == 12, done
    assert busy and all(b"checking as many logins" in d[2] for d in busy), \
        [d[2] for d in busy]
    # the login page did not wait for the password checks
    assert b" 200 " in done["page"][1], done["page"]
    assert done["page"][0] < max(d[0] for d in checked), done
    n.stop()
