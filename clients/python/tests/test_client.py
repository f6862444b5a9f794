"""mqd_client against a real mqd (conftest.py starts it on a free loopback
port), and against a scripted loopback listener for what mqd never sends."""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import zipfile

import pytest

from mqd_harness import TIMEOUT, free_port
import mqd_client
from mqd_client import (Client, CommandError, ConnectionClosed, Message, MqdError,
                        ProtocolError, Timeout)

CLIENT_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def drain(client):
    """Every message delivered to `client` so far, and proof there is no other:
    the reply to a no-op command comes after every line queued before it."""
    client.unsubscribe("\x01sync")
    return [client.receive(0) for _ in range(client.queued)]


def indexes(messages):
    return [m.index for m in messages]


class FakeServer:
    """A loopback listener that plays a script: it sends `greeting` when the
    client connects, then answers each line it reads with the next of
    `replies`; with `close`, it closes the connection once they are used up.
    It records what it received."""

    def __init__(self, greeting=b"", replies=(), close=False):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(TIMEOUT)
        self.port = self.listener.getsockname()[1]
        self.received = b""
        self.accepted = threading.Event()
        self.thread = threading.Thread(target=self._serve,
                                       args=(greeting, list(replies), close))
        self.thread.start()

    def _serve(self, greeting, replies, close):
        try:
            conn, _ = self.listener.accept()
        except OSError:
            return
        self.accepted.set()
        with conn:
            conn.settimeout(TIMEOUT)
            conn.sendall(greeting)
            answered = 0
            while True:
                try:
                    chunk = conn.recv(65536)
                except OSError:
                    return
                if not chunk:
                    return
                self.received += chunk
                for _ in range(self.received.count(b"\n") - answered):
                    answered += 1
                    if replies:
                        conn.sendall(replies.pop(0))
                    if close and not replies:
                        return

    def stop(self):
        if not self.accepted.is_set():   # wake up accept()
            socket.create_connection(("127.0.0.1", self.port)).close()
        self.thread.join(TIMEOUT)
        self.listener.close()
        assert not self.thread.is_alive()


@pytest.fixture
def fake():
    made = []

    def _fake(greeting=b"", replies=(), close=False):
        made.append(FakeServer(greeting, replies, close))
        return made[-1]
    yield _fake
    for f in made:
        f.stop()


# -- commands and deliveries ---------------------------------------------

def test_a_subscriber_receives_what_is_sent(connect):
    reader, writer = connect(), connect()
    reader.subscribe("news")
    writer.send("news", "hello")
    assert reader.receive(TIMEOUT) == Message("news", "hello", 0)
    assert drain(reader) == []
    assert drain(writer) == []


def test_a_message_to_oneself_arrives_before_the_reply_and_is_kept(connect):
    c = connect()
    c.subscribe("t")
    c.send("t", "mine")
    # read while waiting for the send's reply: already here, no read needed
    assert c.queued == 1
    assert c.receive(0) == Message("t", "mine", 0)


def test_messages_read_while_waiting_for_a_reply_are_queued_in_order(connect):
    c, writer = connect(), connect()
    c.subscribe("t")
    for i in range(200):
        writer.send("t", str(i))
    c.subscribe("other")   # its reply comes after the 200 messages
    assert c.queued == 200
    got = list(c.messages(timeout=0))
    assert got == [Message("t", str(i), i) for i in range(200)]


def test_unsubscribe_stops_delivery_and_keeps_what_came_before(connect):
    c, writer = connect(), connect()
    c.subscribe("t")
    writer.send("t", "before")
    c.unsubscribe("t")
    writer.send("t", "after")
    assert indexes(drain(c)) == [0]


def test_unsubscribing_from_a_topic_never_joined_is_fine(connect):
    c = connect()
    c.unsubscribe("never")
    assert drain(c) == []


def test_request_sends_any_command_and_returns_the_reply(connect):
    c = connect()
    assert c.request({"command": "subscribe", "topic": "t"}) == {"success": True}
    c.request({"command": "send", "topic": "t", "msg": "raw", "delivery": "all"})
    assert drain(c) == [Message("t", "raw", 0)]


def test_receive_and_messages_hand_out_messages_one_by_one(connect):
    c = connect()
    c.subscribe("t")
    for msg in "abc":
        c.send("t", msg)
    assert c.receive() == Message("t", "a", 0)
    assert [m.msg for m in c.messages(timeout=0)] == ["b", "c"]
    assert c.queued == 0


# -- cache and last_seen ------------------------------------------------

@pytest.fixture
def five_cached(connect):
    """A topic "t" that was sent five messages (indexes 0 to 4), all cached."""
    writer = connect()
    for i in range(5):
        writer.send("t", str(i))
    return writer


@pytest.mark.parametrize("kwargs, replayed", [
    ({}, [0, 1, 2, 3, 4]),
    ({"last_seen": 2}, [3, 4]),
    ({"last_seen": -1}, [0, 1, 2, 3, 4]),
    ({"last_seen": 4}, []),
    ({"last_seen": 2 ** 80}, []),
    ({"last_seen": -2 ** 80}, [0, 1, 2, 3, 4]),
    ({"cache": False}, []),
    ({"cache": True, "last_seen": 3}, [4]),
    ({"cache": False, "last_seen": 0}, []),
])
def test_subscribe_replays_the_cache_above_last_seen(connect, five_cached, kwargs, replayed):
    c = connect()
    c.subscribe("t", **kwargs)
    assert indexes(drain(c)) == replayed


def test_subscribing_again_replays_the_cache_again(connect, five_cached):
    c = connect()
    c.subscribe("t", last_seen=3)
    c.subscribe("t", last_seen=3)
    assert indexes(drain(c)) == [4, 4]
    five_cached.send("t", "new")
    assert indexes(drain(c)) == [5]   # subscribed once: delivered once


def test_a_message_sent_with_cache_false_is_not_replayed(connect):
    writer = connect()
    writer.send("t", "kept")
    writer.send("t", "not kept", cache=False)
    writer.send("t", "kept too", cache=True)
    c = connect()
    c.subscribe("t")
    assert [(m.index, m.msg) for m in drain(c)] == [(0, "kept"), (2, "kept too")]


# -- delivery "one" -----------------------------------------------------

def test_delivery_one_reaches_exactly_one_subscriber(connect):
    a, b, writer = connect(), connect(), connect()
    a.subscribe("t")
    b.subscribe("t")
    for i in range(40):
        writer.send("t", str(i), delivery="one")
    got = indexes(drain(a)) + indexes(drain(b))
    assert sorted(got) == list(range(40))


def test_delivery_one_without_subscribers_waits_for_the_next_one(connect):
    writer, first, second = connect(), connect(), connect()
    writer.send("t", "for one", delivery="one")
    writer.send("t", "for one, not cached", delivery="one", cache=False)
    first.subscribe("t")
    assert drain(first) == [Message("t", "for one", 0)]
    second.subscribe("t")
    assert drain(second) == []


# -- text ---------------------------------------------------------------

TEXTS = ["", "plain", "é", "日本語", "😀", "a\nb\r\nc\td", "\u2028\u2029", "\ufeff",
         '"quoted" \\ back/slash', "\x01\x1f\x7f", "e\u0301"]


@pytest.mark.parametrize("text", TEXTS)
def test_topics_and_messages_arrive_as_sent(connect, text):
    c = connect()
    c.subscribe(text)
    c.send(text, text)
    c.send(text, "nul \x00 inside" + text)
    assert drain(c) == [Message(text, text, 0), Message(text, "nul \x00 inside" + text, 1)]


def test_a_surrogate_pair_in_a_python_string_is_sent_as_its_character(connect):
    c = connect()
    c.subscribe("\ud83d\ude00")
    c.send("😀", "pair: \ud83d\ude00")
    assert drain(c) == [Message("😀", "pair: 😀", 0)]


@pytest.mark.parametrize("bad", ["\ud800", "a\udc00", "\ude00\ud83d", "x\udcff y"])
def test_an_unpaired_surrogate_is_refused_before_sending(connect, bad):
    c = connect()
    with pytest.raises(ValueError, match="surrogate"):
        c.send("t", bad)
    with pytest.raises(ValueError, match="surrogate"):
        c.subscribe(bad)
    assert drain(c) == []


def test_non_ascii_goes_out_as_utf_8_in_one_compact_line(fake):
    f = fake(replies=[b'{"success": true}\r\n'] * 2)
    c = Client(port=f.port)
    c.send("t\u00e9", "\U0001F600\ud83d\ude00 \x00\n")
    c.subscribe("t", last_seen=-3, cache=False)
    c.close()
    f.stop()
    assert f.received == (
        '{"command":"send","topic":"té","msg":"😀😀 \\u0000\\n","delivery":"all"}\n'
        '{"command":"subscribe","topic":"t","last_seen":-3,"cache":false}\n'
        'quit\n').encode()


def test_a_message_larger_than_the_socket_buffers(start, connect):
    server = start("--max-line", "16m")
    reader, writer = connect(server.port), connect(server.port)
    msg = "0123456789abcdé😀" * (1 << 19)   # 9 MiB in UTF-8
    buffers = max(reader._sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF),
                  writer._sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF))
    assert len(msg.encode()) > 2 * buffers
    reader.subscribe("big")
    writer.subscribe("big")
    writer.send("big", msg)   # its own copy arrives while it waits for the reply
    assert writer.queued == 1
    assert writer.receive(0) == Message("big", msg, 0)
    assert reader.receive(TIMEOUT) == Message("big", msg, 0)


# -- arguments ----------------------------------------------------------

@pytest.mark.parametrize("call, error", [
    (lambda c: c.subscribe(5), TypeError),
    (lambda c: c.subscribe(b"t"), TypeError),
    (lambda c: c.subscribe(None), TypeError),
    (lambda c: c.subscribe("t\x00"), ValueError),
    (lambda c: c.subscribe("t", last_seen=True), TypeError),
    (lambda c: c.subscribe("t", last_seen=1.0), TypeError),
    (lambda c: c.subscribe("t", last_seen="1"), TypeError),
    (lambda c: c.subscribe("t", cache=1), TypeError),
    (lambda c: c.subscribe("t", cache="false"), TypeError),
    (lambda c: c.unsubscribe(["t"]), TypeError),
    (lambda c: c.send("t", 5), TypeError),
    (lambda c: c.send("t", b"bytes"), TypeError),
    (lambda c: c.send(1, "m"), TypeError),
    (lambda c: c.send("t\x00", "m"), ValueError),
    (lambda c: c.send("t", "m", delivery="some"), ValueError),
    (lambda c: c.send("t", "m", delivery="ALL"), ValueError),
    (lambda c: c.send("t", "m", delivery=None), TypeError),
    (lambda c: c.send("t", "m", cache=0), TypeError),
    (lambda c: c.request([("command", "subscribe")]), TypeError),
    (lambda c: c.request({"command": "send", "x": float("nan")}), ValueError),
    (lambda c: c.request({"command": object()}), TypeError),
    (lambda c: c.receive(timeout=-1), ValueError),
    (lambda c: c.receive(timeout="1"), TypeError),
    (lambda c: c.messages(timeout=True), TypeError),
])
def test_bad_arguments_are_refused_and_nothing_is_sent(connect, call, error):
    c = connect()
    with pytest.raises(error):
        call(c)
    assert drain(c) == []
    assert not c.closed


class Seven:
    """An integer type that is not int, as numpy's are."""

    def __index__(self):
        return 7


def test_what_the_server_accepts_is_not_refused(connect):
    c = connect()
    c.subscribe("", last_seen=Seven(), cache=True)
    c.send("", "", delivery="one", cache=False)
    c.subscribe("t", last_seen=-2 ** 100)
    c.subscribe("t", last_seen=2 ** 100)
    assert drain(c) == [Message("", "", 0)]


# -- errors -------------------------------------------------------------

def test_the_exceptions_form_one_hierarchy():
    for error in (CommandError, ProtocolError, ConnectionClosed, Timeout):
        assert issubclass(error, MqdError)
    assert issubclass(ConnectionClosed, ConnectionError)
    assert issubclass(Timeout, TimeoutError)


@pytest.mark.parametrize("command, reason", [
    ({"command": "publish", "topic": "t"}, "Malformed json message"),
    ({"command": "subscribe", "topic": "t", "last_seen": 1.5}, "Malformed json message"),
    ({"command": "send", "topic": "t", "msg": "m"}, "Malformed json message"),
    ({"command": "subscribe", "topic": "\ud800"}, "Could not parse json"),
])
def test_a_refused_command_raises_command_error_with_the_reason(connect, command, reason):
    c = connect()
    with pytest.raises(CommandError) as caught:
        c.request(command)
    assert caught.value.reason == reason
    assert caught.value.command == command
    assert reason in str(caught.value)
    c.subscribe("t")   # the connection goes on
    assert drain(c) == []


def test_a_line_too_long_raises_command_error_and_the_next_works(start, connect):
    server = start("--max-line", "1k")
    c = connect(server.port)
    c.subscribe("t")
    with pytest.raises(CommandError) as caught:
        c.send("t", "x" * 2000)
    assert caught.value.reason == "Line too long"
    assert caught.value.command["command"] == "send"
    c.send("t", "short")
    assert drain(c) == [Message("t", "short", 0)]


def test_a_refused_connection_raises_connection_closed_with_the_reason(start, connect):
    server = start("--max-clients", "1")
    kept = connect(server.port)
    kept.subscribe("t")
    extra = connect(server.port)
    with pytest.raises(ConnectionClosed) as caught:
        extra.subscribe("t")
    assert caught.value.reason == "Too many connections"
    assert extra.closed
    assert drain(kept) == []


@pytest.mark.parametrize("reply", [
    b"not json\r\n",
    b"\xff\xfe\r\n",
    b"[1, 2]\r\n",
    b'"success"\r\n',
    b'{"hello": "world"}\r\n',
    b'{"success": "yes"}\r\n',
    b'{"success": false}\r\n',
    b'{"success": false, "reason": 3}\r\n',
    b'{"topic": "t", "msg": 5, "index": 0}\r\n',
    b'{"topic": "t", "msg": "m", "index": true}\r\n',
    b'{"topic": "t", "msg": "m", "index": 1.0}\r\n',
    b'{"topic": null, "msg": "m", "index": 1}\r\n',
])
def test_a_line_out_of_protocol_raises_protocol_error_and_closes(fake, reply):
    f = fake(replies=[reply])
    c = Client(port=f.port)
    with pytest.raises(ProtocolError):
        c.subscribe("t")
    assert c.closed
    with pytest.raises(ConnectionClosed):
        c.subscribe("t")


def test_a_reply_no_command_waits_for_is_a_protocol_error(fake):
    f = fake(greeting=b'{"success": true}\r\n')
    c = Client(port=f.port)
    with pytest.raises(ProtocolError):
        c.receive(TIMEOUT)
    assert c.closed


def test_a_connection_ending_inside_a_line_is_a_close_not_a_protocol_error(fake):
    """mqd cuts a slow consumer wherever its queue stands."""
    f = fake(replies=[b'{"success": tr'], close=True)
    c = Client(port=f.port)
    with pytest.raises(ConnectionClosed) as caught:
        c.subscribe("t")
    assert not isinstance(caught.value, ProtocolError)
    assert "cut line dropped" in str(caught.value)
    assert c.closed


def test_lines_ended_by_a_bare_newline_are_read_too(fake):
    f = fake(greeting=b'{"topic": "t", "msg": "m", "index": 0}\n',
             replies=[b'{"success": true}\n'])
    c = Client(port=f.port)
    c.subscribe("t")
    assert c.receive(0) == Message("t", "m", 0)
    c.close()


# -- the connection -----------------------------------------------------

def test_close_says_quit_and_closes_once(fake):
    f = fake(replies=[b'{"success": true}\r\n'])
    c = Client(port=f.port)
    c.unsubscribe("t")
    c.close()
    c.close()
    f.stop()
    assert f.received == b'{"command":"unsubscribe","topic":"t"}\nquit\n'
    assert c.closed


def test_the_context_manager_closes_and_commands_then_fail(connect, server):
    writer = connect()
    with Client(port=server.port) as c:
        c.subscribe("t")
        writer.send("t", "m")
        c.unsubscribe("t")
    assert c.closed
    assert "closed" in repr(c)
    with pytest.raises(ConnectionClosed):
        c.send("t", "m")
    assert c.receive(0) == Message("t", "m", 0)   # what had arrived stays
    with pytest.raises(ConnectionClosed):
        c.receive(0)


def test_the_server_going_away_closes_the_client(server, connect):
    c, writer = connect(), connect()
    c.subscribe("t")
    for i in range(3):
        writer.send("t", str(i))
    assert server.stop() == 0
    # what the server wrote before it went is received, then the end
    assert indexes(c.receive(TIMEOUT) for _ in range(3)) == [0, 1, 2]
    with pytest.raises(ConnectionClosed):
        c.receive(TIMEOUT)
    assert c.closed
    with pytest.raises(ConnectionClosed):
        writer.send("t", "late")
    assert writer.closed


def test_the_server_closing_while_a_reply_is_awaited(fake):
    f = fake(close=True)
    c = Client(port=f.port)
    with pytest.raises(ConnectionClosed) as caught:
        c.subscribe("t")
    assert caught.value.reason is None
    assert c.closed


def test_connecting_where_nobody_listens_raises_oserror():
    with pytest.raises(ConnectionRefusedError):
        Client(port=free_port())


def test_client_timeout_must_be_positive_or_none(server):
    for bad, error in ((0, ValueError), (-1, ValueError), ("5", TypeError)):
        with pytest.raises(error):
            Client(port=server.port, timeout=bad)
    with Client(port=server.port, timeout=None) as c:
        c.subscribe("t")


# -- timeouts -----------------------------------------------------------

def test_receive_times_out_when_nothing_comes(connect):
    c = connect()
    c.subscribe("t")
    for wait in (0, 0.05):
        with pytest.raises(Timeout):
            c.receive(wait)
    assert list(c.messages(timeout=0.05)) == []
    assert not c.closed


def test_a_reply_late_for_its_command_is_not_taken_for_the_next(server, connect):
    c, writer = connect(timeout=0.2), connect()
    os.kill(server.proc.pid, signal.SIGSTOP)
    try:
        with pytest.raises(Timeout):
            c.request({"command": "bogus"})
    finally:
        os.kill(server.proc.pid, signal.SIGCONT)
    c.timeout = TIMEOUT
    # the late "Malformed json message" must not be read as this reply
    c.subscribe("t")
    writer.send("t", "m")
    assert drain(c) == [Message("t", "m", 0)]


def test_a_command_that_cannot_be_sent_in_time_closes_the_client(server, connect):
    c = connect(timeout=0.2)
    os.kill(server.proc.pid, signal.SIGSTOP)
    try:
        with pytest.raises(ConnectionClosed) as caught:
            c.send("t", "x" * (16 << 20))   # more than the socket buffers hold
        assert isinstance(caught.value.__cause__, TimeoutError)
    finally:
        os.kill(server.proc.pid, signal.SIGCONT)
    assert c.closed


# -- the message type, the README, the package ----------------------------

def test_a_message_is_an_immutable_triple():
    m = Message("t", "m", 3)
    topic, msg, index = m
    assert (topic, msg, index) == (m.topic, m.msg, m.index) == ("t", "m", 3)
    with pytest.raises(AttributeError):
        m.index = 4
    assert hash(m) == hash(Message("t", "m", 3))


def readme_blocks(language):
    with open(os.path.join(CLIENT_DIR, "README.md"), encoding="utf-8") as f:
        return re.findall(r"```%s\n(.*?)```" % language, f.read(), re.S)


def test_the_readme_example_runs_and_prints_what_the_readme_shows(server):
    example, shown = readme_blocks("python")[0], readme_blocks("text")[0]
    env = dict(os.environ, MQD_PORT=str(server.port), PYTHONPATH=CLIENT_DIR,
               PYTHONIOENCODING="utf-8")
    run = subprocess.run([sys.executable, "-c", example], env=env, capture_output=True,
                         encoding="utf-8", timeout=TIMEOUT * 3)
    assert run.returncode == 0, run.stderr
    assert run.stdout == shown


def test_the_package_builds_offline_into_a_wheel_of_the_module(tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "mqd_client.py", "README.md"):
        shutil.copy(os.path.join(CLIENT_DIR, name), source)
    build = ("import sys; from setuptools import build_meta; "
             "print(build_meta.build_wheel(sys.argv[1]))")
    run = subprocess.run([sys.executable, "-c", build, str(tmp_path)], cwd=source,
                         capture_output=True, text=True, timeout=TIMEOUT * 6)
    assert run.returncode == 0, run.stderr
    wheel = tmp_path / run.stdout.split()[-1]
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        metadata = z.read(next(n for n in names if n.endswith("/METADATA"))).decode()
    assert "mqd_client.py" in names
    assert "Name: mqd-client\n" in metadata
    assert f"Version: {mqd_client.__version__}\n" in metadata
    assert "Requires-Dist" not in metadata
