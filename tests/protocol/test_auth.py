"""Users and permissions (--users): logging in with `auth`, what a client may
do before and after, the limits on guessing, and protected mode
(include/mqd/users.h, include/mqd/auth.h, docs/PROTOCOL.md "Users and
permissions").

The users file's hashes are made here with Python's hashlib, an
implementation independent of mqd's, at a low cost so that the suite stays
quick; one test runs mqd --hash-password's own lines at the real cost."""

import base64
import hashlib
import os
import signal
import socket
import subprocess
import time

import pytest

from mqd_harness import (BINARY, MALFORMED, OK, TIMEOUT, Client, Server, metric, run_mqd,
                         send, subscribe)

AUTH_REQUIRED = {"success": False, "reason": "Authentication required"}
AUTH_FAILED = {"success": False, "reason": "Authentication failed"}
DENIED = {"success": False, "reason": "Permission denied"}
NOT_ENABLED = {"success": False, "reason": "Authentication not enabled"}


def b64(raw):
    return base64.b64encode(raw).decode().rstrip("=")


def pbkdf2_line(name, password, rights="", iterations=1000):
    salt = os.urandom(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    return f"{name} $pbkdf2-sha256$i={iterations}${b64(salt)}${b64(digest)} {rights}\n"


def scrypt_line(name, password, rights="", ln=10, r=8, p=1):
    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=1 << ln, r=r, p=p, dklen=32,
                            maxmem=1 << 30)
    return f"{name} $scrypt$ln={ln},r={r},p={p}${b64(salt)}${b64(digest)} {rights}\n"


def users_server(tmp_path, text, *args):
    (tmp_path / "users").write_text(text)
    return Server("--users", str(tmp_path / "users"), "--metrics", "0", *args)


USERS = (pbkdf2_line("alice", "wonderland", "publish=orders.*,logs subscribe=*")
         + scrypt_line("bob", "builder", "subscribe=orders.eu.*,news")
         + pbkdf2_line("carol", "c", "publish=orders.eu.1 subscribe=orders.eu.1")
         + pbkdf2_line("nobody", "n"))


@pytest.fixture
def users_file(tmp_path):
    path = tmp_path / "users"
    path.write_text(USERS)
    return path


@pytest.fixture
def server(users_file):
    return Server("--users", str(users_file), "--metrics", "0")


def login(server, user, password, source=None):
    c = Client(server.port, source=source)
    assert c.request(command="auth", user=user, password=password) == OK
    return c


def test_the_right_password_logs_in(server):
    c = Client(server.port)
    assert c.request(command="auth", user="alice", password="wonderland") == OK
    subscribe(c, "orders.1")
    c.cmd(command="send", topic="orders.1", msg="hi", delivery="all")
    assert c.line()["msg"] == "hi"   # its own delivery comes before the reply
    assert c.line() == OK
    # scrypt lines work as PBKDF2 ones do
    b = Client(server.port)
    assert b.request(command="auth", user="bob", password="builder") == OK
    subscribe(b, "news")


def test_a_wrong_password_and_an_unknown_user_get_the_same_reply(server):
    c = Client(server.port)
    assert c.request(command="auth", user="alice", password="wonderlanD") == AUTH_FAILED
    assert c.request(command="auth", user="mallory", password="wonderland") == AUTH_FAILED
    # still not in
    assert c.request(command="subscribe", topic="orders.1") == AUTH_REQUIRED
    assert metric(server, 'mqd_auth_checks_total{result="rejected"}') == 2
    assert metric(server, 'mqd_protocol_errors_total{reason="auth_failed"}') == 2


@pytest.mark.parametrize("command", [
    {"command": "subscribe", "topic": "orders.1"},
    {"command": "unsubscribe", "topic": "orders.1"},
    {"command": "send", "topic": "orders.1", "msg": "x", "delivery": "all"},
    {"command": "send", "topic": "orders.1", "msg": "x", "delivery": "one"},
])
def test_every_command_before_auth_is_refused_and_does_nothing(server, command):
    watcher = login(server, "alice", "wonderland")
    subscribe(watcher, "orders.1")
    c = Client(server.port)
    assert c.request(**command) == AUTH_REQUIRED
    watcher.sync()   # nothing was delivered to the subscriber
    # nothing was cached or indexed either: the next send is index 0
    watcher.cmd(command="send", topic="orders.1", msg="first", delivery="all")
    assert watcher.line()["index"] == 0
    assert watcher.line() == OK
    assert metric(server, 'mqd_protocol_errors_total{reason="auth_required"}') == 1


def test_lines_that_are_no_command_get_their_own_reply_before_auth(server):
    """Framing and parsing come first: a line that is no command is refused
    for what it is, as without --users."""
    c = Client(server.port)
    assert c.request(command="auth", user="alice") == MALFORMED
    c.send(b"\xff\n")
    assert c.line()["reason"] == "Could not decode input as UTF-8"
    assert c.request(command="auth", user="alice", password="wonderland") == OK


def test_publish_patterns(server):
    alice = login(server, "alice", "wonderland")
    for topic in ("orders.", "orders.eu.1", "logs"):
        assert alice.request(command="send", topic=topic, msg="m", delivery="all") == OK
    for topic in ("orders", "logs2", "log", "news", ""):
        assert alice.request(command="send", topic=topic, msg="m", delivery="all") == DENIED
    bob = login(server, "bob", "builder")   # no publish= at all
    assert bob.request(command="send", topic="news", msg="m", delivery="one") == DENIED
    assert metric(server, 'mqd_protocol_errors_total{reason="permission_denied"}') == 6


def test_subscribe_patterns(server):
    bob = login(server, "bob", "builder")
    subscribe(bob, "news")
    subscribe(bob, "orders.eu.7")
    for topic in ("orders.us.7", "orders.eu", "news2", ""):
        assert bob.request(command="subscribe", topic=topic) == DENIED
    assert bob.request(command="unsubscribe", topic="orders.us.7") == OK   # always allowed


def test_a_user_never_receives_a_topic_outside_its_patterns(server):
    """Not by "all", not by "one" (even as the only subscriber), not by a
    cache replay of messages sent before it asked."""
    alice = login(server, "alice", "wonderland")
    send(alice, "orders.us.1", "cached before")
    send(alice, "orders.us.1", "one, cached", delivery="one")
    bob = login(server, "bob", "builder")
    assert bob.request(command="subscribe", topic="orders.us.1") == DENIED
    assert bob.request(command="subscribe", topic="orders.us.1", last_seen=-1) == DENIED
    send(alice, "orders.us.1", "live all")
    send(alice, "orders.us.1", "live one", delivery="one")
    bob.sync()
    assert bob.buf == b""
    # the "one" messages are still there for a subscriber that may take them
    taker = login(server, "alice", "wonderland")
    subscribe(taker, "orders.us.1")
    got = [taker.line()["msg"] for _ in range(4)]
    assert got == ["cached before", "one, cached", "live all", "live one"]
    # while bob does receive, by all, one and replay, what he may
    send(alice, "orders.eu.1", "eu cached")
    subscribe(bob, "orders.eu.1")
    assert bob.line()["msg"] == "eu cached"
    send(alice, "orders.eu.1", "eu one", delivery="one")
    assert bob.line()["msg"] == "eu one"


def test_three_failures_close_the_connection(server):
    c = Client(server.port)
    for _ in range(2):
        assert c.request(command="auth", user="alice", password="no") == AUTH_FAILED
    c.cmd(command="auth", user="alice", password="wonderland?")
    c.cmd(command="subscribe", topic="orders.1")   # never runs
    assert c.line() == AUTH_FAILED
    assert c.at_eof()
    server.wait_for_log("3 failed logins, disconnected")


def test_failures_are_limited_per_address(server):
    """10 failures from an address, over several connections, and even the
    right password is refused for a while; other addresses are not."""
    for _ in range(3):
        c = Client(server.port)
        for _ in range(3):
            assert c.request(command="auth", user="alice", password="guess") == AUTH_FAILED
        assert c.at_eof()
    c = Client(server.port)
    assert c.request(command="auth", user="alice", password="guess") == AUTH_FAILED
    assert c.request(command="auth", user="alice", password="wonderland") == AUTH_FAILED
    assert metric(server, 'mqd_auth_checks_total{result="limited"}') == 1
    login(server, "alice", "wonderland", source="127.0.0.2")


def test_commands_sent_with_auth_wait_for_its_result(server):
    c = Client(server.port)
    c.send('{"command": "auth", "user": "alice", "password": "wonderland"}\n'
           '{"command": "subscribe", "topic": "logs"}\n'
           '{"command": "send", "topic": "logs", "msg": "m", "delivery": "all"}\n')
    assert c.line() == OK
    assert c.line() == OK
    assert c.line()["msg"] == "m"
    assert c.line() == OK
    d = Client(server.port)
    d.send('{"command": "auth", "user": "alice", "password": "x"}\n'
           '{"command": "subscribe", "topic": "logs"}\n')
    assert d.line() == AUTH_FAILED
    assert d.line() == AUTH_REQUIRED


def test_logging_in_again_changes_the_rights_and_a_failure_keeps_them(server):
    c = login(server, "carol", "c")
    assert c.request(command="subscribe", topic="news") == DENIED
    assert c.request(command="auth", user="bob", password="builder") == OK
    subscribe(c, "news")
    assert c.request(command="auth", user="alice", password="wrong") == AUTH_FAILED
    subscribe(c, "orders.eu.2")   # still bob


def test_a_user_with_no_rights_may_log_in_and_do_nothing(server):
    c = login(server, "nobody", "n")
    assert c.request(command="subscribe", topic="x") == DENIED
    assert c.request(command="send", topic="x", msg="m", delivery="all") == DENIED


def test_auth_without_users_is_not_enabled():
    server = Server()
    c = server.client()
    assert c.request(command="auth", user="alice", password="wonderland") == NOT_ENABLED
    subscribe(c, "t")   # and nothing else changes


def test_a_slow_check_does_not_hold_up_other_clients(tmp_path):
    """A check that costs seconds runs off the loop: a client already in is
    answered while it runs, and the one checking gets its reply after."""
    (tmp_path / "users").write_text(
        pbkdf2_line("slow", "pw", "subscribe=*", iterations=10_000_000)
        + pbkdf2_line("fast", "pw", "subscribe=*"))
    server = Server("--users", str(tmp_path / "users"), "--metrics", "0")
    fast = login(server, "fast", "pw")
    slow = Client(server.port)
    slow.cmd(command="auth", user="slow", password="pw")
    server.wait_until(lambda: metric(server, "mqd_auth_checks_waiting") == 1)
    for i in range(20):
        subscribe(fast, f"t{i}")
    assert metric(server, "mqd_auth_checks_waiting") == 1, "the check ended too soon to tell"
    assert slow.line(timeout=60) == OK


def test_a_client_leaving_during_its_check_costs_nothing(tmp_path):
    """Its result finds no one and is dropped."""
    (tmp_path / "users").write_text(pbkdf2_line("slow", "pw", "subscribe=*",
                                                iterations=300_000))
    server = Server("--users", str(tmp_path / "users"), "--metrics", "0")
    for _ in range(3):
        c = Client(server.port)
        c.cmd(command="auth", user="slow", password="pw")
        c.cmd(command="subscribe", topic="t")
        c.close()
    # the checks run (the loop reads no more from a client whose check
    # waits, so it cannot see it leave), and their results find no one
    server.wait_until(lambda: metric(server, 'mqd_auth_checks_total{result="accepted"}') == 3)
    assert metric(server, "mqd_auth_checks_waiting") == 0
    login(server, "slow", "pw")
    assert server.stop() == 0


def test_the_check_of_a_client_closed_before_its_turn_is_skipped(tmp_path):
    """Two clients ask for a slow check; both are closed for --idle-timeout
    while the first runs: the second is never checked."""
    (tmp_path / "users").write_text(pbkdf2_line("slow", "pw", "subscribe=*",
                                                iterations=10_000_000))
    server = Server("--users", str(tmp_path / "users"), "--metrics", "0",
                    "--idle-timeout", "1")
    first, second = Client(server.port), Client(server.port)
    first.cmd(command="auth", user="slow", password="pw")
    server.wait_until(lambda: metric(server, "mqd_auth_checks_waiting") == 1)
    second.cmd(command="auth", user="slow", password="pw")
    assert first.at_eof() and second.at_eof()   # idle: no reply came in a second
    deadline = time.monotonic() + 120
    while metric(server, "mqd_auth_checks_waiting") != 0:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert metric(server, 'mqd_auth_checks_total{result="accepted"}') == 1


def test_sighup_reads_the_users_file_again(server, users_file):
    kept = login(server, "carol", "c")
    users_file.write_text(pbkdf2_line("dave", "d", "subscribe=*"))
    server.proc.send_signal(signal.SIGHUP)
    server.wait_for_log("users file read again")
    login(server, "dave", "d")
    c = Client(server.port)
    assert c.request(command="auth", user="carol", password="c") == AUTH_FAILED
    subscribe(kept, "orders.eu.1")   # a connection keeps the rights it logged in with
    users_file.write_text("dave notahash\n")
    server.proc.send_signal(signal.SIGHUP)
    server.wait_for_log("users file not reloaded, the old one stays")
    assert f"users file {users_file}: line 1: not a password hash" in server.stderr()
    login(server, "dave", "d")


@pytest.mark.parametrize("function", ["pbkdf2-sha256", "scrypt"])
def test_hash_password_makes_a_line_that_logs_in(tmp_path, function):
    p = subprocess.run([BINARY, "--hash-password", "erin", "--hash-function", function],
                       input=b"pa ss\xc3\xa9\n", capture_output=True, timeout=60)
    assert p.returncode == 0, p.stderr
    line = p.stdout.decode()
    assert line.startswith("erin $pbkdf2-sha256$i=600000$" if function == "pbkdf2-sha256"
                           else "erin $scrypt$ln=16,r=8,p=1$")
    assert line.endswith("\n") and line.count("\n") == 1
    assert b"publish=PATTERNS" in p.stderr
    (tmp_path / "users").write_text(line.rstrip("\n") + " subscribe=t\n")
    server = Server("--users", str(tmp_path / "users"))
    c = Client(server.port)
    assert c.request(command="auth", user="erin", password="pa ssé") == OK
    subscribe(c, "t")
    assert c.request(command="auth", user="erin", password="pa ss") == AUTH_FAILED


def test_hash_password_refuses_what_cannot_make_a_line():
    p = subprocess.run([BINARY, "--hash-password", "erin"], input=b"", capture_output=True,
                       timeout=60)
    assert p.returncode == 1 and b"no password" in p.stderr
    p = subprocess.run([BINARY, "--hash-password", "two words"], input=b"pw\n",
                       capture_output=True, timeout=60)
    assert p.returncode == 2 and b"blanks" in p.stderr
    status, _, err = run_mqd("--hash-function", "scrypt")
    assert status == 2 and "--hash-function needs --hash-password" in err
    status, _, err = run_mqd("--hash-password", "x", "--hash-function", "md5")
    assert status == 2


def test_a_bad_users_file_stops_the_start(tmp_path):
    path = tmp_path / "users"
    path.write_text(USERS + "eve $pbkdf2-sha256$i=1000$AAAA$BBBB\n")
    status, _, err = run_mqd("--users", str(path), "--port", "0")
    assert status == 1
    assert f"users file {path}: line 5: not a password hash" in err
    status, _, err = run_mqd("--users", str(tmp_path / "missing"), "--port", "0")
    assert status == 1 and "cannot read users file" in err


@pytest.mark.parametrize("address", ["0.0.0.0", "::", "192.0.2.1", "::ffff:10.0.0.1"])
def test_protected_mode_refuses_a_network_address_without_users(address):
    status, _, err = run_mqd("--bind", address, "--port", "0")
    assert status == 1
    assert err.startswith(f"mqd: refusing to listen on {address} without --users")
    assert "--insecure" in err and err.count("\n") == 1


@pytest.mark.parametrize("extra", [["--insecure"], ["--users", "USERS"]])
def test_protected_mode_lets_users_or_insecure_through(users_file, extra):
    """192.0.2.1 (TEST-NET-1) is on no interface: getting as far as trying
    to listen on it proves the protection let the start through, and no
    socket is ever opened beyond loopback."""
    extra = [str(users_file) if a == "USERS" else a for a in extra]
    status, _, err = run_mqd("--bind", "192.0.2.1", "--port", "0", *extra)
    assert status == 1
    assert "cannot listen on 192.0.2.1" in err and "refusing" not in err


@pytest.mark.parametrize("address", ["127.0.0.1", "127.3.4.5"])
def test_loopback_needs_no_users(address):
    server = Server("--bind", address)
    c = Client(server.port, host=address)
    subscribe(c, "t")


def test_the_python_client_logs_in(server):
    import sys
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "clients", "python"))
    from mqd_client import Client as PyClient, CommandError
    with PyClient("127.0.0.1", server.port, user="alice", password="wonderland") as c:
        c.subscribe("logs")
        c.send("logs", "hi")
        assert c.receive().msg == "hi"
        with pytest.raises(CommandError) as e:
            c.send("news", "no")
        assert e.value.reason == "Permission denied"
    with pytest.raises(CommandError) as e:
        PyClient("127.0.0.1", server.port, user="alice", password="nope")
    assert e.value.reason == "Authentication failed"
    with pytest.raises(ValueError):
        PyClient("127.0.0.1", server.port, user="alice")


def test_guesses_sent_at_once_are_held_to_the_limit(tmp_path):
    """A check counts against its address when it begins, not when it ends:
    30 guesses sent at once from one address, the right password last, get
    10 checks; the rest, the right one included, fail unchecked."""
    server = users_server(tmp_path, pbkdf2_line("alice", "secret", "subscribe=*",
                                                iterations=20000))
    conns = [Client(server.port) for _ in range(30)]
    for i, c in enumerate(conns):
        c.cmd(command="auth", user="alice", password="secret" if i == 29 else f"guess{i}")
    assert [c.line() for c in conns] == [AUTH_FAILED] * 30
    assert metric(server, 'mqd_auth_checks_total{result="rejected"}') == 10
    assert metric(server, 'mqd_auth_checks_total{result="limited"}') == 20
    # a success gives its count back: 9 failures and a login leave one more try
    server2 = users_server(tmp_path, pbkdf2_line("bob", "b", "subscribe=*"))
    for i in range(3):
        c = Client(server2.port)
        for _ in range(3):
            assert c.request(command="auth", user="bob", password="x") == AUTH_FAILED
    login(server2, "bob", "b")
    c = Client(server2.port)
    assert c.request(command="auth", user="bob", password="x") == AUTH_FAILED
    assert c.request(command="auth", user="bob", password="x") == AUTH_FAILED   # limited now
    assert metric(server2, 'mqd_auth_checks_total{result="limited"}') == 1


def test_an_unknown_name_costs_what_the_costliest_line_does(tmp_path):
    """Lines of different costs (an old one kept as defaults grew): an
    unknown name is checked against the costliest, never a cheaper one,
    and the start warns that the difference can be timed."""
    server = users_server(tmp_path, pbkdf2_line("legacy", "l", iterations=1000)
                          + pbkdf2_line("bob", "b", iterations=600000))
    assert "hash costs differ" in server.stderr()
    c = Client(server.port)
    before = metric(server, 'mqd_auth_checks_total{result="rejected"}')
    started = time.perf_counter()
    assert c.request(command="auth", user="nosuchuser", password="g") == AUTH_FAILED
    unknown = time.perf_counter() - started
    started = time.perf_counter()
    assert c.request(command="auth", user="legacy", password="g") == AUTH_FAILED
    cheap = time.perf_counter() - started
    assert metric(server, 'mqd_auth_checks_total{result="rejected"}') == before + 2
    assert unknown > 10 * cheap, (unknown, cheap)


def test_an_auth_on_the_last_unterminated_line_gets_its_reply(tmp_path):
    server = users_server(tmp_path, pbkdf2_line("alice", "a", "publish=*"))
    c = Client(server.port)
    c.send(b'{"command": "auth", "user": "alice", "password": "a"}')
    c.sock.shutdown(socket.SHUT_WR)
    assert c.line() == OK
    assert c.at_eof()


def test_logging_in_as_another_user_leaves_what_it_may_not_subscribe_to(tmp_path):
    server = users_server(tmp_path, pbkdf2_line("admin", "a", "publish=* subscribe=*")
                          + pbkdf2_line("guest", "g", "subscribe=public"))
    c = login(server, "admin", "a")
    subscribe(c, "secret")
    subscribe(c, "public")
    assert c.request(command="auth", user="guest", password="g") == OK
    publisher = login(server, "admin", "a")
    send(publisher, "secret", "payroll")
    send(publisher, "secret", "only one", delivery="one")
    send(publisher, "public", "news")
    assert c.line()["msg"] == "news"
    c.sync()
    # the "one" message was not taken by the guest: it waits in the cache
    taker = login(server, "admin", "a")
    subscribe(taker, "secret")
    assert [taker.line()["msg"] for _ in range(2)] == ["payroll", "only one"]


def fill_cache(client, mib):
    big = "x" * (200 * 1024)
    for i in range(mib * 5):
        send(client, f"cache{i % 2}", big)


def test_a_check_s_memory_is_not_taken_from_the_clients_budget(tmp_path):
    """A scrypt check (16 MiB here) runs beside --max-memory, not inside it:
    with the caches filling the budget, the right password still logs in,
    and a client that never logged in cannot make the cache evict."""
    server = users_server(tmp_path, scrypt_line("pub", "pw", "publish=* subscribe=*", ln=14),
                          "--max-memory", "48m", "--cache-size", "100")
    pub = login(server, "pub", "pw")
    fill_cache(pub, 34)
    cached = metric(server, "mqd_cached_messages")
    assert metric(server, "mqd_cache_evictions_total") == 0
    stranger = Client(server.port)
    stranger.cmd(command="auth", user="nosuchuser", password="x")
    server.wait_until(lambda: metric(server, "mqd_auth_checks_waiting") == 1)
    send(pub, "t", "small")
    assert stranger.line(timeout=30) == AUTH_FAILED
    login(server, "pub", "pw")
    assert metric(server, "mqd_cache_evictions_total") == 0
    assert metric(server, "mqd_cached_messages") == cached + 1


@pytest.mark.parametrize("address", ["0", "0x0", "0.0", "2130706433x"])
def test_protected_mode_decides_on_the_address_the_listener_would_use(address):
    """`--bind 0` is 0.0.0.0 to the listener: refused as such. (An address
    that is none at all is left to the listener to refuse.)"""
    status, _, err = run_mqd("--bind", address, "--port", "0")
    assert status == 1
    if address != "2130706433x":
        assert err.startswith(f"mqd: refusing to listen on {address} without --users")
    else:
        assert "cannot listen" in err


def test_a_users_line_asking_for_more_than_seconds_of_work_is_refused(tmp_path):
    salt, digest = b64(os.urandom(16)), b64(os.urandom(32))
    (tmp_path / "users").write_text(f"big $scrypt$ln=20,r=8,p=16${salt}${digest}\n")
    status, _, err = run_mqd("--users", str(tmp_path / "users"), "--port", "0")
    assert status == 1 and "line 1: not a password hash" in err


def test_the_debug_log_never_holds_a_password(tmp_path):
    server = users_server(tmp_path, pbkdf2_line("alice", "a"), "--log-level", "debug")
    c = Client(server.port)
    assert c.request(command="auth", user="alice", password="hunter2-SECRET",
                     extra=1) == MALFORMED
    c.send('{"command": "auth", "user": "alice", "password": "hunter3-SECRET",}\n')
    assert c.line()["reason"] == "Could not parse json"
    assert "SECRET" not in server.stderr()
    assert "Malformed json message" in server.stderr()   # the refusals are logged


def test_hash_password_takes_a_long_password_whole(tmp_path):
    password = "p" * 5000
    p = subprocess.run([BINARY, "--hash-password", "erin"], input=(password + "\n").encode(),
                       capture_output=True, timeout=60)
    assert p.returncode == 0, p.stderr
    (tmp_path / "users").write_text(p.stdout.decode().rstrip("\n") + " subscribe=t\n")
    server = Server("--users", str(tmp_path / "users"))
    c = Client(server.port)
    assert c.request(command="auth", user="erin", password=password[:-1]) == AUTH_FAILED
    assert c.request(command="auth", user="erin", password=password) == OK
