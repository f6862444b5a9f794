"""Starting mqd and talking to it, for the protocol suite.

Servers listen on 127.0.0.1 on a free port; their stderr goes to a file (a
pipe nobody drains could block the server). Replies are read with timeouts,
never waited for with sleeps."""

import http.client
import json
import os
import pathlib
import re
import socket
import subprocess
import tempfile
import time

BINARY = os.environ.get(
    "MQD_BINARY", os.path.join(os.path.dirname(__file__), "..", "..", "build", "mqd"))
TIMEOUT = 10.0
OK = {"success": True}
BAD_UTF8 = {"success": False, "reason": "Could not decode input as UTF-8"}
BAD_JSON = {"success": False, "reason": "Could not parse json"}
MALFORMED = {"success": False, "reason": "Malformed json message"}
TOO_LONG = {"success": False, "reason": "Line too long"}
TOO_MANY = {"success": False, "reason": "Too many connections"}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ipv6_loopback():
    """Whether this machine can listen on ::1."""
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def vm_size(pid):
    """The process's virtual memory size in bytes, for squeezing RLIMIT_AS."""
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmSize")


def run_mqd(*args, timeout=TIMEOUT, preexec_fn=None):
    """Runs mqd to completion (for options that exit): (status, stdout, stderr)."""
    p = subprocess.run([BINARY, *args], capture_output=True, timeout=timeout,
                       preexec_fn=preexec_fn, stdin=subprocess.DEVNULL)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def help_options():
    """The long options `mqd --help` lists: {"--name": its default as stated
    there, or None}."""
    _, out, _ = run_mqd("--help")
    options = {}
    for entry in re.split(r"\n(?=  -)", out.split("\n\n")[1]):
        name = re.search(r"--[a-z-]+", entry).group(0)
        default = re.search(r"\(default ([^;,)]+)", " ".join(entry.split()))
        options[name] = default.group(1) if default else None
    return options


def http_request(port, method="GET", path="/metrics", host="127.0.0.1", headers=None):
    """One HTTP request over a fresh connection: (status, headers, body)."""
    conn = http.client.HTTPConnection(host, port, timeout=TIMEOUT)
    try:
        conn.request(method, path, headers=headers or {})
        r = conn.getresponse()
        return r.status, r.headers, r.read()
    finally:
        conn.close()


def metrics_port(server):
    """The port of a server's metrics endpoint on 127.0.0.1, as its start logged it."""
    m = re.search(r"INFO metrics on http://127\.0\.0\.1:(\d+)/metrics", server.logs())
    assert m, server.logs()
    return int(m.group(1))


# every Server made, so that a test's are stopped after it even when it
# fails half way (conftest.py)
ALL_SERVERS = []


def metric(server, series):
    """One series' value (its full name, labels included, as the exposition
    writes it), read from the server's metrics endpoint."""
    _, _, body = http_request(metrics_port(server))
    for line in body.decode().splitlines():
        if line.startswith(series + " "):
            return float(line.split()[1])
    raise AssertionError(f"no {series} in the metrics")


# MQD_CLIENT_TRANSPORT=websocket: every Server also listens for WebSocket
# (--websocket 0) and server.client() speaks it (ws_client.WsLineClient), so
# the core suites run over WebSocket unchanged (CTest protocol_websocket).
# MQD_CLIENT_TRANSPORT=tls: every Server also listens for TLS (--tls-port 0,
# a certificate from a CA made once per run) and server.client() is a TLS
# client of it (CTest protocol_tls).
OVER_WEBSOCKET = os.environ.get("MQD_CLIENT_TRANSPORT") == "websocket"
OVER_TLS = os.environ.get("MQD_CLIENT_TRANSPORT") == "tls"
_PKI = None


def run_pki():
    """The directory of this run's CA and server certificate (tls_certs),
    made on first use and removed when the run ends."""
    global _PKI
    if _PKI is None:
        import tls_certs
        _PKI = tempfile.TemporaryDirectory(prefix="mqd-pki-")
        tls_certs.make_pki(pathlib.Path(_PKI.name))
    return _PKI.name


def tls_client_context():
    """A client context that trusts only run_pki()'s CA."""
    import ssl
    return ssl.create_default_context(cafile=os.path.join(run_pki(), "ca.pem"))


class Server:
    """One mqd process on a free loopback port."""

    def __init__(self, *args, preexec_fn=None, env=None, config=None, log_file=None):
        """`config`: the text of a configuration file to start with ("{port}"
        in it sets the port there); `log_file`: where the server logs, when
        the arguments or the file say --log-file."""
        if not os.path.exists(BINARY):
            raise RuntimeError(f"mqd binary not found at {BINARY}: build it first")
        ALL_SERVERS.append(self)
        self.log = tempfile.TemporaryFile()
        self.log_file = log_file
        self.config = None
        if config is not None:
            self.config = tempfile.NamedTemporaryFile("w", suffix=".conf")
            args = ("--config", self.config.name, *args)
        env = dict(os.environ if env is None else env)
        # Under AddressSanitizer: a small quarantine, so freed memory is reused
        # and RSS means what it means without it; and an allocation over a
        # limit comes back NULL, as from glibc, instead of aborting.
        env["ASAN_OPTIONS"] = (env.get("ASAN_OPTIONS", "") +
                               ":quarantine_size_mb=4:allocator_may_return_null=1")
        # below info the start is not logged: then readiness is a connect
        self.quiet = any(a in ("--log-level=warn", "--log-level=error", "warn", "error")
                         for a in args)
        self.ws_port = None
        self.tls_port = None
        if OVER_WEBSOCKET and not self.quiet:
            args = (*args, "--websocket", "0")
        if OVER_TLS and not self.quiet:
            pki = run_pki()
            args = (*args, "--tls-port", "0", "--tls-cert", os.path.join(pki, "server.pem"),
                    "--tls-key", os.path.join(pki, "server.key"))
        for _ in range(5):
            self.port = free_port()
            # "{port}" in an argument puts the port there instead of --port
            argv = [a.replace("{port}", str(self.port)) for a in args]
            if config is not None:
                self.config.seek(0)
                self.config.truncate()
                self.config.write(config.replace("{port}", str(self.port)))
                self.config.flush()
            if argv == list(args) and "{port}" not in (config or ""):
                argv = ["--port", str(self.port), *args]
            self.proc = subprocess.Popen(
                [BINARY, *argv], stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=self.log, preexec_fn=preexec_fn,
                env=env)
            if self._wait_ready():
                return
            if "Address already in use" not in self.stderr():
                break
        raise RuntimeError("mqd did not start: " + self.stderr())

    def _wait_ready(self):
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            if self.quiet:
                try:
                    socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                    return True
                except OSError:
                    pass
            elif "listening on" in self.logs() or "listening for TLS on" in self.logs():
                return True
            time.sleep(0.005)
        return False

    def stderr(self):
        # pread, never seek: mqd's stderr shares this file's offset, so after
        # a seek to 0 its next line would overwrite the log's first lines
        fd = self.log.fileno()
        return os.pread(fd, os.fstat(fd).st_size, 0).decode(errors="replace")

    def logs(self):
        """What the server logged: its log file if it has one, else stderr."""
        if self.log_file is None:
            return self.stderr()
        try:
            with open(self.log_file, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def wait_for_log(self, text):
        deadline = time.monotonic() + TIMEOUT
        while text not in self.logs():
            assert time.monotonic() < deadline, f"{text!r} never logged:\n{self.logs()}"
            time.sleep(0.01)

    def wait_until(self, predicate, what="the condition"):
        """Polls `predicate` until it holds (the server acts asynchronously)."""
        deadline = time.monotonic() + TIMEOUT
        while not predicate():
            assert time.monotonic() < deadline, f"{what} never held:\n{self.stderr()}"
            time.sleep(0.01)

    def _logged_port(self, pattern):
        """The port of the line "listening PATTERN on ADDR:PORT", waited for:
        the listeners are logged one after the other."""
        line = re.compile(r"listening " + pattern + r" on \S*:(\d+)$", re.M)
        self.wait_until(lambda: line.search(self.stderr()), "the listener's log line")
        return int(line.search(self.stderr()).group(1))

    def websocket_port(self):
        """The port the log says --websocket listens on."""
        if self.ws_port is None:
            self.ws_port = self._logged_port("for WebSocket(?: over TLS)?")
        return self.ws_port

    def tls_listener_port(self):
        """The port the log says --tls-port listens on."""
        if self.tls_port is None:
            self.tls_port = self._logged_port("for TLS")
        return self.tls_port

    def client(self):
        if OVER_WEBSOCKET and not self.quiet:
            from ws_client import WsLineClient
            return WsLineClient(self.websocket_port())
        if OVER_TLS and not self.quiet:
            return Client(self.tls_listener_port(), ctx=tls_client_context())
        return Client(self.port)

    def rss_kib(self):
        for line in open(f"/proc/{self.proc.pid}/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS")

    def stop(self, sig=None):
        """Stops the server (SIGTERM by default); returns its exit status."""
        if self.proc.poll() is None:
            if sig is None:
                self.proc.terminate()
            else:
                self.proc.send_signal(sig)
        try:
            return self.proc.wait(TIMEOUT * 3)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            if self.config is not None:
                self.config.close()


class Client:
    """A connection that sends raw bytes and reads "\\r\\n"-ended JSON lines."""

    def __init__(self, port, family=socket.AF_INET, host="127.0.0.1", source=None, ctx=None):
        """`source`: the local address to connect from (e.g. another
        loopback address, 127.0.0.2); `ctx`: an ssl.SSLContext, to speak
        TLS to `host`."""
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.settimeout(TIMEOUT)
        if source is not None:
            self.sock.bind((source, 0))
        self.sock.connect((host, port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if ctx is not None:
            self.sock = ctx.wrap_socket(self.sock, server_hostname=host)
        self.buf = b""

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def cmd(self, **fields):
        self.send(json.dumps(fields) + "\n")

    def raw_line(self, timeout=TIMEOUT):
        """The next line with its "\\r\\n"; b"" at end of stream."""
        self.sock.settimeout(timeout)
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                rest, self.buf = self.buf, b""
                assert rest == b"", f"stream ended inside a line: {rest[:100]!r}"
                return b""
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        assert line.endswith(b"\r"), f"line not ended by \\r\\n: {line[:200]!r}"
        return line + b"\n"

    def line(self, timeout=TIMEOUT):
        raw = self.raw_line(timeout)
        assert raw, "connection closed, a line was expected"
        return json.loads(raw)

    def lines(self, n):
        return [self.line() for _ in range(n)]

    def request(self, **fields):
        """Sends one command, returns its reply (the next line)."""
        self.cmd(**fields)
        return self.line()

    def sync(self):
        """Proves nothing else is queued: a no-op command's reply is next."""
        assert self.request(command="unsubscribe", topic="\x01sync") == OK

    def at_eof(self, timeout=TIMEOUT):
        try:
            return self.raw_line(timeout) == b""
        except ConnectionResetError:
            return True

    def drain(self):
        """Reads until the server closes the connection; the bytes read."""
        total = len(self.buf)
        try:
            while chunk := self.sock.recv(1 << 20):
                total += len(chunk)
        except ConnectionResetError:
            pass
        return total

    def close(self):
        self.sock.close()


def subscribe(client, topic, **extra):
    assert client.request(command="subscribe", topic=topic, **extra) == OK


def send(client, topic, msg, delivery="all", **extra):
    assert client.request(command="send", topic=topic, msg=msg, delivery=delivery, **extra) == OK
