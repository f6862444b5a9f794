"""mqd-cli, the command-line client (docs/mqd-cli.1), run as a user would:
the built binary against a real mqd on a free loopback port.

A subscriber started in the background is known to be subscribed once the
server's metrics count its subscriptions; output is read with timeouts."""
import json
import os
import re
import select
import signal
import subprocess
import tempfile
import time

import pytest

from mqd_harness import (TIMEOUT, Server, free_port, http_request, metrics_port, run_mqd,
                         send, subscribe)

CLI = os.environ.get(
    "MQD_CLI_BINARY", os.path.join(os.path.dirname(__file__), "..", "..", "build", "mqd-cli"))
MAN_PAGE = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "mqd-cli.1")

# every escape of RFC 8259, every other control character, quotes and
# backslashes in every position, the BMP's edges and characters beyond it
TRICKY_MESSAGES = [
    '"', '\\', '\\"', '"\\', '/', '\\/', '\b\f\n\r\t',
    "".join(chr(c) for c in range(1, 32)) + "\x7f",
    "\\u0041 is not A", '\\\\u0000', "{\"command\":\"send\"}", "\n", "\r\n", " lead and trail ",
    "é ß ü \u00a0 \u2028 \u2029 \ufeff \uffff", "😀 𝄞 \U0010ffff \U00010000",
    "mixed \"😀\"\t\\n\x01 é",
    "",
]


def cli_env():
    env = dict(os.environ)
    # a leak under the sanitizers fails the exit status the tests check
    env["ASAN_OPTIONS"] = env.get("ASAN_OPTIONS", "") + ":detect_leaks=1"
    return env


def run_cli(server, *args, stdin=None, timeout=TIMEOUT):
    """Runs mqd-cli to its end against `server` (None: no -p); (status, stdout, stderr)."""
    port = ["-p", str(server.port)] if server else []
    p = subprocess.run([CLI, *port, *args], input=stdin, capture_output=True,
                       timeout=timeout, env=cli_env(),
                       stdin=None if stdin is not None else subprocess.DEVNULL)
    return p.returncode, p.stdout, p.stderr.decode(errors="replace")


class Cli:
    """mqd-cli running in the background; its stdout read line by line."""

    def __init__(self, server, *args, stdin=subprocess.DEVNULL):
        self.err = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([CLI, "-p", str(server.port), *args], stdin=stdin,
                                     stdout=subprocess.PIPE, stderr=self.err, env=cli_env())
        self.buf = b""

    def line(self, timeout=TIMEOUT):
        """The next line of stdout, without its "\\n"."""
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            assert left > 0, f"no line in time; stderr: {self.stderr()}"
            if select.select([fd], [], [], left)[0]:
                chunk = os.read(fd, 65536)
                assert chunk, f"stdout ended; stderr: {self.stderr()}"
                self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line

    def lines(self, n):
        return [self.line() for _ in range(n)]

    def rest(self):
        """All stdout left, once the process has ended."""
        return self.buf + self.proc.stdout.read()

    def wait(self, timeout=TIMEOUT):
        return self.proc.wait(timeout)

    def stderr(self):
        self.err.seek(0)
        return self.err.read().decode(errors="replace")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.proc.stdout.close()
        self.err.close()


@pytest.fixture
def mserver(start):
    """A server of the test's own, with metrics to see its subscriptions."""
    return start("--metrics", "0")


@pytest.fixture
def clis():
    """Starts mqd-cli in the background; stops every one after the test."""
    started = []

    def _start(server, *args, **kwargs):
        started.append(Cli(server, *args, **kwargs))
        return started[-1]
    yield _start
    for c in started:
        c.stop()


def subscriptions(server):
    _, _, body = http_request(metrics_port(server))
    return int(re.search(rb"^mqd_subscriptions (\d+)$", body, re.M).group(1))


def wait_subscriptions(server, n):
    server.wait_until(lambda: subscriptions(server) == n, f"{n} subscriptions")


def live_sub(clis, server, *args, topics=1):
    """mqd-cli sub with `args`, once its `topics` subscriptions are in place."""
    before = subscriptions(server)
    c = clis(server, "sub", *args)
    wait_subscriptions(server, before + topics)
    return c


def publish(server, topic, *msgs, **extra):
    c = server.client()
    for m in msgs:
        send(c, topic, m, **extra)
    c.close()


# -- sub ---------------------------------------------------------------------

def test_sub_prints_each_msg_on_its_line_and_count_exits_0(server, topic):
    publish(server, topic, "one", "two", "three")
    status, out, err = run_cli(server, "sub", topic, "--count", "2")
    assert (status, out, err) == (0, b"one\ntwo\n", "")


def test_sub_json_prints_the_delivered_object(server, topic):
    publish(server, topic, "a\tb")
    status, out, _ = run_cli(server, "sub", topic, "--format", "json", "--count", "1")
    assert status == 0 and out.count(b"\n") == 1 and out.endswith(b"}\n")
    assert json.loads(out) == {"command": "send", "topic": topic, "msg": "a\tb",
                               "delivery": "all", "index": 0}


def test_sub_index_prints_topic_index_and_msg_with_tabs(server, topic):
    publish(server, topic, "first", "second words")
    status, out, _ = run_cli(server, "sub", topic, "--format=index", "--count", "2")
    assert status == 0
    assert out.decode() == f"{topic}\t0\tfirst\n{topic}\t1\tsecond words\n"


def test_sub_prints_live_messages_as_they_arrive(clis, mserver):
    sub = live_sub(clis, mserver, "news", "sport", "--format", "index", topics=2)
    c = mserver.client()
    for topic, msg in [("news", "n0"), ("sport", "s0"), ("news", "n1")]:
        send(c, topic, msg)
        # read while mqd-cli still runs: each line is flushed as it comes
        assert sub.line().decode().split("\t") == [topic, msg[1], msg]
    c.close()
    assert sub.proc.poll() is None


def test_last_seen_replays_only_later_messages(server, topic):
    publish(server, topic, *[f"m{i}" for i in range(5)])
    status, out, _ = run_cli(server, "sub", topic, "--last-seen", "2", "--count", "2",
                             "--format", "index")
    assert status == 0 and out.decode() == f"{topic}\t3\tm3\n{topic}\t4\tm4\n"
    status, out, _ = run_cli(server, "sub", topic, "--last-seen=-7", "--count", "5")
    assert status == 0 and out == b"m0\nm1\nm2\nm3\nm4\n"


def test_a_large_last_seen_goes_as_an_integer(clis, mserver):
    """cJSON prints numbers as doubles (1e+17); mqd wants an integer literal."""
    publish(mserver, "t", "cached")
    sub = live_sub(clis, mserver, "t", "--last-seen", "100000000000000000", "--format", "index")
    publish(mserver, "t", "live")
    assert sub.line() == b"t\t1\tlive"
    status, out, _ = run_cli(mserver, "sub", "t", "--last-seen", "-9223372036854775808",
                             "--count", "2")
    assert (status, out) == (0, b"cached\nlive\n")


def test_no_cache_replays_nothing(clis, mserver):
    publish(mserver, "t", "cached")
    sub = live_sub(clis, mserver, "t", "--no-cache", "--count", "1")
    publish(mserver, "t", "live")
    assert sub.line() == b"live"
    assert sub.wait() == 0


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_sub_exits_0_on_sigint_and_sigterm(clis, mserver, sig):
    sub = live_sub(clis, mserver, "t")
    publish(mserver, "t", "before")
    assert sub.line() == b"before"
    sub.proc.send_signal(sig)
    assert sub.wait() == 0 and sub.stderr() == ""


def test_sub_exits_1_when_the_server_dies(clis):
    server = Server("--metrics", "0")
    try:
        sub = live_sub(clis, server, "t")
        server.proc.kill()
        assert sub.wait() == 1
        assert re.fullmatch(r"mqd-cli: connection (closed by the server|lost: .*)\n",
                            sub.stderr())
    finally:
        server.stop()


def test_a_refused_subscribe_exits_3_with_the_reason(server):
    status, out, err = run_cli(server, "sub", "ok", b"bad\xff")
    assert (status, out, err) == (3, b"", "mqd-cli: Could not decode input as UTF-8\n")


def test_a_topic_over_max_line_exits_3_with_the_reason(start):
    server = start("--max-line", "100")
    status, _, err = run_cli(server, "sub", "x" * 200)
    assert (status, err) == (3, "mqd-cli: Line too long\n")


# -- pub ---------------------------------------------------------------------

def test_pub_sends_one_message(server, clients, topic):
    c = clients()
    subscribe(c, topic)
    status, out, err = run_cli(server, "pub", topic, "hello")
    assert (status, out, err) == (0, b"", "")
    m = c.line()
    assert m == {"command": "send", "topic": topic, "msg": "hello", "delivery": "all",
                 "index": 0}


def test_pub_sends_10000_stdin_lines_in_order(server, clients, topic):
    c = clients()
    subscribe(c, topic)
    lines = [f"line {i} " + "x" * (i % 50) for i in range(10000)]
    status, _, err = run_cli(server, "pub", topic,
                             stdin="".join(l + "\n" for l in lines).encode())
    assert (status, err) == (0, "")
    got = c.lines(10000)
    assert [m["msg"] for m in got] == lines
    assert [m["index"] for m in got] == list(range(10000))
    c.sync()   # and nothing more


def test_pub_stdin_keeps_every_byte_but_the_newline(server, clients, topic):
    c = clients()
    subscribe(c, topic)
    stdin = b"crlf\r\n\n  spaces  \nno newline at the end"
    status, _, _ = run_cli(server, "pub", topic, stdin=stdin)
    assert status == 0
    assert [m["msg"] for m in c.lines(4)] == ["crlf\r", "", "  spaces  ", "no newline at the end"]
    c.sync()


def test_pub_of_empty_stdin_sends_nothing(server, clients, topic):
    c = clients()
    subscribe(c, topic)
    assert run_cli(server, "pub", topic, stdin=b"")[0] == 0
    c.sync()


@pytest.mark.parametrize("msg", TRICKY_MESSAGES)
def test_messages_round_trip_exactly_through_pub_and_sub_json(clis, mserver, msg):
    topic = "tricky " + msg[:20]
    sub = live_sub(clis, mserver, topic, "--format", "json")
    watcher = mserver.client()
    subscribe(watcher, topic)
    status, _, err = run_cli(mserver, "pub", topic, msg)
    assert (status, err) == (0, "")
    delivered = json.loads(sub.line())
    assert (delivered["topic"], delivered["msg"]) == (topic, msg)
    assert watcher.line()["msg"] == msg   # what the server holds, read by another client
    watcher.close()


def test_tricky_stdin_lines_round_trip_exactly(clis, mserver):
    lines = [m for m in TRICKY_MESSAGES if "\n" not in m]
    sub = live_sub(clis, mserver, "t", "--format", "json")
    stdin = "".join(m + "\n" for m in lines).encode()
    assert run_cli(mserver, "pub", "t", stdin=stdin)[0] == 0
    assert [json.loads(sub.line())["msg"] for _ in lines] == lines


def test_a_msg_holding_u0000_is_whole_in_json_and_cut_in_msg(clis, mserver):
    json_sub = live_sub(clis, mserver, "t", "--format", "json", "--count", "1")
    msg_sub = live_sub(clis, mserver, "t", "--count", "1")
    c = mserver.client()
    send(c, "t", "before\x00after")
    c.close()
    assert json.loads(json_sub.line())["msg"] == "before\x00after"
    assert msg_sub.line() == b"before"
    assert json_sub.wait() == 0 and msg_sub.wait() == 0


def test_pub_one_goes_to_one_subscriber(server, clients, topic):
    a, b = clients(), clients()
    subscribe(a, topic)
    subscribe(b, topic)
    for i in range(20):
        assert run_cli(server, "pub", topic, str(i), "--one")[0] == 0
    got = []
    for c in (a, b):
        c.send('{"command":"unsubscribe","topic":"sync"}\n')
        while (line := c.line()) != {"success": True}:
            got.append(line)
    assert sorted(int(m["msg"]) for m in got) == list(range(20))
    assert {m["delivery"] for m in got} == {"one"}


def test_pub_one_without_subscribers_is_cached_for_the_next(server, clients, topic):
    assert run_cli(server, "pub", topic, "kept", "--one")[0] == 0
    late = clients()
    subscribe(late, topic)
    assert late.line()["msg"] == "kept"
    again = clients()
    subscribe(again, topic)
    again.sync()   # handed over once, then gone from the cache


def test_pub_no_cache_keeps_it_out_of_the_cache(server, clients, topic):
    c = clients()
    assert run_cli(server, "pub", topic, "gone", "--no-cache")[0] == 0
    assert run_cli(server, "pub", topic, "kept")[0] == 0
    subscribe(c, topic)
    m = c.line()
    assert (m["msg"], m["index"]) == ("kept", 1)
    c.sync()


def test_pub_refused_exits_3_with_the_reason(start):
    server = start("--max-line", "100")
    status, _, err = run_cli(server, "pub", "t", "x" * 200)
    assert (status, err) == (3, "mqd-cli: Line too long\n")
    status, _, err = run_cli(server, "pub", b"\xc0\xaf", "m")
    assert (status, err) == (3, "mqd-cli: Could not decode input as UTF-8\n")


def test_pub_stdin_refused_names_the_line_after_sending_those_before(start):
    server = start("--max-line", "100")
    c = server.client()
    subscribe(c, "t")
    status, _, err = run_cli(server, "pub", "t", stdin=b"a\nb\n" + b"x" * 200 + b"\n")
    assert (status, err) == (3, "mqd-cli: Line too long (stdin line 3)\n")
    assert [m["msg"] for m in c.lines(2)] == ["a", "b"]
    c.close()


def test_pub_refuses_a_stdin_line_holding_nul_after_sending_those_before(server, clients, topic):
    c = clients()
    subscribe(c, topic)
    status, _, err = run_cli(server, "pub", topic, stdin=b"a\nb\nc\x00d\ne\n")
    assert status == 1
    assert err == "mqd-cli: stdin line 3 holds a NUL byte, which cannot be sent\n"
    assert [m["msg"] for m in c.lines(2)] == ["a", "b"]
    c.sync()   # nothing of line 3 or after


def test_pub_notices_a_dead_server_while_stdin_is_quiet(clis):
    server = Server()
    try:
        r, w = os.pipe()
        pub = clis(server, "pub", "t", stdin=r)
        os.close(r)
        c = server.client()
        subscribe(c, "t")
        os.write(w, b"first\n")
        assert c.line()["msg"] == "first"   # mqd-cli is connected
        server.proc.kill()
        assert pub.wait() == 1   # with stdin still open and silent
        assert "mqd-cli: connection " in pub.stderr()
        os.close(w)
        c.close()
    finally:
        server.stop()


def test_too_many_connections_exits_1_with_the_reason(start):
    server = start("--max-clients", "1")
    c = server.client()
    subscribe(c, "t")
    status, _, err = run_cli(server, "pub", "t", "m")
    assert (status, err) == (1, "mqd-cli: connection refused by the server: "
                                "Too many connections\n")
    c.close()


# -- raw ---------------------------------------------------------------------

def test_raw_pretty_prints_replies_and_deliveries(server, topic):
    stdin = (json.dumps({"command": "subscribe", "topic": topic}) + "\n" +
             json.dumps({"command": "send", "topic": topic, "msg": "hi", "delivery": "all"}) +
             "\nnot json\n\n").encode()
    status, out, err = run_cli(server, "raw", stdin=stdin)
    assert (status, err) == (0, "")
    assert out.decode() == (
        '{\n\t"success":\ttrue\n}\n'
        '{\n\t"command":\t"send",\n\t"topic":\t"%s",\n\t"msg":\t"hi",\n'
        '\t"delivery":\t"all",\n\t"index":\t0\n}\n'
        '{\n\t"success":\ttrue\n}\n'
        '{\n\t"success":\tfalse,\n\t"reason":\t"Could not parse json"\n}\n' % topic)


def test_raw_sends_a_last_line_without_newline_and_waits_for_its_reply(server, topic):
    stdin = json.dumps({"command": "unsubscribe", "topic": topic}).encode()
    status, out, _ = run_cli(server, "raw", stdin=stdin)
    assert (status, out) == (0, b'{\n\t"success":\ttrue\n}\n')


def test_raw_quit_ends_the_session(server):
    status, out, err = run_cli(server, "raw", stdin=b'  quit \r\n{"command":"x"}\n')
    assert (status, out, err) == (0, b"", "")


def test_raw_takes_only_quit_itself_as_quit(server):
    status, out, _ = run_cli(server, "raw", stdin=b'quitting\n"quit"\n{"command":"x"}\n')
    assert status == 0
    assert out.count(b'"Could not parse json"') == 1 and out.count(b'"Malformed json') == 2


def test_raw_quit_ends_the_session_while_stdin_stays_open(clis, server):
    r, w = os.pipe()
    raw = clis(server, "raw", stdin=r)
    os.close(r)
    os.write(w, b"quit\n")
    assert raw.wait() == 0 and raw.stderr() == ""
    os.close(w)


def test_raw_exits_1_when_the_server_closes_first(clis):
    server = Server()
    try:
        r, w = os.pipe()
        raw = clis(server, "raw", stdin=r)
        os.close(r)
        os.write(w, b'{"command":"subscribe","topic":"t"}\n')
        assert raw.line() == b"{"
        server.stop()
        assert raw.wait() == 1
        assert raw.stderr() == "mqd-cli: connection closed by the server\n"
        os.close(w)
    finally:
        server.stop()


# -- the command line ----------------------------------------------------------

def test_help_and_version():
    status, out, err = run_cli(None, "--help")
    assert status == 0 and err == "" and out.startswith(b"Usage: mqd-cli")
    assert run_cli(None, "-h")[1] == out
    _, mqd_version, _ = run_mqd("--version")
    status, out, _ = run_cli(None, "--version")
    assert (status, out.decode()) == (0, mqd_version.replace("mqd", "mqd-cli"))
    assert run_cli(None, "-V")[1] == out


@pytest.mark.parametrize("args, named", [
    ([], "no command"),
    (["bogus"], "'bogus'"),
    (["sub"], "TOPIC"),
    (["pub"], "TOPIC"),
    (["pub", "t", "m", "extra"], "'extra'"),
    (["raw", "x"], "'x'"),
    (["--bogus", "raw"], "'--bogus'"),
    (["-x", "raw"], "'-x'"),
    (["sub", "t", "--count"], "'--count'"),
    (["sub", "t", "--count", "0"], "'0'"),
    (["sub", "t", "--count", "-1"], "'-1'"),
    (["sub", "t", "--count", "2x"], "'2x'"),
    (["sub", "t", "--last-seen", "1.5"], "'1.5'"),
    (["sub", "t", "--last-seen", "99999999999999999999"], "'99999999999999999999'"),
    (["sub", "t", "--format", "xml"], "'xml'"),
    (["-p", "0", "raw"], "'0'"),
    (["-p", "65536", "raw"], "'65536'"),
    (["--port", "http", "raw"], "'http'"),
    (["-H", "", "raw"], "host"),
    (["pub", "t", "--count", "1"], "--count is not an option of pub"),
    (["pub", "t", "--format", "json"], "--format is not an option of pub"),
    (["sub", "t", "--one"], "--one is not an option of sub"),
    (["raw", "--no-cache"], "--no-cache is not an option of raw"),
    (["--help=yes"], "'--help=yes'"),
])
def test_bad_usage_exits_2_with_one_line_and_the_usage(args, named):
    status, out, err = run_cli(None, *args)
    assert status == 2 and out == b""
    first, rest = err.split("\n", 1)
    assert first.startswith("mqd-cli: ") and named in first
    assert rest.startswith("Usage: mqd-cli")


def test_options_may_follow_the_command_and_dashes_end_them(clients, topic):
    c = clients()
    subscribe(c, topic)
    port = str(c.sock.getpeername()[1])
    status, _, _ = run_cli(None, "pub", topic, "--port", port, "--", "-5")
    assert status == 0 and c.line()["msg"] == "-5"


def test_connection_refused_exits_1():
    port = free_port()   # nothing listens there
    for command in (["sub", "t"], ["pub", "t", "m"], ["raw"]):
        status, out, err = run_cli(None, "-p", str(port), *command)
        assert (status, out) == (1, b"")
        assert err == f"mqd-cli: cannot connect to 127.0.0.1:{port}: Connection refused\n"


def test_a_host_name_is_resolved_and_each_address_tried(server, clients, topic):
    """localhost (from /etc/hosts) may give ::1 first, where mqd does not listen."""
    c = clients()
    subscribe(c, topic)
    assert run_cli(server, "-H", "localhost", "pub", topic, "via localhost")[0] == 0
    assert c.line()["msg"] == "via localhost"


def test_an_ipv6_address_is_bracketed_in_errors():
    port = free_port()
    status, _, err = run_cli(None, "-H", "::1", "-p", str(port), "raw")
    assert status == 1 and err.startswith(f"mqd-cli: cannot connect to [::1]:{port}: ")


# -- the man page (test_manpage.py renders it) ---------------------------------

def test_the_man_page_has_every_option_and_the_version():
    page = open(MAN_PAGE).read().replace("\\-", "-")
    options_section = page.split("\n.SH OPTIONS\n")[1].split("\n.SH ")[0]
    _, usage, _ = run_cli(None, "--help")
    options = set(re.findall(r"(?<![\w-])(--?[A-Za-z][a-z-]*)", usage.decode()))
    assert {"-H", "--host", "--last-seen", "--format", "--one", "-V"} <= options
    for option in options:
        assert re.search(r"^\.B[IR]? .*(?<![\w-])%s(?![\w-])" % re.escape(option),
                         options_section, re.M), option
    _, version, _ = run_cli(None, "--version")
    assert f'"{version.decode().strip()}"' in page.splitlines()[0]


# -- TLS and logins ----------------------------------------------------------

def test_tls_checks_the_server_and_talks(tmp_path):
    pytest.importorskip("cryptography.x509")
    from tls_certs import make_pki
    pki = make_pki(tmp_path)
    server = Server("--tls-port", "0", "--tls-cert", str(pki / "server.pem"),
                    "--tls-key", str(pki / "server.key"), "--no-plain")
    port = next(int(line.rsplit(":", 1)[1]) for line in server.stderr().splitlines()
                if "listening for TLS" in line)
    base = [CLI, "-p", str(port), "--tls", "--tls-ca", str(pki / "ca.pem")]
    sub = subprocess.Popen([*base, "sub", "secure", "--count", "2"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, env=cli_env())
    time.sleep(0.5)
    pub = subprocess.run([*base, "pub", "secure"], input=b"one\ntwo\n", capture_output=True,
                         timeout=TIMEOUT, env=cli_env())
    assert pub.returncode == 0, pub.stderr
    out, err = sub.communicate(timeout=TIMEOUT)
    assert (sub.returncode, out) == (0, b"one\ntwo\n"), err
    # an unknown CA fails the handshake, with the reason
    p = subprocess.run([CLI, "-p", str(port), "--tls", "pub", "t", "m"], capture_output=True,
                       timeout=TIMEOUT, env=cli_env(), stdin=subprocess.DEVNULL)
    assert p.returncode == 1
    assert b"TLS handshake with 127.0.0.1:" in p.stderr and b"certificate" in p.stderr
    # raw over TLS: the end of stdin ends the session cleanly
    p = subprocess.run([*base, "raw"], input=b'{"command":"subscribe","topic":"x"}\n',
                       capture_output=True, timeout=TIMEOUT, env=cli_env())
    assert p.returncode == 0 and b'"success":\ttrue' in p.stdout, p.stderr   # pretty-printed


def test_a_user_logs_in_from_a_password_file(tmp_path):
    import base64
    import hashlib
    salt = os.urandom(16)
    digest = hashlib.pbkdf2_hmac("sha256", b"s3cret pw", salt, 1000)
    b64 = lambda b: base64.b64encode(b).decode().rstrip("=")   # noqa: E731
    (tmp_path / "users").write_text(
        f"ann $pbkdf2-sha256$i=1000${b64(salt)}${b64(digest)} publish=t subscribe=t\n")
    (tmp_path / "pw").write_text("s3cret pw\n")
    (tmp_path / "bad").write_text("wrong\n")
    server = Server("--users", str(tmp_path / "users"))
    status, _, err = run_cli(server, "--user", "ann", "--password-file", str(tmp_path / "pw"),
                             "pub", "t", "hello")
    assert status == 0, err
    status, _, err = run_cli(server, "pub", "t", "hello")
    assert status == 3 and "Authentication required" in err
    status, _, err = run_cli(server, "--user", "ann", "--password-file", str(tmp_path / "bad"),
                             "pub", "t", "hello")
    assert status == 1 and "login as ann refused: Authentication failed" in err
    status, _, err = run_cli(server, "--user", "ann", "--password-file",
                             str(tmp_path / "missing"), "pub", "t", "x")
    assert status == 1 and "cannot read the password from" in err
    status, _, err = run_cli(server, "--user", "ann", "--password-file", str(tmp_path / "pw"),
                             "pub", "other", "x")
    assert status == 3 and "Permission denied" in err


@pytest.mark.parametrize("args, message", [
    (["--tls-ca", "x"], "--tls-ca, --tls-cert and --tls-key need --tls"),
    (["--tls", "--tls-cert", "x"], "--tls-cert and --tls-key go together"),
    (["--user", "ann"], "--user and --password-file go together"),
    (["--password-file", "f"], "--user and --password-file go together"),
])
def test_connection_options_that_need_one_another(args, message):
    status, _, err = run_cli(None, *args, "pub", "t", "m")
    assert status == 2 and message in err
