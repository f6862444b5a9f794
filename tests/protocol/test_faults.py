"""Faults through real sockets: clients that reset, vanish mid-line, half-close,
arrive by the thousand or stop reading, and a SIGTERM in the middle of it all.
In each, the clients that behave lose nothing and the server ends clean."""
import os
import resource
import signal
import socket
import struct
import threading

import pytest

from mqd_harness import OK, TIMEOUT, send, subscribe


def reset(client):
    """Closes with a TCP RST instead of a FIN."""
    client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    client.close()


def open_fds(server):
    return len(os.listdir(f"/proc/{server.proc.pid}/fd"))


def raise_nofile(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        if hard != resource.RLIM_INFINITY and hard < need:
            pytest.fail(f"RLIMIT_NOFILE hard limit {hard} is below the {need} this test needs")
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))


def test_resets_in_the_middle_of_a_fan_out_to_many_subscribers(start):
    raise_nofile(1024)
    server = start()
    subscribers = [server.client() for _ in range(200)]
    for c in subscribers:
        subscribe(c, "fan", cache=False)
    victims, survivors = subscribers[::2], subscribers[1::2]
    p = server.client()
    msg = "m" * 2000
    n = 200
    # pipelined, so the resets land while lines are queued to every subscriber
    p.send(('{"command":"send","topic":"fan","msg":"%s","delivery":"all"}\n' % msg) * n)
    for v in victims:
        reset(v)
    assert p.lines(n) == [OK] * n
    for s in survivors:
        assert [m["index"] for m in s.lines(n)] == list(range(n))
    # the victims left the topic: the next message reaches the survivors only
    send(p, "fan", "after")
    late = server.client()
    subscribe(late, "fan", last_seen=n - 1)
    assert late.line()["msg"] == "after"
    late.sync()
    for c in survivors + [p, late]:
        c.close()


@pytest.mark.parametrize("how", ["close", "reset"])
def test_clients_that_send_half_a_line_and_vanish_change_nothing(start, how):
    server = start()
    watcher = server.client()
    subscribe(watcher, "half")
    fds = open_fds(server)
    for size in (1, 100, 70000, 600000):
        for _ in range(20):
            c = server.client()
            head = '{"command":"send","topic":"half","msg":"'
            c.send(head + "h" * size)   # no closing quote, brace or newline
            if how == "reset":
                reset(c)
            else:
                c.close()
    watcher.sync()   # nothing was delivered to it, only its own reply is next
    # every descriptor came back (closing is asynchronous: wait for it)
    server.wait_until(lambda: open_fds(server) == fds, "every descriptor closed")
    late = server.client()
    subscribe(late, "half")
    late.sync()      # and nothing was cached
    late.cmd(command="send", topic="half", msg="whole", delivery="all")
    assert late.line()["msg"] == "whole"
    assert late.line() == OK
    assert watcher.line()["msg"] == "whole"
    for c in (watcher, late):
        c.close()


def test_a_half_closed_client_gets_every_reply_then_the_end(server, topic):
    c = server.client()
    p = server.client()
    subscribe(p, topic)
    c.send('{"command":"subscribe","topic":"%s"}\n' % topic +
           '{"command":"send","topic":"%s","msg":"x","delivery":"all"}\n' % topic +
           '{"command":"send","topic":"%s","msg":"y","delivery":"all"}' % topic)
    c.sock.shutdown(socket.SHUT_WR)
    # its subscribe reply, its own message, the reply, and the unterminated
    # last line run at end of input: the message and the reply
    assert c.line() == OK
    assert c.line()["msg"] == "x"
    assert c.line() == OK
    assert c.line()["msg"] == "y"
    assert c.line() == OK
    assert c.at_eof()
    # it left the topic on its end of input; the others are still served
    assert [p.line()["msg"] for _ in range(2)] == ["x", "y"]
    p.cmd(command="send", topic=topic, msg="z", delivery="all")
    assert p.line()["msg"] == "z"
    assert p.line() == OK
    c.close()
    p.close()


def test_half_closing_while_a_large_reply_queue_drains(server, topic):
    """The server's write side keeps going after the client's write side ends."""
    p = server.client()
    c = server.client()
    for i in range(50):
        send(p, topic, str(i).ljust(100000, "."))
    c.send('{"command":"subscribe","topic":"%s"}\n' % topic)
    c.sock.shutdown(socket.SHUT_WR)
    assert c.line() == OK
    assert [m["index"] for m in c.lines(50)] == list(range(50))
    assert c.at_eof()
    c.close()
    p.close()


def test_ten_thousand_connections_opened_and_dropped_in_bursts(start):
    raise_nofile(2200)
    server = start()
    keeper = server.client()
    subscribe(keeper, "burst")
    fds = open_fds(server)
    port = server.port
    for burst in range(10):
        socks = []
        for i in range(1000):
            s = socket.socket()
            if i % 2:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.connect(("127.0.0.1", port))
            if i % 3 == 0:
                s.sendall(b'{"command":"subscribe","topic":"burst"}\n')
            socks.append(s)
        for s in socks:
            s.close()   # half of them with a reset
        # between bursts the server still answers at once
        keeper.cmd(command="send", topic="burst", msg=str(burst), delivery="all")
        assert keeper.line()["msg"] == str(burst)
        assert keeper.line() == OK
    server.wait_until(lambda: open_fds(server) == fds, "every descriptor closed")
    # all ten thousand left: a "one" message goes to the only subscriber left
    for _ in range(20):
        keeper.cmd(command="send", topic="burst", msg="one", delivery="one")
        assert keeper.line()["msg"] == "one"
        assert keeper.line() == OK
    keeper.close()


def test_slow_consumers_at_max_output_while_others_get_everything_in_order(start):
    server = start("--max-output", "512k", "--max-line", "64k")
    slow = [server.client() for _ in range(3)]
    fast = [server.client() for _ in range(3)]
    publishers = [server.client() for _ in range(2)]
    for c in slow + fast:
        subscribe(c, "t", cache=False)
    n, size = 300, 8000   # 2.4 MB for each subscriber
    for i in range(n):
        for j, p in enumerate(publishers):
            p.cmd(command="send", topic="t", msg=f"{j}:{i}:".ljust(size, "."), delivery="all")
        for p in publishers:
            assert p.line() == OK
        for f in fast:
            got = f.lines(2)
            assert [m["index"] for m in got] == [2 * i, 2 * i + 1]
            assert sorted(m["msg"][:len(f"0:{i}:")] for m in got) == [f"0:{i}:", f"1:{i}:"]
    for s in slow:   # cut off: the stream ends before the end of the data
        assert s.drain() < n * 2 * size
    assert "disconnected: slow consumer" in server.stderr()
    for c in slow + fast + publishers:
        c.close()


def test_sigterm_in_the_middle_of_heavy_traffic_exits_0(start):
    server = start("--max-output", "4m")
    readers = [server.client() for _ in range(10)]
    stalled = [server.client() for _ in range(10)]
    for c in readers + stalled:
        subscribe(c, "heavy", cache=False)
    publishers = [server.client() for _ in range(4)]
    line = ('{"command":"send","topic":"heavy","msg":"%s","delivery":"all"}\n'
            % ("h" * 4000)).encode() * 64
    stop = threading.Event()
    received = [0] * len(readers)
    started = threading.Barrier(len(publishers) + len(readers) + 1)

    def publish(c):
        started.wait()
        try:
            while not stop.is_set():
                c.sock.sendall(line)
                c.sock.recv(1 << 16)
        except OSError:
            pass   # the server went away: expected

    def read(i, c):
        started.wait()
        try:
            while chunk := c.sock.recv(1 << 20):
                received[i] += len(chunk)
        except OSError:
            pass

    threads = [threading.Thread(target=publish, args=(c,)) for c in publishers]
    threads += [threading.Thread(target=read, args=(i, c)) for i, c in enumerate(readers)]
    for t in threads:
        t.start()
    started.wait()
    # heavy traffic is flowing: the readers are receiving
    server.wait_until(lambda: sum(received) > 20 << 20, "20 MB delivered")
    assert server.stop(signal.SIGTERM) == 0, server.stderr()
    stop.set()
    for t in threads:
        t.join(TIMEOUT)
        assert not t.is_alive()
    for c in readers + stalled + publishers:
        c.close()


def test_a_one_message_skips_a_subscriber_that_left_in_the_same_loop_iteration(start):
    """The chosen subscriber must be one still there: a connection closed
    earlier in the same batch of events has left the topic."""
    server = start()
    gone, stays, p = server.client(), server.client(), server.client()
    subscribe(gone, "pick")
    subscribe(stays, "pick")
    n = 20
    os.kill(server.proc.pid, signal.SIGSTOP)   # both events land in one batch
    try:
        reset(gone)
        p.send('{"command":"send","topic":"pick","msg":"m","delivery":"one"}\n' * n)
    finally:
        os.kill(server.proc.pid, signal.SIGCONT)
    assert p.lines(n) == [OK] * n
    assert [m["index"] for m in stays.lines(n)] == list(range(n))
    for c in (stays, p):
        c.close()
