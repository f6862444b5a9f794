"""Limits of PROTOCOL.md that depend on the machine's resources: memory and
file descriptors. Each test starts its own server, since it squeezes that
server's resource limits from outside with prlimit(2)."""

import os
import resource
import socket
import subprocess
import tempfile
import time

import pytest

BINARY = os.environ.get(
    "MQD_BINARY", os.path.join(os.path.dirname(__file__), "..", "..", "build", "mqd"))
TIMEOUT = 10.0
OK = {"success": True}
OUT_OF_MEMORY = b'{"success": false, "reason": "Out of memory"}\r\n'
TOO_MANY = b'{"success": false, "reason": "Too many connections"}\r\n'


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, *args):
        self.log = tempfile.TemporaryFile()
        env = dict(os.environ)
        # under AddressSanitizer an allocation over the address-space limit
        # must come back as NULL, as it does from glibc, not abort
        env["ASAN_OPTIONS"] = env.get("ASAN_OPTIONS", "") + ":allocator_may_return_null=1"
        for _ in range(5):
            self.port = free_port()
            self.proc = subprocess.Popen([BINARY, "--port", str(self.port), *args],
                                         stdout=subprocess.DEVNULL, stderr=self.log, env=env)
            if self._wait_ready():
                return
        raise RuntimeError("mqd did not start: " + self.stderr())

    def _wait_ready(self):
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return True
            except OSError:
                time.sleep(0.01)
        return False

    def stderr(self):
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def connect(self):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=TIMEOUT)
        return s, s.makefile("rb")

    def cpu_seconds(self):
        fields = open(f"/proc/{self.proc.pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self):
        self.proc.terminate()
        try:
            return self.proc.wait(TIMEOUT)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            self.log.close()


@pytest.fixture
def start():
    servers = []

    def _start(*args):
        servers.append(Server(*args))
        return servers[-1]
    yield _start
    for s in servers:
        assert s.stop() == 0, s.stderr()


def vm_size(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmSize")


def test_out_of_memory_fails_the_command_and_the_server_goes_on(start):
    server = start("--max-line", "64m")
    sock, replies = server.connect()
    limit = vm_size(server.proc.pid) + 4 * 1024 * 1024
    resource.prlimit(server.proc.pid, resource.RLIMIT_AS, (limit, resource.RLIM_INFINITY))
    huge = b'{"command":"send","topic":"t","msg":"' + b"x" * (24 << 20) + b'","delivery":"all"}\n'
    sock.sendall(huge + b'{"command":"send","topic":"t","msg":"small","delivery":"all"}\n')
    assert replies.readline() == OUT_OF_MEMORY
    assert replies.readline() == b'{"success": true}\r\n'
    resource.prlimit(server.proc.pid, resource.RLIMIT_AS,
                     (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    other, other_replies = server.connect()
    other.sendall(b'{"command":"subscribe","topic":"t"}\n')
    assert other_replies.readline() == b'{"success": true}\r\n'
    assert b'"msg":"small"' in other_replies.readline()
    sock.close()
    other.close()


def test_out_of_descriptors_refuses_without_spinning_and_recovers(start):
    server = start()
    clients = [server.connect() for _ in range(3)]
    for sock, replies in clients:
        sock.sendall(b'{"command":"subscribe","topic":"t"}\n')
        assert replies.readline() == b'{"success": true}\r\n'
    open_fds = len(os.listdir(f"/proc/{server.proc.pid}/fd"))
    # no descriptor left for a new client: accept fails with EMFILE
    hard = resource.prlimit(server.proc.pid, resource.RLIMIT_NOFILE)[1]
    resource.prlimit(server.proc.pid, resource.RLIMIT_NOFILE, (open_fds, hard))
    refused, refused_replies = server.connect()
    assert refused_replies.readline() in (TOO_MANY, b"")
    assert refused_replies.readline() == b""
    refused.close()

    # a client left waiting in the backlog must not make the server spin
    waiting = socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT)
    cpu_before = server.cpu_seconds()
    time.sleep(0.5)
    assert server.cpu_seconds() - cpu_before < 0.2
    waiting.close()

    # the clients already connected are still served
    sock, replies = clients[0]
    sock.sendall(b'{"command":"send","topic":"t","msg":"still here","delivery":"all"}\n')
    assert b"still here" in replies.readline()

    # once clients leave, new ones are served again
    for sock, _ in clients[1:]:
        sock.close()
    resource.prlimit(server.proc.pid, resource.RLIMIT_NOFILE, (open_fds + 8, hard))
    deadline = time.monotonic() + TIMEOUT
    while True:
        fresh, fresh_replies = server.connect()
        fresh.sendall(b'{"command":"subscribe","topic":"u"}\n')
        line = fresh_replies.readline()
        fresh.close()
        if line == b'{"success": true}\r\n':
            break
        assert time.monotonic() < deadline, "never served again"
    assert "out of file descriptors" in server.stderr()
    clients[0][0].close()
