"""TLS (--tls-port): a TLS client works as a plain one does, and a client
that does TLS wrong, slowly or not at all costs mqd nothing else
(include/mqd/tls.h, README "Running on a network").

The certificates are made by tls_certs.py."""

import os
import signal
import socket
import ssl
import time

import pytest

from mqd_harness import Server, TIMEOUT, metric, run_mqd, send, subscribe

pytest.importorskip("cryptography.x509")
from tls_certs import make_pki  # noqa: E402


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("pki"))


def tls_server(pki, *args, cert="server"):
    return Server("--tls-port", "0", "--tls-cert", str(pki / f"{cert}.pem"),
                  "--tls-key", str(pki / f"{cert}.key"), *args)


def client_context(pki, cert=None):
    ctx = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    if cert:
        ctx.load_cert_chain(str(pki / f"{cert}.pem"), str(pki / f"{cert}.key"))
    return ctx


class TlsClient:
    """A line client over TLS (as mqd_harness.Client over TCP)."""

    def __init__(self, port, ctx):
        raw = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.sock = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data.encode() if isinstance(data, str) else data)

    def line(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(1 << 16)
            assert chunk, "closed"
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line + b"\n"

    def request(self, text):
        self.send(text + "\n")
        return self.line()


OK_LINE = b'{"success": true}\r\n'


def test_a_tls_client_works_as_a_plain_one(pki):
    server = tls_server(pki)
    port = server.tls_listener_port()
    c = TlsClient(port, client_context(pki))
    assert c.sock.version() in ("TLSv1.2", "TLSv1.3")
    assert c.request('{"command": "subscribe", "topic": "t"}') == OK_LINE
    plain = server.client()
    send(plain, "t", "from tcp")
    assert b'"msg": "from tcp", "delivery": "all", "index": 0' in c.line()
    assert c.request('{"command": "send", "topic": "t", "msg": "from tls", '
                     '"delivery": "all"}') == b'{"command": "send", "topic": "t", "msg": "from tls", "delivery": "all", "index": 1}\r\n'
    assert c.line() == OK_LINE
    r = server.client()
    subscribe(r, "t", last_seen=0)
    assert r.line()["msg"] == "from tls"
    # half a megabyte each way, and an error reply, as over TCP
    big = "x" * (512 << 10)
    c.send('{"command": "send", "topic": "t", "msg": "%s", "delivery": "all"}\n' % big)
    assert len(c.line()) > 512 << 10 and c.line() == OK_LINE
    assert c.request("not json") == b'{"success": false, "reason": "Could not parse json"}\r\n'
    # many pipelined lines in few records
    c.send("".join('{"command": "unsubscribe", "topic": "u%d"}\n' % i for i in range(500)))
    assert all(c.line() == OK_LINE for _ in range(500))
    assert server.stop() == 0


def test_client_certificates_required(pki):
    server = tls_server(pki, "--tls-ca", str(pki / "ca.pem"), "--tls-verify-clients")
    port = server.tls_listener_port()
    c = TlsClient(port, client_context(pki, "client"))
    assert c.request('{"command": "subscribe", "topic": "t"}') == OK_LINE
    for cert in (None, "stranger"):   # none, or one from another CA
        with pytest.raises((ssl.SSLError, ConnectionError, AssertionError)):
            bad = TlsClient(port, client_context(pki, cert))
            bad.request('{"command": "subscribe", "topic": "t"}')
    server.wait_for_log("TLS handshake failed")
    assert c.request('{"command": "unsubscribe", "topic": "t"}') == OK_LINE
    assert server.stop() == 0


def test_an_expired_certificate_is_refused_by_clients_and_tls_1_1_by_mqd(pki):
    server = tls_server(pki, cert="expired")
    with pytest.raises(ssl.SSLCertVerificationError):
        TlsClient(server.tls_listener_port(), client_context(pki))
    assert server.stop() == 0

    server = tls_server(pki)
    old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    old.load_verify_locations(str(pki / "ca.pem"))
    old.set_ciphers("DEFAULT:@SECLEVEL=0")
    old.minimum_version = old.maximum_version = ssl.TLSVersion.TLSv1_1
    with pytest.raises((ssl.SSLError, ConnectionError)):
        TlsClient(server.tls_listener_port(), old)
    server.wait_for_log("TLS handshake failed")
    assert server.stop() == 0


def closed(sock):
    """Waits for the peer to close (or reset) the connection, whatever it
    sent before (a TLS alert); the socket's timeout fails the test."""
    try:
        while sock.recv(4096):
            pass
    except ConnectionResetError:
        pass
    return True


def test_garbage_and_silence_instead_of_a_handshake(pki):
    server = tls_server(pki, "--tls-handshake-timeout", "1")
    port = server.tls_listener_port()
    garbage = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    garbage.sendall(b'{"command": "subscribe", "topic": "t"}\n' * 10)
    assert closed(garbage)   # an alert, then the close
    server.wait_for_log("TLS handshake failed")
    silent = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    trickle = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    trickle.sendall(b"\x16\x03\x01")   # the start of a ClientHello, and no more
    for s in (silent, trickle):
        assert closed(s)   # cut at the deadline (the once-a-second tick)
    server.wait_for_log("TLS handshake not finished in 1 s")
    c = TlsClient(port, client_context(pki))   # and nobody else noticed
    assert c.request('{"command": "subscribe", "topic": "t"}') == OK_LINE
    assert server.stop() == 0


def test_sighup_reloads_the_certificate_and_a_bad_one_keeps_the_old(pki, tmp_path):
    for f in ("server.pem", "server.key"):
        (tmp_path / f).write_bytes((pki / f).read_bytes())
        os.chmod(tmp_path / f, 0o600)
    server = Server("--tls-port", "0", "--tls-cert", str(tmp_path / "server.pem"),
                    "--tls-key", str(tmp_path / "server.key"))
    port = server.tls_listener_port()
    first = TlsClient(port, client_context(pki)).sock.getpeercert(binary_form=True)
    # a new certificate for the same name and key type
    ca_pem = (pki / "ca.pem").read_bytes()
    (tmp_path / "server.pem").write_bytes((pki / "expired.pem").read_bytes())
    (tmp_path / "server.key").write_bytes((pki / "expired.key").read_bytes())
    server.proc.send_signal(signal.SIGHUP)
    server.wait_for_log("TLS certificate and key read again")
    lax = client_context(pki)
    lax.check_hostname = False
    lax.verify_mode = ssl.CERT_NONE
    second = TlsClient(port, lax).sock.getpeercert(binary_form=True)
    assert second != first and second == ssl.PEM_cert_to_DER_cert(
        (pki / "expired.pem").read_text())
    assert ca_pem
    (tmp_path / "server.key").write_bytes(b"not a key")
    server.proc.send_signal(signal.SIGHUP)
    server.wait_for_log("TLS files not reloaded, the old ones stay")
    assert TlsClient(port, lax).sock.getpeercert(binary_form=True) == second
    assert server.stop() == 0


def test_tls_options_need_one_another_and_a_readable_key_is_said(pki, tmp_path):
    status, _, err = run_mqd("--tls-port", "0")
    assert status == 2 and "--tls-port needs --tls-cert and --tls-key" in err
    status, _, err = run_mqd("--no-plain")
    assert status == 2 and "--no-plain needs --tls-port" in err
    status, _, err = run_mqd("--tls-port", "0", "--tls-cert", str(pki / "server.pem"),
                             "--tls-key", str(pki / "server.pem"))
    assert status == 1 and "TLS:" in err and err.strip().count("\n") == 0
    key = tmp_path / "open.key"
    key.write_bytes((pki / "server.key").read_bytes())
    os.chmod(key, 0o644)
    server = Server("--tls-port", "0", "--tls-cert", str(pki / "server.pem"),
                    "--tls-key", str(key), "--no-plain")
    assert "can be read by others" in server.stderr()
    assert "listening on" not in server.stderr().replace("listening for TLS on", "")
    c = TlsClient(server.tls_listener_port(), client_context(pki))
    assert c.request('{"command": "subscribe", "topic": "t"}') == OK_LINE
    assert server.stop() == 0


def test_a_thousand_tls_clients_at_once(pki):
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 4096)), hard))
    server = tls_server(pki)
    port = server.tls_listener_port()
    ctx = client_context(pki)
    clients = [TlsClient(port, ctx) for _ in range(1000)]
    for i, c in enumerate(clients):
        c.send('{"command": "subscribe", "topic": "all"}\n')
    assert all(c.line() == OK_LINE for c in clients)
    send(server.client(), "all", "to everyone")
    assert all(b"to everyone" in c.line() for c in clients)
    assert server.stop() == 0


def test_the_python_client_speaks_tls(pki):
    import sys
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "clients", "python"))
    from mqd_client import Client
    server = tls_server(pki)
    with Client("127.0.0.1", server.tls_listener_port(), tls=client_context(pki)) as c:
        c.subscribe("t")
        c.send("t", "over tls")
        assert c.receive().msg == "over tls"
    with pytest.raises(ssl.SSLError):
        Client("127.0.0.1", server.tls_listener_port(), tls=ssl.create_default_context())   # unknown CA
    assert server.stop() == 0


def test_a_record_that_arrives_in_pieces_does_not_spin_the_loop(pki):
    """A TLS record half received is not input to read: the loop waits for
    the rest instead of passing again and again (read-ahead keeps such a
    record inside the library, which says it has something pending)."""
    server = tls_server(pki, "--metrics", "0")
    c = TlsClient(server.tls_listener_port(), client_context(pki))
    assert c.request('{"command": "subscribe", "topic": "t"}') == OK_LINE
    before = metric(server, "mqd_loop_pass_seconds_count")
    # under the TLS layer, on the same socket: the first bytes of a record
    half = socket.socket(fileno=os.dup(c.sock.fileno()))
    half.sendall(b"\x17\x03\x03\x01\x00" + b"\x00" * 5)   # a record header and a little
    time.sleep(1.0)
    passes = metric(server, "mqd_loop_pass_seconds_count") - before
    half.close()
    assert passes < 50   # a handful of wake-ups, not one pass after another
    assert server.stop() == 0


def test_pipelined_records_behind_held_input_are_all_read(pki):
    """A TLS publisher pipelines sends to many subscribers: its turn ends
    with records still decoded inside the library, and when its held input
    has run, those records run too, without another byte from it."""
    server = tls_server(pki)
    subscribers = [server.client() for _ in range(200)]
    for s in subscribers:
        subscribe(s, "fan")
    c = TlsClient(server.tls_listener_port(), client_context(pki))
    c.send("".join('{"command": "send", "topic": "fan", "msg": "m%d", "delivery": "all"}\n' % i
                   for i in range(471)))
    assert all(c.line() == OK_LINE for _ in range(471))
    assert server.stop() == 0


def test_sessions_resume_with_client_certificates(pki):
    server = tls_server(pki, "--tls-ca", str(pki / "ca.pem"), "--tls-verify-clients")
    port = server.tls_listener_port()
    ctx = client_context(pki, "client")
    first = TlsClient(port, ctx)
    assert first.request('{"command": "subscribe", "topic": "t"}') == OK_LINE
    session = first.sock.session
    first.sock.close()
    raw = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    again = ctx.wrap_socket(raw, server_hostname="127.0.0.1", session=session)
    again.sendall(b'{"command": "subscribe", "topic": "t"}\n')
    assert again.recv(100) == OK_LINE
    assert again.session_reused
    assert server.stop() == 0


def test_a_reset_in_the_middle_of_a_large_tls_delivery(pki):
    """A TLS subscriber resets with megabytes queued to it and a record half
    written: mqd drops it and goes on (under the sanitizers: no leak)."""
    import struct
    server = tls_server(pki)
    port = server.tls_listener_port()
    sub = TlsClient(port, client_context(pki))
    assert sub.request('{"command": "subscribe", "topic": "big"}') == OK_LINE
    pub = server.client()
    for i in range(40):
        send(pub, "big", f"{i} " + "z" * 250_000, cache=False)
    sub.sock.recv(20_000)   # a little of it, the rest queued
    sub.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sub.sock.close()
    other = TlsClient(port, client_context(pki))
    assert other.request('{"command": "subscribe", "topic": "big"}') == OK_LINE
    send(pub, "big", "after")
    assert b'"msg": "after"' in other.line()
    assert server.stop() == 0


def test_what_tls_holds_is_counted_in_max_memory(pki):
    """OpenSSL allocates through mqd's allocator: a TLS connection's state
    is counted in mqd_memory_used_bytes (and so bounded by --max-memory)."""
    server = tls_server(pki, "--metrics", "0")
    port = server.tls_listener_port()
    base = metric(server, "mqd_memory_used_bytes")
    plain = [server.client() for _ in range(50)]
    for c in plain:
        subscribe(c, "t")
    per_plain = (metric(server, "mqd_memory_used_bytes") - base) / 50
    base = metric(server, "mqd_memory_used_bytes")
    ctx = client_context(pki)
    tls = [TlsClient(port, ctx) for _ in range(50)]
    for c in tls:
        assert c.request('{"command": "subscribe", "topic": "t"}') == OK_LINE
    per_tls = (metric(server, "mqd_memory_used_bytes") - base) / 50
    assert per_tls > per_plain + 4096   # the SSL object and its state, counted
    assert server.stop() == 0


def test_quit_after_a_large_replay_gets_all_of_it_first(pki):
    """Records the transport gathered and the socket has not taken yet are
    written before the connection closes after quit."""
    server = tls_server(pki, "--cache-size", "300", "--max-output", "128m")
    publisher = server.client()
    for i in range(300):
        send(publisher, "big", "%03d" % i + "x" * 100_000)
    c = TlsClient(server.tls_listener_port(), client_context(pki))
    c.send('{"command": "subscribe", "topic": "big"}\nquit\n')
    time.sleep(0.5)   # the replay piles up while nothing is read
    got = bytearray()
    while chunk := c.sock.recv(1 << 20):
        got += chunk
    lines = bytes(got).split(b"\r\n")
    assert lines[0] == b'{"success": true}'
    assert len(lines) == 302 and lines[-1] == b""
    assert all(b'"msg": "%03d' % i in lines[1 + i] for i in range(300))
