"""Limits of PROTOCOL.md that depend on the machine's resources: memory and
file descriptors. Each test starts its own server, since it squeezes that
server's resource limits from outside with prlimit(2)."""

import os
import resource
import socket
import time

from mqd_harness import OK, TIMEOUT, TOO_MANY, http_request, metrics_port, vm_size


def cpu_seconds(server):
    fields = open(f"/proc/{server.proc.pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_out_of_memory_fails_the_command_and_the_server_goes_on(start):
    server = start("--max-line", "64m", "--max-output", "65m")
    c = server.client()
    limit = vm_size(server.proc.pid) + 4 * 1024 * 1024
    resource.prlimit(server.proc.pid, resource.RLIMIT_AS, (limit, resource.RLIM_INFINITY))
    huge = b'{"command":"send","topic":"t","msg":"' + b"x" * (24 << 20) + b'","delivery":"all"}\n'
    c.send(huge + b'{"command":"send","topic":"t","msg":"small","delivery":"all"}\n')
    assert c.line() == {"success": False, "reason": "Out of memory"}
    assert c.line() == OK
    resource.prlimit(server.proc.pid, resource.RLIMIT_AS,
                     (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    other = server.client()
    assert other.request(command="subscribe", topic="t") == OK
    assert other.line()["msg"] == "small"
    c.close()
    other.close()


def test_out_of_descriptors_refuses_without_spinning_and_recovers(start):
    server = start()
    clients = [server.client() for _ in range(3)]
    for c in clients:
        assert c.request(command="subscribe", topic="t") == OK
    open_fds = len(os.listdir(f"/proc/{server.proc.pid}/fd"))
    # no descriptor left for a new client: accept fails with EMFILE
    hard = resource.prlimit(server.proc.pid, resource.RLIMIT_NOFILE)[1]
    resource.prlimit(server.proc.pid, resource.RLIMIT_NOFILE, (open_fds, hard))
    refused = server.client()
    assert refused.line() == TOO_MANY
    assert refused.at_eof()
    refused.close()

    # a client left waiting in the backlog must not make the server spin
    waiting = socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT)
    cpu_before = cpu_seconds(server)
    time.sleep(0.5)
    assert cpu_seconds(server) - cpu_before < 0.2
    waiting.close()

    # the clients already connected are still served
    clients[0].cmd(command="send", topic="t", msg="still here", delivery="all")
    assert clients[0].line()["msg"] == "still here"
    assert clients[0].line() == OK

    # with descriptors to spare again, new clients are served
    resource.prlimit(server.proc.pid, resource.RLIMIT_NOFILE, (open_fds + 8, hard))
    deadline = time.monotonic() + TIMEOUT
    while True:
        fresh = server.client()
        try:
            reply = fresh.request(command="subscribe", topic="u")
        except (AssertionError, ConnectionError):
            reply = None   # refused while the waiting one was still being turned away
        fresh.close()
        if reply == OK:
            break
        assert time.monotonic() < deadline, "never served again"
    assert "out of file descriptors" in server.stderr()
    for c in clients:
        c.close()


def test_taking_the_last_descriptor_refuses_nobody(start):
    """After the accept that takes the last descriptor, accept4 says EMFILE
    with nothing waiting: no refusal may be counted or logged for that."""
    server = start("--metrics", "0")
    port = metrics_port(server)
    open_fds = len(os.listdir(f"/proc/{server.proc.pid}/fd"))
    hard = resource.prlimit(server.proc.pid, resource.RLIMIT_NOFILE)[1]
    resource.prlimit(server.proc.pid, resource.RLIMIT_NOFILE, (open_fds + 1, hard))
    last = server.client()
    assert last.request(command="subscribe", topic="t") == OK
    resource.prlimit(server.proc.pid, resource.RLIMIT_NOFILE, (hard, hard))
    status, _, body = http_request(port, "GET", "/metrics")
    assert status == 200
    assert 'mqd_connections_rejected_total{reason="fd_exhausted"} 0' in body.decode()
    assert "out of file descriptors" not in server.stderr()
    last.close()
