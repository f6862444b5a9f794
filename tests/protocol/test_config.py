"""--config FILE: options read from a file, one `key value` per line."""
import os
import re

import pytest

from mqd_harness import (OK, TOO_LONG, Client, help_options, http_request, metrics_port, run_mqd,
                         send, subscribe)

CONTRIB_CONF = os.path.join(os.path.dirname(__file__), "..", "..", "contrib", "mqd.conf")
COMMAND_LINE_ONLY = {"--check-data", "--config", "--help", "--version", "--hash-password",
                     "--hash-function"}
# defaults that are the absence of a value: the example file shows a value instead
NO_VALUE_DEFAULTS = {"stderr", "off", "half of the machine's or the cgroup's memory"}


def write(path, text):
    path.write_text(text)
    return str(path)


def cached_count(server, topic="t", sent=4):
    """How many of `sent` messages a late subscriber gets from the cache."""
    c = server.client()
    for i in range(sent):
        send(c, topic, str(i))
    subscribe(c, topic)
    got = 0
    c.cmd(command="unsubscribe", topic="\x01sync")
    while c.line() != OK:
        got += 1
    c.close()
    return got


def test_settings_from_the_file_take_effect(start):
    server = start(config="# limits\ncache-size 1\nmax-line 1k\n\nmax-clients 5\n")
    c = server.client()
    c.send('{"command":"send","topic":"t","msg":"%s","delivery":"all"}\n' % ("x" * 1100))
    assert c.line() == TOO_LONG
    c.close()
    assert cached_count(server) == 1


def test_port_and_bind_from_the_file(start):
    server = start(config="bind 127.0.0.1\nport {port}\n")
    assert f"listening on 127.0.0.1:{server.port}" in server.stderr()
    c = Client(server.port)
    subscribe(c, "t")
    c.close()


def test_log_level_from_the_file(start):
    server = start(config="log-level debug\n")
    c = server.client()
    server.wait_for_log("DEBUG client 127.0.0.1:%d connected" % c.sock.getsockname()[1])
    c.close()


def test_metrics_from_the_file(start):
    server = start(config="metrics 127.0.0.1:0\n")
    status, _, body = http_request(metrics_port(server))
    assert status == 200 and b"\nmqd_connections 0\n" in body


def test_the_command_line_metrics_wins_over_the_file(start, tmp_path):
    path = write(tmp_path / "mqd.conf", "metrics 127.0.0.1:1\n")
    server = start("--config", path, "--metrics", "0")
    port = metrics_port(server)
    assert port != 1 and http_request(port)[0] == 200


def test_comments_whitespace_and_crlf_are_fine(start):
    server = start(config="# mqd\r\n\r\n   # indented\r\n\tcache-size \t 2 \r\n"
                          "  max-output\t64m\r\n# cache-size 9\r\ncache-size 3")
    assert cached_count(server) == 3


def test_the_later_line_of_the_file_wins(start):
    server = start(config="cache-size 1\ncache-size 2\n")
    assert cached_count(server) == 2


@pytest.mark.parametrize("args", [
    ("--cache-size", "3", "--config", "FILE"),
    ("--config", "FILE", "--cache-size", "3"),
    ("--config=FILE", "--cache-size=3"),
    ("{port}", "3", "--config", "FILE"),
])
def test_the_command_line_wins_over_the_file_in_any_order(start, tmp_path, args):
    path = write(tmp_path / "mqd.conf", "cache-size 1\nport 1\n")
    server = start(*[a.replace("FILE", path) for a in args])
    assert cached_count(server) == 3


@pytest.mark.parametrize("text, line, says", [
    ("port 7000\n# typo below\nmax-outptu 64m\n", 3, "unknown key 'max-outptu'"),
    ("--port 7000\n", 1, "unknown key '--port'"),
    ("\n\nport\n", 3, "no value for 'port'"),
    ("bind 127.0.0.1 ::1\n", 1, "'bind' takes one value, not '127.0.0.1 ::1'"),
    ("port 7000 # comment\n", 1, "'port' takes one value, not '7000 # comment'"),
    ("port 70000\n", 1, "invalid value '70000' for port"),
    ("max-line 0\n", 1, "invalid value '0' for max-line"),
    ("max-output 12x\n", 1, "invalid value '12x' for max-output"),
    ("log-level loud\n", 1, "invalid value 'loud' for log-level"),
    ("metrics localhost:9100\n", 1, "invalid value 'localhost:9100' for metrics"),
    ("metrics [::1]\n", 1, "invalid value '[::1]' for metrics"),
    ("config /etc/mqd.conf\n", 1, "'config' is only allowed on the command line"),
    ("help yes\n", 1, "'help' is only allowed on the command line"),
    ("version yes\n", 1, "'version' is only allowed on the command line"),
    ("port 7000\nbind " + "1" * 5000 + "\n", 2, "line longer than 4096 bytes"),
    ("port 7000\x01\n", 1, "control character in line"),
])
def test_a_bad_file_exits_2_naming_file_and_line(tmp_path, text, line, says):
    path = write(tmp_path / "mqd.conf", text)
    status, out, err = run_mqd("--config", path)
    assert status == 2 and out == ""
    assert err == f"mqd: {path}:{line}: {says}\n"


@pytest.mark.parametrize("make, says", [
    (lambda d: str(d / "missing.conf"), "No such file or directory"),
    (lambda d: str(d), "Is a directory"),
])
def test_an_unreadable_file_exits_2_naming_it(tmp_path, make, says):
    path = make(tmp_path)
    status, out, err = run_mqd("--config", path)
    assert status == 2 and out == ""
    assert err == f"mqd: cannot read {path}: {says}\n"


def test_command_line_errors_come_first_with_the_usage(tmp_path):
    status, _, err = run_mqd("--config", str(tmp_path / "missing.conf"), "--bogus")
    assert status == 2
    first, rest = err.split("\n", 1)
    assert first == "mqd: unknown option '--bogus'"
    assert rest.startswith("Usage: mqd")


def test_help_does_not_need_a_readable_file(tmp_path):
    status, out, _ = run_mqd("--config", str(tmp_path / "missing.conf"), "--help")
    assert status == 0 and out.startswith("Usage: mqd")


def test_the_example_file_shows_every_option_with_its_default():
    text = open(CONTRIB_CONF).read()
    shown = dict(re.findall(r"^#([a-z-]+) (\S+)$", text, re.M))
    options = help_options()
    assert len(options) >= 10
    for option, default in options.items():
        if option in COMMAND_LINE_ONLY:
            assert option[2:] not in shown
            continue
        assert option[2:] in shown, f"{option} missing from contrib/mqd.conf"
        if default is not None and default not in NO_VALUE_DEFAULTS:
            assert shown[option[2:]] == default, option


def test_the_example_file_uncommented_starts_a_server(start, tmp_path):
    text = open(CONTRIB_CONF).read()
    log = tmp_path / "mqd.log"
    settings = re.sub(r"^#([a-z-]+ \S+)$", r"\1", text, flags=re.M)
    settings = re.sub(r"^log-file .*$", f"log-file {log}", settings, flags=re.M)
    settings = re.sub(r"^port .*$", "port {port}", settings, flags=re.M)
    settings = re.sub(r"^metrics .*$", "metrics 127.0.0.1:0", settings, flags=re.M)
    settings = re.sub(r"^websocket .*$", "websocket 127.0.0.1:0", settings, flags=re.M)
    # the TLS and users lines name files this machine has not got
    # (test_tls.py and test_auth.py run them)
    settings = re.sub(r"^(tls-|no-plain |users ).*$", "", settings, flags=re.M)
    assert settings.count("\nport {port}\n") == 1
    assert settings.count("\nmetrics 127.0.0.1:0\n") == 1
    assert settings.count("\nwebsocket 127.0.0.1:0\n") == 1
    server = start(config=settings, log_file=str(log))
    c = server.client()
    subscribe(c, "t")
    c.close()
    assert f"listening on 127.0.0.1:{server.port}" in log.read_text()
    assert http_request(metrics_port(server))[0] == 200
