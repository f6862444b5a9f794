"""WebSocket (--websocket): the upgrade, the frames a client may and may not
send, the web console's files, and the protocol over it exactly as over TCP
(include/mqd/ws.h, docs/PROTOCOL.md "WebSocket"). The core suites also run
whole over WebSocket (CTest protocol_websocket, MQD_CLIENT_TRANSPORT).

ws_client.py is the test client: it writes and reads frames byte by byte."""

import http.client
import socket
import ssl
import struct
import time

import pytest

from mqd_harness import (OK, TIMEOUT, Server, metric, run_mqd, send, subscribe)
from ws_client import (BINARY, CLOSE, CONTINUATION, PING, PONG, TEXT, WsClient, encode_frame)

TOO_LONG = {"success": False, "reason": "Line too long"}


def ws_server(*args):
    return Server("--websocket", "0", "--metrics", "0", *args)


@pytest.fixture(scope="module")
def wss():
    s = ws_server()
    yield s
    assert s.stop() == 0, s.stderr()


def connect(server, **kw):
    c = WsClient(server.websocket_port(), **kw)
    assert c.status == 101, c.status
    return c


def test_a_websocket_client_talks_with_a_tcp_one(wss):
    w = connect(wss)
    assert w.headers["upgrade"].lower() == "websocket"
    subscribe(w, "mix")
    tcp = wss.client()
    send(tcp, "mix", "from tcp")
    # one frame, final, text, the line without its \r\n
    fin, opcode, payload = w.frame()
    assert (fin, opcode) == (True, TEXT)
    assert payload == (b'{"command": "send", "topic": "mix", "msg": "from tcp", '
                       b'"delivery": "all", "index": 0}')
    subscribe(tcp, "mix2")
    send(w, "mix2", "from ws")
    assert tcp.line()["msg"] == "from ws"


def test_a_message_is_read_as_the_lines_it_holds(wss):
    w = connect(wss)
    w.send('{"command":"subscribe","topic":"a"}\n{"command":"subscribe","topic":"b"}')
    assert [w.line(), w.line()] == [OK, OK]
    w.send("quit")
    assert w.at_eof()


def test_a_fragmented_message_with_a_ping_between_is_reassembled(wss):
    w = connect(wss)
    w.send_frame(TEXT, b'{"command":"subs', fin=False)
    w.send_frame(PING, b"still there?")
    w.send_frame(CONTINUATION, b'cribe","topic":"fr\xc3', fin=False)   # UTF-8 cut in two
    w.send_frame(CONTINUATION, b'\xa9"}')
    assert w.frame() == (True, PONG, b"still there?")
    assert w.line() == OK


def test_a_message_over_max_line_is_refused_like_a_long_line():
    server = ws_server("--max-line", "1k")
    w = connect(server)
    w.send_frame(TEXT, b'{"command":"subscribe","topic":"' + b"x" * 3000, fin=False)
    w.send_frame(CONTINUATION, b'"}')
    assert w.line() == TOO_LONG
    assert w.request(command="subscribe", topic="after") == OK   # the connection goes on


@pytest.mark.parametrize("frames, code", [
    ([(BINARY, b"\x00\x01", True, True)], 1003),
    ([(TEXT, b"\xff\xfe", True, True)], 1007),
    ([(TEXT, b"abc\xc3", True, True)], 1007),                           # cut at the end
    ([(TEXT, b"ab", False, True), (CONTINUATION, b"\xed\xa0\x80", True, True)], 1007),
    ([(TEXT, b'{"command":"subscribe","topic":"t"}', True, False)], 1002),   # unmasked
    ([(CONTINUATION, b"x", True, True)], 1002),                         # nothing to continue
    ([(TEXT, b"a", False, True), (TEXT, b"b", True, True)], 1002),       # a new one inside
    # a control frame cut, or too long: wslay closes without a status
    ([(PING, b"p", False, True)], None),
    ([(PING, b"p" * 126, True, True)], None),
])
def test_frames_the_rfc_forbids_close_with_its_code(wss, frames, code):
    w = connect(wss)
    for opcode, payload, fin, mask in frames:
        w.send_frame(opcode, payload, fin=fin, mask=mask)
    assert w.close_code() == code
    assert w.at_eof()


def test_the_close_handshake(wss):
    w = connect(wss)
    subscribe(w, "closing")
    w.send_frame(CLOSE, struct.pack(">H", 1000) + b"bye")
    assert w.close_code() == 1000
    assert w.at_eof()
    # the server is fine and the topic free
    assert connect(wss).request(command="unsubscribe", topic="closing") == OK


def test_large_deliveries_to_a_slow_reader_arrive_whole():
    """Frames of every header size, and writes the socket takes in part:
    every frame comes whole and in order."""
    server = ws_server("--max-output", "64m")
    w = connect(server)
    subscribe(w, "big")
    tcp = server.client()
    sizes = [10, 125, 126, 127, 65535, 65536, 70000, 1000000] * 4
    for i, n in enumerate(sizes):
        tcp.cmd(command="send", topic="big", msg=str(i % 10) * n, delivery="all")
    for _ in sizes:
        assert tcp.line() == OK
    time.sleep(0.2)   # let the server fill the socket and stop mid-frame
    for i, n in enumerate(sizes):
        fin, opcode, payload = w.frame()
        assert (fin, opcode) == (True, TEXT)
        assert payload.startswith(b'{"command": "send", "topic": "big", "msg": "')
        assert payload.count(str(i % 10).encode()) >= n
        assert payload.endswith(b'"index": %d}' % i)


def test_the_console_is_served(wss):
    conn = http.client.HTTPConnection("127.0.0.1", wss.websocket_port(), timeout=TIMEOUT)
    conn.request("GET", "/")
    r = conn.getresponse()
    page = r.read().decode()
    assert r.status == 200
    assert r.getheader("Content-Type") == "text/html; charset=utf-8"
    assert "default-src 'self'" in r.getheader("Content-Security-Policy")
    assert '<script type="module" src="/console.js">' in page
    assert r.getheader("Access-Control-Allow-Origin") == "*"   # the module, for other pages
    for path in ("/console.js", "/console.css", "/mqd/websocket.js", "/mqd/client.js",
                 "/mqd/errors.js", "/index.html"):
        conn = http.client.HTTPConnection("127.0.0.1", wss.websocket_port(), timeout=TIMEOUT)
        conn.request("GET", path)
        r = conn.getresponse()
        assert r.status == 200 and len(r.read()) > 100, path
    conn = http.client.HTTPConnection("127.0.0.1", wss.websocket_port(), timeout=TIMEOUT)
    conn.request("HEAD", "/console.js")
    r = conn.getresponse()
    assert r.status == 200 and int(r.getheader("Content-Length")) > 100 and r.read() == b""
    for method, path, status in (("GET", "/nope", 404), ("POST", "/", 405),
                                 ("GET", "/../etc/passwd", 404)):
        conn = http.client.HTTPConnection("127.0.0.1", wss.websocket_port(), timeout=TIMEOUT)
        conn.request(method, path)
        assert conn.getresponse().status == status, path


@pytest.mark.parametrize("headers, status", [
    (["Sec-WebSocket-Version: 8"], 426),
    (["X: y"], 101),
])
def test_the_upgrade_checks_its_version(wss, headers, status):
    port = wss.websocket_port()
    if status == 426:
        s = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        s.sendall(b"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n")
        reply = s.recv(4096)
        assert reply.startswith(b"HTTP/1.1 426 ")
        assert b"\r\nSec-WebSocket-Version: 13\r\n" in reply
    else:
        assert WsClient(port, headers=headers).status == 101


@pytest.mark.parametrize("request_head", [
    b"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Version: 13\r\n\r\n",                                     # no key
    b"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: c2hvcnQ=\r\nSec-WebSocket-Version: 13\r\n\r\n",     # not 16 bytes
    b"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    b"GET / HTTP/1.0\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: h\r\nBad Header: x\r\n\r\n",
])
def test_a_bad_upgrade_is_answered_400(wss, request_head):
    s = socket.create_connection(("127.0.0.1", wss.websocket_port()), timeout=TIMEOUT)
    s.sendall(request_head)
    assert s.recv(4096).startswith(b"HTTP/1.1 400 ")


def test_origins():
    server = ws_server()
    port = server.websocket_port()
    assert WsClient(port, origin=f"http://127.0.0.1:{port}").status == 101   # the console's own
    assert WsClient(port, origin="https://evil.example").status == 403
    assert WsClient(port, origin=f"http://127.0.0.1:{port + 1}").status == 403
    assert WsClient(port).status == 101                                      # not a browser
    listed = ws_server("--websocket-origin", "https://app.example,http://b.example:8080")
    port = listed.websocket_port()
    assert WsClient(port, origin="https://app.example").status == 101
    assert WsClient(port, origin="http://b.example:8080").status == 101
    assert WsClient(port, origin=f"http://127.0.0.1:{port}").status == 403
    assert WsClient(port, origin="https://app.example.evil").status == 403
    anyone = ws_server("--websocket-origin", "*")
    assert WsClient(anyone.websocket_port(), origin="https://evil.example").status == 101


def test_a_silent_or_slow_upgrade_is_cut():
    server = ws_server("--tls-handshake-timeout", "1")
    port = server.websocket_port()
    silent = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    slow = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    for ch in b"GET / HTTP/1.1\r\nHost":
        slow.sendall(bytes([ch]))
        time.sleep(0.05)
    for s in (silent, slow):
        assert s.recv(100) == b""
    server.wait_for_log("WebSocket handshake not finished in 1 s")


def test_users_permissions_and_metrics_are_as_over_tcp(tmp_path):
    import hashlib, base64, os
    salt = os.urandom(16)
    digest = hashlib.pbkdf2_hmac("sha256", b"pw", salt, 1000)
    b64 = lambda b: base64.b64encode(b).decode().rstrip("=")
    (tmp_path / "users").write_text(
        f"ann $pbkdf2-sha256$i=1000${b64(salt)}${b64(digest)} subscribe=news\n")
    server = ws_server("--users", str(tmp_path / "users"))
    w = connect(server)
    assert w.request(command="subscribe", topic="news") == {
        "success": False, "reason": "Authentication required"}
    assert w.request(command="auth", user="ann", password="pw") == OK
    subscribe(w, "news")
    assert w.request(command="subscribe", topic="other") == {
        "success": False, "reason": "Permission denied"}
    assert metric(server, 'mqd_protocol_errors_total{reason="permission_denied"}') == 1
    assert metric(server, "mqd_connections") == 1


def test_too_many_connections_on_the_websocket_port_is_a_503():
    server = ws_server("--max-clients", "1")
    first = connect(server)
    s = socket.create_connection(("127.0.0.1", server.websocket_port()), timeout=TIMEOUT)
    assert s.recv(4096).startswith(b"HTTP/1.1 503 ")
    subscribe(first, "still")


def test_wss_with_the_tls_files(tmp_path):
    pytest.importorskip("cryptography.x509")
    from tls_certs import make_pki
    pki = make_pki(tmp_path)
    server = ws_server("--websocket-tls", "--tls-cert", str(pki / "server.pem"),
                       "--tls-key", str(pki / "server.key"))
    assert "listening for WebSocket over TLS" in server.stderr()
    ctx = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    w = WsClient(server.websocket_port(), ctx=ctx, server_hostname="127.0.0.1")
    assert w.status == 101
    subscribe(w, "secure")
    send(server.client(), "secure", "over wss")
    assert w.line()["msg"] == "over wss"
    # a plain client on the wss port gets nowhere, and costs nothing
    plain = socket.create_connection(("127.0.0.1", server.websocket_port()), timeout=TIMEOUT)
    plain.sendall(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    assert plain.recv(100) in (b"", ) or plain.recv(100) == b""


@pytest.mark.parametrize("args, message", [
    (["--websocket-tls"], "--websocket-tls needs --websocket"),
    (["--websocket", "0", "--websocket-tls"], "--websocket-tls needs --tls-cert and --tls-key"),
    (["--websocket-origin", "*"], "--websocket-origin needs --websocket"),
    (["--websocket", "nope"], "--websocket"),
])
def test_option_conflicts(args, message):
    status, _, err = run_mqd(*args)
    assert status == 2 and message in err


def test_protected_mode_covers_the_websocket_address():
    status, _, err = run_mqd("--port", "0", "--websocket", "0.0.0.0:0")
    assert status == 1
    assert err.startswith("mqd: refusing to listen on 0.0.0.0 without --users")


def test_a_close_right_after_a_command_gets_the_reply_first(wss):
    """The close sent back waits for the replies to what came before it."""
    w = connect(wss)
    w.sock.sendall(encode_frame(TEXT, b'{"command":"subscribe","topic":"late-close"}')
                   + encode_frame(CLOSE, struct.pack(">H", 1000)))
    fin, opcode, payload = w.frame()
    assert (opcode, payload) == (TEXT, b'{"success": true}')
    assert w.close_code() == 1000
    assert w.at_eof()


def test_a_half_closed_reader_behind_on_its_frames_does_not_spin_the_loop():
    """A client that stops reading with a frame half written and says it
    sends no more: the server waits for the socket, it does not poll."""
    server = ws_server("--max-output", "64m")
    w = connect(server)
    subscribe(w, "flood")
    tcp = server.client()
    for _ in range(40):
        send(tcp, "flood", "x" * 500_000)
    w.sock.shutdown(socket.SHUT_WR)
    time.sleep(0.3)
    before = metric(server, "mqd_loop_pass_seconds_count")
    time.sleep(1.0)
    passes = metric(server, "mqd_loop_pass_seconds_count") - before
    assert passes < 50, f"{passes} loop passes in a second"
