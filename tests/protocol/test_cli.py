"""The command line of the core issue: flags, defaults, errors, signals, logs."""
import re
import resource
import signal
import socket

import pytest

from mqd_harness import (OK, Client, Server, free_port, ipv6_loopback, run_mqd, send,
                         subscribe)

OPTIONS = ["--port", "--bind", "--cache-size", "--max-line", "--max-output",
           "--max-clients", "--log-level", "--metrics", "--help", "--version"]


def test_help_lists_every_option_and_default():
    status, out, err = run_mqd("--help")
    assert status == 0 and err == ""
    for option in OPTIONS:
        assert option in out
    for default in ("7000", "127.0.0.1", "100", "1m", "32m", "10000", "info"):
        assert default in out
    assert run_mqd("-h")[1] == out


def test_version():
    status, out, _ = run_mqd("--version")
    assert status == 0
    assert re.fullmatch(r"mqd \d+\.\d+\.\d+\n", out)


@pytest.mark.parametrize("args, named", [
    (["--bogus"], "--bogus"),
    (["-x"], "-x"),
    (["--port", "abc"], "abc"),
    (["--port", "70000"], "70000"),
    (["--port=-1"], "-1"),
    (["--cache-size", "-1"], "-1"),
    (["--max-line", "12x"], "12x"),
    (["--max-line", "0"], "--max-line"),
    (["--max-output", "k"], "--max-output"),
    (["--max-clients", "0"], "--max-clients"),
    (["--log-level", "loud"], "loud"),
    (["--port"], "--port"),
    (["--help=yes"], "--help"),
    (["7000", "2", "3"], "3"),
    (["notaport"], "notaport"),
    (["7000", "many"], "many"),
])
def test_bad_arguments_exit_2_with_a_one_line_error_and_the_usage(args, named):
    status, out, err = run_mqd(*args)
    assert status == 2
    first, rest = err.split("\n", 1)
    assert first.startswith("mqd: ") and named in first
    assert rest.startswith("Usage: mqd")
    assert out == ""


def test_values_with_equals_and_size_suffixes(start):
    server = start("--cache-size=1", "--max-line=1K", "--max-output", "64m",
                   "--max-clients=5", "--log-level=warn")
    c = server.client()
    c.send('{"command":"send","topic":"t","msg":"%s","delivery":"all"}\n' % ("x" * 1100))
    assert c.line()["reason"] == "Line too long"
    send(c, "t", "a")
    send(c, "t", "b")
    subscribe(c, "t")
    assert c.line()["msg"] == "b"     # cache size 1
    c.sync()
    c.close()
    assert "listening" not in server.stderr()   # warn level hides info


def test_port_in_use_exits_1_and_says_so():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        status, _, err = run_mqd("--port", str(port))
    assert status == 1
    assert f"mqd: cannot listen on 127.0.0.1:{port}: Address already in use" in err


def test_start_is_logged_with_the_address(start):
    server = start()
    line = [l for l in server.stderr().splitlines() if "listening" in l][0]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z INFO listening on "
                        rf"127\.0\.0\.1:{server.port}", line)


def test_port_zero_picks_a_free_port(start):
    server = start("--port", "0")
    port = int(re.search(r"listening on 127\.0\.0\.1:(\d+)", server.stderr()).group(1))
    c = Client(port)
    subscribe(c, "t")
    c.close()


def test_debug_logs_connections(start):
    server = start("--log-level", "debug")
    c = server.client()
    where = "127.0.0.1:%d" % c.sock.getsockname()[1]
    server.wait_for_log(f"DEBUG client {where} connected")
    c.send("quit\n")
    server.wait_for_log(f"DEBUG client {where} closed")
    c.close()


def test_bind_ipv6_literal(start):
    if not ipv6_loopback():
        status, _, err = run_mqd("--bind", "::1", "--port", str(free_port()), timeout=5)
        assert status == 1 and "cannot listen on [::1]:" in err
        return
    server = start("--bind", "::1")
    assert f"listening on [::1]:{server.port}" in server.stderr()
    c = Client(server.port, socket.AF_INET6, "::1")
    subscribe(c, "t")
    c.close()


@pytest.mark.parametrize("address", ["300.1.1.1", "localhost"])
def test_bad_bind_address_exits_1(address):
    """--bind takes a numeric address, as documented: no name is looked up."""
    status, _, err = run_mqd("--bind", address, "--port", str(free_port()))
    assert status == 1 and err.startswith(f"mqd: cannot listen on {address}:")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signals_close_every_client_and_exit_0(sig):
    server = Server()
    clients = [server.client() for _ in range(3)]
    for c in clients:
        subscribe(c, "t")
    assert server.stop(sig) == 0
    for c in clients:
        assert c.at_eof()
        c.close()
    assert f"received {sig.name}, shutting down" in server.stderr()


def test_max_clients_is_lowered_to_fit_rlimit_nofile(start):
    def low_limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
    server = start(preexec_fn=low_limit)
    warning = [l for l in server.stderr().splitlines() if "--max-clients" in l][0]
    assert " WARN " in warning and "RLIMIT_NOFILE" in warning
    lowered = int(re.search(r"to (\d+) to fit", warning).group(1))
    assert 0 < lowered < 64
    kept = [server.client() for _ in range(lowered)]
    for c in kept:
        subscribe(c, "t")
    extra = server.client()
    assert extra.line()["reason"] == "Too many connections"
    extra.close()
    for c in kept:
        c.close()
