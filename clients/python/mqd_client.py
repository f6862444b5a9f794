"""A client for mqd, the publish/subscribe server.

mqd speaks newline-delimited JSON over TCP (docs/PROTOCOL.md in the mqd
repository). This module hides the wire format behind a blocking client:

    from mqd_client import Client

    with Client("127.0.0.1", 7000) as client:
        client.subscribe("news")
        client.send("news", "hello")
        print(client.receive(timeout=5))   # Message(topic='news', msg='hello', index=0)

Each command (`subscribe`, `unsubscribe`, `send`) waits for the server's reply
and raises `CommandError` when the server refuses it. Messages delivered to the
connection can arrive before a reply (a sender subscribed to its own topic gets
its message before the `{"success": true}` of its send); they are kept, in
order, and handed out by `receive()` and `messages()`.

A `Client` is not thread-safe: use it from one thread, or open one client per
thread (one that publishes and one that subscribes, for instance).

Standard library only.
"""

from __future__ import annotations

import collections
import json
import operator
import socket
import ssl
import time
from typing import Any, Iterator, Mapping, NamedTuple, NoReturn, Optional, Union

__all__ = [
    "Client",
    "Message",
    "MqdError",
    "CommandError",
    "ProtocolError",
    "ConnectionClosed",
    "Timeout",
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "DEFAULT_TIMEOUT",
    "DELIVERIES",
]

__version__ = "0.1.0"

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7000
DEFAULT_TIMEOUT = 10.0
"""Seconds to wait for a connection, for a command to be sent and for its reply."""

DELIVERIES = ("all", "one")
"""The values of `send`'s `delivery`: every subscriber, or one chosen at random."""

# The only reply mqd sends before any command: it then closes the connection.
_TOO_MANY_CONNECTIONS = "Too many connections"
_READ_SIZE = 65536


class MqdError(Exception):
    """Base class of the errors this module raises."""


class CommandError(MqdError):
    """The server refused a command: its reply was `{"success": false, ...}`.

    `reason` is the server's text, e.g. "Malformed json message" or "Line too
    long"; `command` is the command object that was sent. The connection stays
    open and usable.
    """

    def __init__(self, reason: str, command: Optional[Mapping[str, Any]] = None):
        self.reason = reason
        self.command = command
        name = command.get("command") if command is not None else None
        what = f"{name!r} refused" if isinstance(name, str) else "command refused"
        super().__init__(f"{what}: {reason}")


class ProtocolError(MqdError):
    """The server sent something that is not a reply or a message.

    The client cannot tell any more which reply belongs to which command, so
    it closes the connection before raising this.
    """


class ConnectionClosed(MqdError, ConnectionError):
    """The connection is closed: by `close()`, by the server, or lost.

    `reason` is the server's own reason when it gave one (mqd says "Too many
    connections" when it refuses a client), else None.
    """

    def __init__(self, message: str, reason: Optional[str] = None):
        self.reason = reason
        super().__init__(message)


class Timeout(MqdError, TimeoutError):
    """Nothing arrived in time: no reply to a command, or no message to receive.

    The connection stays usable. A reply that comes after its command timed
    out is recognised by its position and dropped, so later commands still get
    their own replies.
    """


class Message(NamedTuple):
    """A message delivered to a subscription (immutable).

    `index` is the message's position in its topic, counted from 0 by the
    server for every message sent to the topic.
    """

    topic: str
    msg: str
    index: int


class Client:
    """One connection to an mqd server.

    `Client(host, port, timeout)` connects at once. `timeout` (seconds, or
    None to wait forever) bounds the connection attempt, the sending of each
    command and the wait for its reply. Connecting raises OSError as the socket
    module does (ConnectionRefusedError, socket.gaierror, TimeoutError).

    `tls`, an `ssl.SSLContext`, speaks TLS to mqd's `--tls-port` (the
    certificate is checked against `server_hostname`, by default `host`); a
    failed handshake raises `ssl.SSLError`.

    `user` and `password` log in (`auth()`) before the constructor returns,
    for a server run with `--users`; a refused login closes the client and
    raises `CommandError` ("Authentication failed").

    Use it as a context manager, or call `close()`.
    """

    def __init__(self, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
                 timeout: Optional[float] = DEFAULT_TIMEOUT,
                 tls: Optional[ssl.SSLContext] = None, server_hostname: Optional[str] = None,
                 user: Optional[str] = None, password: Optional[str] = None):
        if (user is None) != (password is None):
            raise ValueError("user and password go together")
        self.timeout = _check_timeout(timeout)
        if self.timeout == 0:
            raise ValueError("timeout must be positive, or None to wait forever")
        self._address = (host, port)
        sock = socket.create_connection(self._address, timeout)
        # commands are short lines that wait for a reply: do not hold them back
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if tls is not None:
            try:
                sock = tls.wrap_socket(sock, server_hostname=server_hostname or host)
            except BaseException:
                sock.close()
                raise
        self._sock: Optional[socket.socket] = sock
        self._input = bytearray()
        self._scanned = 0   # bytes of _input known to hold no "\n"
        self._messages: collections.deque[Message] = collections.deque()
        self._replies_to_drop = 0   # replies owed to commands that timed out
        self._closed_because = ""
        if user is not None:
            try:
                self.auth(user, password)
            except BaseException:
                self.close()
                raise

    def auth(self, user: str, password: str) -> None:
        """Logs in as `user` on a server run with `--users`.

        Raises `CommandError` with the server's reason: "Authentication failed"
        (the same for an unknown user and a wrong password; the server closes
        the connection after the third) or "Authentication not enabled".
        """
        self._call({"command": "auth", "user": _text("user", user),
                    "password": _text("password", password)})

    # -- commands -------------------------------------------------------

    def subscribe(self, topic: str, last_seen: Optional[int] = None,
                  cache: Optional[bool] = None) -> None:
        """Joins `topic`; its messages are delivered to this client from now on.

        Unless `cache` is False, the topic's cached messages with an index
        above `last_seen` are delivered right after the reply (all of them
        when `last_seen` is None). Subscribing again to a topic is not an error:
        it only replays the cache again. Cached messages sent with
        `delivery="one"` leave the cache when they are replayed.
        """
        command: dict[str, Any] = {"command": "subscribe", "topic": _topic(topic)}
        if last_seen is not None:
            command["last_seen"] = _integer("last_seen", last_seen)
        if cache is not None:
            command["cache"] = _boolean("cache", cache)
        self._call(command)

    def unsubscribe(self, topic: str) -> None:
        """Leaves `topic` (leaving a topic never joined is fine too).

        Messages of the topic that arrived before the reply stay queued.
        """
        self._call({"command": "unsubscribe", "topic": _topic(topic)})

    def send(self, topic: str, msg: str, delivery: str = "all",
             cache: Optional[bool] = None) -> None:
        """Sends `msg` to `topic`; returns once the server has queued it.

        `delivery="all"` delivers it to every subscriber of the topic (this
        client too, if subscribed) and caches it; `delivery="one"` delivers it
        to one subscriber chosen at random, or caches it for the next
        subscriber when the topic has none. `cache=False` keeps it out of the
        cache in both cases.
        """
        command: dict[str, Any] = {"command": "send", "topic": _topic(topic),
                                   "msg": _text("msg", msg),
                                   "delivery": _delivery(delivery)}
        if cache is not None:
            command["cache"] = _boolean("cache", cache)
        self._call(command)

    def request(self, command: Mapping[str, Any]) -> dict:
        """Sends any command object as it is and returns the server's reply.

        For commands or keys this client does not know. Nothing is checked
        beyond what JSON can encode; a refusal raises `CommandError`.
        """
        if not isinstance(command, Mapping):
            raise TypeError(f"command must be a mapping, not {type(command).__name__}")
        command = dict(command)
        line = json.dumps(command, separators=(",", ":"), allow_nan=False) + "\n"
        return self._call(command, line.encode("ascii"))

    # -- delivered messages ---------------------------------------------

    def receive(self, timeout: Optional[float] = None) -> Message:
        """Returns the next delivered message, waiting for it if none is queued.

        `timeout` is in seconds; None waits as long as it takes, 0 only takes
        what has already arrived. Raises `Timeout` when nothing came in time,
        and `ConnectionClosed` once the connection is closed and every message
        that arrived before has been returned.
        """
        deadline = _deadline(_check_timeout(timeout))
        while not self._messages:
            reply = self._read_line(deadline)
            if reply is not None:
                self._fail(f"a reply no command waits for: {reply!r}")
        return self._messages.popleft()

    def messages(self, timeout: Optional[float] = None) -> Iterator[Message]:
        """Iterates over delivered messages as they arrive.

        With a `timeout` the iteration ends once no message has come for that
        many seconds; without one it goes on until the connection closes, which
        raises `ConnectionClosed`.
        """
        _check_timeout(timeout)   # now, not at the first next()
        return self._iterate_messages(timeout)

    def _iterate_messages(self, timeout: Optional[float]) -> Iterator[Message]:
        while True:
            try:
                message = self.receive(timeout)
            except Timeout:
                return
            yield message

    @property
    def queued(self) -> int:
        """How many delivered messages are waiting to be received."""
        return len(self._messages)

    # -- the connection -------------------------------------------------

    @property
    def closed(self) -> bool:
        """True once the connection is closed, by either side."""
        return self._sock is None

    def close(self) -> None:
        """Says `quit` to the server and closes the connection.

        Closing twice is harmless. Messages already received can still be
        taken with `receive()`; every command raises `ConnectionClosed`.
        """
        if self._sock is None:
            return
        sock = self._sock
        self._drop_connection("closed by the client")
        try:
            sock.settimeout(self.timeout)
            sock.sendall(b"quit\n")
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass   # the server is gone already: nobody to say goodbye to
        finally:
            sock.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        host, port = self._address
        state = f"closed ({self._closed_because})" if self.closed else "open"
        return f"<mqd_client.Client {host}:{port} {state}, {self.queued} messages queued>"

    # -- internals ------------------------------------------------------

    def _call(self, command: dict, line: Optional[bytes] = None) -> dict:
        """Sends `command` (as `line` when given) and returns its reply."""
        if line is None:
            line = _encode(command)
        self._write(line)
        reply = self._await_reply()
        if reply.get("success") is True:
            return reply
        reason = reply.get("reason")
        if reply.get("success") is False and isinstance(reason, str):
            raise CommandError(reason, command)
        self._fail(f"a reply that is neither success nor failure: {reply!r}")

    def _write(self, line: bytes) -> None:
        sock = self._open_socket()
        sock.settimeout(self.timeout)
        try:
            sock.sendall(line)
        except OSError as error:
            # Part of the line may have gone out: the stream is in an unknown state.
            self._close_socket(f"sending failed: {error}")
            raise ConnectionClosed(f"connection closed: sending failed: {error}") from error
        except BaseException:
            self._close_socket("interrupted while sending a command")
            raise

    def _await_reply(self) -> dict:
        deadline = _deadline(self.timeout)
        try:
            while True:
                reply = self._read_line(deadline)
                if reply is not None:
                    return reply
        except BaseException:
            # a Timeout or an interrupt: the reply will still come, in its place
            self._replies_to_drop += 1
            raise

    def _read_line(self, deadline: Optional[float]) -> Optional[dict]:
        """Reads one line: queues a message, or returns a reply that is due."""
        line = self._parse(self._next_line(deadline))
        if isinstance(line, Message):
            self._messages.append(line)
            return None
        if line.get("success") is False and line.get("reason") == _TOO_MANY_CONNECTIONS:
            self._close_socket("the server refused the connection")
            raise ConnectionClosed(f"connection closed by the server: {_TOO_MANY_CONNECTIONS}",
                                   _TOO_MANY_CONNECTIONS)
        if self._replies_to_drop:
            self._replies_to_drop -= 1
            return None
        return line

    def _next_line(self, deadline: Optional[float]) -> bytes:
        end = self._input.find(b"\n", self._scanned)
        while end < 0:
            self._scanned = len(self._input)
            self._fill(deadline)
            end = self._input.find(b"\n", self._scanned)
        # the "\r" of "\r\n" stays: to JSON it is whitespace after the value
        line = bytes(self._input[:end])
        del self._input[:end + 1]
        self._scanned = 0
        return line

    def _fill(self, deadline: Optional[float]) -> None:
        sock = self._open_socket()
        sock.settimeout(_remaining(deadline))
        try:
            chunk = sock.recv(_READ_SIZE)
        except (socket.timeout, BlockingIOError):
            raise Timeout("nothing arrived from the server in time") from None
        except OSError as error:
            self._close_socket(f"receiving failed: {error}")
            raise ConnectionClosed(f"connection lost: {error}") from error
        if not chunk:
            # mqd cuts a slow consumer wherever its queue stands, so a line
            # cut short is part of a normal close: it is dropped
            cut = len(self._input)
            self._input.clear()
            self._scanned = 0
            self._close_socket("closed by the server")
            raise ConnectionClosed("connection closed by the server" +
                                   (f" ({cut} bytes of a cut line dropped)" if cut else ""))
        self._input += chunk

    def _parse(self, raw: bytes) -> Union[Message, dict]:
        """A line from the server as a Message or a reply dict."""
        try:
            line = json.loads(raw.decode("utf-8"))
        except ValueError:   # UnicodeDecodeError and JSONDecodeError alike
            self._fail(f"a line that is not JSON in UTF-8: {raw[:100]!r}")
        if not isinstance(line, dict):
            self._fail(f"a line that is not a JSON object: {raw[:100]!r}")
        if "index" in line and "topic" in line and "msg" in line:
            topic, msg, index = line["topic"], line["msg"], line["index"]
            if isinstance(topic, str) and isinstance(msg, str) and _is_integer(index):
                return Message(topic, msg, index)
            self._fail(f"a message with mistyped fields: {raw[:100]!r}")
        if "success" in line:
            return line
        self._fail(f"a line that is neither a reply nor a message: {raw[:100]!r}")

    def _fail(self, what: str) -> NoReturn:
        self._close_socket("the server broke the protocol")
        raise ProtocolError(f"the server sent {what}")

    def _open_socket(self) -> socket.socket:
        if self._sock is None:
            raise ConnectionClosed(f"connection closed: {self._closed_because}")
        return self._sock

    def _close_socket(self, because: str) -> None:
        if self._sock is not None:
            self._sock.close()
        self._drop_connection(because)

    def _drop_connection(self, because: str) -> None:
        self._sock = None
        self._closed_because = because
        self._input.clear()
        self._scanned = 0


def _encode(command: dict) -> bytes:
    # Raw UTF-8 rather than \u escapes: a third of the bytes against mqd's line
    # limit for most non-ASCII text. json.dumps escapes every control
    # character, so the line holds no "\n" before its end.
    line = json.dumps(command, ensure_ascii=False, separators=(",", ":"))
    return (line + "\n").encode("utf-8")


def _text(name: str, value: Any) -> str:
    """`value` as a string that has a UTF-8 form.

    A Python string may hold surrogates. A pair (high then low) stands for
    one character, as in a JSON "\\ud83d\\ude00", and mqd accepts it: it is
    joined. An unpaired one has no UTF-8 form and mqd refuses it.
    """
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, not {type(value).__name__}")
    if value.isascii():
        return value
    try:
        value.encode("utf-8")
        return value
    except UnicodeEncodeError:
        pass
    try:
        return value.encode("utf-16-le", "surrogatepass").decode("utf-16-le")
    except UnicodeDecodeError:
        raise ValueError(f"{name} holds an unpaired surrogate, which mqd refuses") from None


def _topic(topic: Any) -> str:
    topic = _text("topic", topic)
    if "\x00" in topic:
        raise ValueError("topic holds U+0000, which mqd refuses in a topic")
    return topic


def _integer(name: str, value: Any) -> int:
    # bool is an int to Python but `true` to JSON, and mqd wants an integer
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an int, not bool")
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an int, not {type(value).__name__}") from None


def _boolean(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, not {type(value).__name__}")
    return value


def _delivery(delivery: Any) -> str:
    if not isinstance(delivery, str):
        raise TypeError(f"delivery must be a str, not {type(delivery).__name__}")
    if delivery not in DELIVERIES:
        raise ValueError(f"delivery must be 'all' or 'one', not {delivery!r}")
    return delivery


def _is_integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_timeout(timeout: Any) -> Optional[float]:
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError(f"timeout must be seconds or None, not {type(timeout).__name__}")
    if not timeout >= 0:   # NaN too
        raise ValueError(f"timeout must not be negative: {timeout!r}")
    return timeout


def _deadline(timeout: Optional[float]) -> Optional[float]:
    return None if timeout is None else time.monotonic() + timeout


def _remaining(deadline: Optional[float]) -> Optional[float]:
    """Seconds left before `deadline`; 0 (do not wait) once it has passed."""
    return None if deadline is None else max(0.0, deadline - time.monotonic())
