"""What reaches the log: client bytes only escaped and cut, so no client can
forge a log line; every limit hit is a WARN naming the client and the
figure, and a flood of the same warning is held back and counted."""
import re
import time

from mqd_harness import BAD_JSON, BAD_UTF8, TOO_LONG

FORGED = "2026-01-01T00:00:00.000Z ERROR forged"


def test_a_refused_line_is_logged_escaped_and_cut(start):
    server = start("--log-level", "debug")
    c = server.client()
    where = "127.0.0.1:%d" % c.sock.getsockname()[1]
    line = b'{"command":"x\r' + FORGED.encode() + b'\x1b[31m"' + b"A" * 300 + b"\n"
    c.send(line)
    assert c.line() == BAD_JSON
    c.send(b'{"topic":"\xff\xfe"}\n')
    assert c.line() == BAD_UTF8
    c.close()
    server.wait_for_log(f"client {where}: {BAD_UTF8['reason']}")
    log = server.stderr()
    assert "\r" not in log and "\x1b" not in log
    assert not any(l.startswith(FORGED) for l in log.split("\n"))
    refused = [l for l in log.splitlines() if f"client {where}: " in l]
    # the first 64 bytes of the line, escaped, then "..." and the length
    assert refused[0].endswith(
        ' DEBUG client %s: Could not parse json: "{\\"command\\":\\"x\\x0d%s\\x1b[31m\\"%s"... '
        '(357 bytes)' % (where, FORGED, "A" * 7))
    assert refused[1].endswith(
        'client %s: Could not decode input as UTF-8: "{\\"topic\\":\\"\\xff\\xfe\\"}" (14 bytes)'
        % where)


def test_no_client_bytes_are_logged_below_debug(start):
    server = start()
    c = server.client()
    c.send(b'{"command":"secret-looking-text\n')
    assert c.line() == BAD_JSON
    c.close()
    server.stop()
    assert "secret-looking-text" not in server.stderr()


def test_lines_too_long_warn_with_the_figure_and_floods_are_counted(start):
    server = start("--max-line", "100")
    c = server.client()
    where = "127.0.0.1:%d" % c.sock.getsockname()[1]
    c.send(b"x" * 200 + b"\n")
    assert c.line() == TOO_LONG
    c.send((b"y" * 200 + b"\n") * 5)
    assert c.lines(5) == [TOO_LONG] * 5
    time.sleep(1.1)   # the limiter lets one through a second: a new second
    c.send(b"z" * 200 + b"\n")
    assert c.line() == TOO_LONG
    c.close()
    server.stop()
    pattern = re.compile(r" WARN client %s: line over --max-line 100 bytes discarded "
                         r"\((\d+) similar not logged\)$" % re.escape(where))
    warned = [pattern.search(l) for l in server.stderr().splitlines() if "--max-line" in l]
    assert all(warned) and len(warned) >= 2
    # each of the 7 is either logged or counted in the next one logged
    assert len(warned) + sum(int(m.group(1)) for m in warned) == 7
