"""PROTOCOL.md, "Limits (mqd extensions)". Out of memory and out of file
descriptors are in test_resources.py."""
from mqd_harness import OK, TOO_LONG, TOO_MANY, send, subscribe


def sub_line(topic, width):
    """A subscribe line of exactly `width` bytes (before its "\\n")."""
    base = '{"command":"subscribe","topic":"%s"}' % topic
    return base.replace('"topic"', " " * (width - len(base)) + '"topic"', 1)


def test_a_line_of_exactly_max_line_is_accepted(start):
    server = start("--max-line", "64")
    c = server.client()
    c.send(sub_line("t", 64) + "\n")
    assert c.line() == OK
    c.send(sub_line("t", 63) + "\r\n")   # the \r counts: 64 bytes
    assert c.line() == OK
    c.close()


def test_a_longer_line_is_refused_once_and_the_next_works(start):
    server = start("--max-line", "64")
    c = server.client()
    c.send(sub_line("t", 65) + "\n" + sub_line("t", 40) + "\n")
    assert c.lines(2) == [TOO_LONG, OK]
    c.send(sub_line("t", 64) + "\r\n")   # 65 with the \r
    assert c.line() == TOO_LONG
    c.sync()
    c.close()


def test_a_long_line_trickling_in_is_refused_once(start):
    server = start("--max-line", "64")
    c = server.client()
    for _ in range(50):
        c.send("x" * 10)
    assert c.line() == TOO_LONG   # as soon as it passes the limit
    for _ in range(50):
        c.send("y" * 10)
    c.send("z\n" + sub_line("t", 30) + "\n")
    assert c.line() == OK
    c.sync()
    c.close()


def test_default_max_line_is_one_mebibyte(start):
    server = start()
    c = server.client()
    msg_len = 1024 * 1024 - len('{"command":"send","topic":"t","msg":"","delivery":"all"}')
    ok = '{"command":"send","topic":"t","msg":"%s","delivery":"all"}\n' % ("x" * msg_len)
    c.send(ok)
    assert c.line() == OK
    c.send(ok.replace('"msg":"', '"msg":"x'))
    assert c.line() == TOO_LONG
    c.sync()
    c.close()


def test_a_slow_consumer_is_cut_and_nobody_waits(start):
    server = start("--max-output", "1m", "--max-line", "64k")
    slow, fast, p = server.client(), server.client(), server.client()
    subscribe(slow, "t")
    subscribe(fast, "t")
    slow_addr = "127.0.0.1:%d" % slow.sock.getsockname()[1]
    n, size = 1000, 10000   # 10 MB against a 1 MiB limit
    for i in range(n):
        p.cmd(command="send", topic="t", msg=str(i).ljust(size, "."), delivery="all",
              cache=False)
        assert p.line() == OK   # the publisher never waits for the slow one
        assert fast.line()["index"] == i
    server.wait_for_log(f"client {slow_addr} disconnected")
    warning = [l for l in server.stderr().splitlines() if slow_addr in l][0]
    assert " WARN " in warning and "max-output" in warning
    # what was queued to it is gone: it never gets the whole stream
    assert slow.drain() < n * size
    for c in (slow, fast, p):
        c.close()


def test_max_clients_refuses_the_excess_and_recovers(start):
    server = start("--max-clients", "3", "--log-level", "debug")
    kept = [server.client() for _ in range(3)]
    for c in kept:
        subscribe(c, "t")
    extra = server.client()
    assert extra.line() == TOO_MANY
    assert extra.at_eof()
    extra.close()
    leaving = kept.pop()
    where = "127.0.0.1:%d" % leaving.sock.getsockname()[1]
    leaving.close()
    server.wait_for_log(f"client {where} closed")
    again = server.client()
    assert again.request(command="subscribe", topic="t") == OK
    for c in kept + [again]:
        c.close()
